// Command bot is the /compromised responder: a Slack bot that contains a compromised NetSapiens
// user or device in seconds (Deny All, re-create devices, reset PIN and sessions, restore), with
// approvals, an audit trail in the card's thread, and state in Redis that survives any crash.
//
// Sub-commands: serve (default), drill, respond, audit, healthcheck, version, help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bot:", err)
		os.Exit(exitCode(err))
	}
}

const usage = `usage: bot [serve|drill|respond|audit|healthcheck|version|help] [flags]   (bot SUB-COMMAND -h lists its flags)

  serve        run the Slack bot (Socket Mode); the default. Configuration: bot serve -h, or the README.
  drill        run the whole runbook against the built-in PBX simulator: no credentials needed
               (-user 1001@acme.example, -redis URL; without one it starts a throw-away redis-server)
  respond      the CLI fallback when Slack is down: open, run, approve, … (bot respond -h)
  audit        an incident's evidence bundle and audit chain verification (bot audit -h)
  healthcheck  exit 0 when the bot serving on HTTP_ADDR answers GET /readyz with 200 (the image's HEALTHCHECK)
  version      print the version
`

// run is main without the process: everything it needs is passed in, so tests drive it end to end.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, rest := "serve", []string{}
	if len(args) > 1 {
		cmd, rest = args[1], args[2:]
		if len(cmd) > 0 && cmd[0] == '-' { // flags only: serve
			cmd, rest = "serve", args[1:]
		}
	}
	err := dispatch(ctx, cmd, rest, getenv, stdin, stdout, stderr)
	var help helpError
	switch {
	case errors.As(err, &help): // -h of a sub-command whose flags come from loadConfig
		fmt.Fprint(stdout, string(help))
		return nil
	case errors.Is(err, flag.ErrHelp): // -h: the sub-command's flag set printed its usage
		return nil
	}
	return err
}

func dispatch(ctx context.Context, cmd string, rest []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	switch cmd {
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "bot", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "drill":
		return runDrill(ctx, rest, getenv, stdout, stderr)
	case "respond":
		return runRespond(ctx, rest, getenv, stdout, stderr)
	case "audit":
		return runAudit(ctx, rest, getenv, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, rest, getenv, stdout, stderr)
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown sub-command %q", cmd)
	}
}
