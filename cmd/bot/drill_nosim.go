//go:build nosim

package main

import (
	"context"
	"errors"
	"io"
)

// runDrill in a build with -tags nosim, as the production image is built: that image carries no
// PBX simulator, so the drill runs from the drill image instead (deploy/Dockerfile, target drill).
func runDrill(context.Context, []string, func(string) string, io.Writer, io.Writer) error {
	return errors.New("drill: this build has no PBX simulator (built with -tags nosim); run the drill image: " +
		"docker compose -f deploy/docker-compose.yml --profile drill run --rm drill")
}
