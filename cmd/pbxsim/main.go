// Command pbxsim serves the NetSapiens API v2 simulator (internal/netsapiens/nstest) on
// loopback, for demos, drills and pointing the bot at something that is not a real PBX.
//
//	pbxsim [-addr 127.0.0.1:8085] [-seed FILE] [-latency 0s] [-log-format console|json] [-allow-remote]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/rs/zerolog"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pbxsim:", err)
		os.Exit(1)
	}
}

// run serves until ctx is cancelled or SIGINT/SIGTERM arrives, then shuts down gracefully.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	_, _ = getenv, stdin // part of the uniform run signature; pbxsim reads no environment
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	fs := flag.NewFlagSet("pbxsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8085", "listen address (loopback unless -allow-remote)")
	seedFile := fs.String("seed", "", "seed JSON file (default: the embedded demo tenant)")
	latency := fs.Duration("latency", 0, "latency added to every request")
	logFormat := fs.String("log-format", "console", "log format: console or json")
	allowRemote := fs.Bool("allow-remote", false, "allow a non-loopback listen address (the demo keys are public)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}

	var logOut io.Writer = stderr
	switch *logFormat {
	case "json":
	case "console":
		logOut = zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.RFC3339}
	default:
		return fmt.Errorf("-log-format %q: want console or json", *logFormat)
	}
	log := zerolog.New(logOut).With().Timestamp().Logger()

	if err := checkLoopback(*addr, *allowRemote); err != nil {
		return err
	}
	var seed *nstest.Seed
	if *seedFile != "" {
		f, err := os.Open(*seedFile)
		if err != nil {
			return fmt.Errorf("open seed: %w", err)
		}
		seed, err = nstest.LoadSeed(f)
		_ = f.Close()
		if err != nil {
			return err
		}
	}

	sim := nstest.New(nstest.Options{Seed: seed, Logger: log})
	if *latency > 0 {
		sim.SetFaults(nstest.Faults{Latency: *latency})
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	base := "http://" + ln.Addr().String() + nstest.BasePath
	fmt.Fprintf(stdout, "pbxsim: NetSapiens API v2 simulator at %s\n", base)
	fmt.Fprintf(stdout, "API key (demo, Bearer): %s\n", sim.APIKey())
	fmt.Fprintf(stdout, "try: curl -s -H 'Authorization: Bearer %s' %s/domains/acme.example/users/1001\n", sim.APIKey(), base)

	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info().Msg("pbxsim: shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// checkLoopback refuses to serve the demo credentials beyond this machine unless asked to.
func checkLoopback(addr string, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if netsapiens.IsLoopback(host) {
		return nil
	}
	return fmt.Errorf("-addr %q is not a loopback address; pass -allow-remote to serve the demo tenant beyond this machine", addr)
}
