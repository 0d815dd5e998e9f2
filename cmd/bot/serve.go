package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

// runServe validates the configuration and runs the Slack bot until ctx ends.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("serve", args, getenv, os.ReadFile, needs{slack: true, pbx: true})
	if err != nil {
		return err
	}
	_ = cfg
	return fmt.Errorf("serve: not wired yet")
}
