package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/session"
)

// Exit statuses of the operator commands (`bot respond`, `bot audit`), documented in the README
// so that scripts can tell a refusal from a failure.
const (
	exitOK       = 0
	exitFailed   = 1 // the step (or the verification) failed, or Redis/the PBX did not answer
	exitUsage    = 2 // bad arguments, or an incident/user that does not exist
	exitAwaiting = 3 // the step now waits for another actor's approval
	exitRefused  = 4 // not allowed now: self-approval, wrong state, step order, closed incident
)

// exitError carries the process exit status of an operator command with its message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitf returns an error that makes the process exit with code.
func exitf(code int, format string, a ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, a...)}
}

// exitCode is the process exit status for the error run returned: 0 for nil, the code of an
// *exitError, 1 for anything else.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailed
}

// parseInterleaved parses fs over args and returns the positional arguments, so that flags may
// stand before, between or after them (the standard flag package stops at the first
// positional argument). Everything after "--" is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// parseCLI parses an operator command's flags: -h prints the usage to stdout and ends the command
// cleanly (done = true); a bad flag is a usage error (exit 2) and the usage goes to stderr.
func parseCLI(fs *flag.FlagSet, args []string, usage string, stdout, stderr io.Writer) (pos []string, done bool, err error) {
	fs.SetOutput(io.Discard)
	pos, err = parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return nil, true, nil
	}
	if err != nil {
		fmt.Fprint(stderr, usage)
		return nil, false, exitf(exitUsage, "%s: %v", fs.Name(), err)
	}
	return pos, false, nil
}

// openCLIStore connects to REDIS_URL with the keys of the configuration, as `bot serve` does, so
// that the operator commands see and write the very same incidents and audit chains.
// A Redis that does not answer ends the command at once with one clear line (exit 1) instead of
// go-redis retrying every call.
func openCLIStore(ctx context.Context, cfg config, log zerolog.Logger) (*session.Store, redis.UniversalClient, error) {
	ropts, err := session.ParseRedisURL(cfg.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	rdb := redis.NewUniversalClient(ropts)
	store, err := session.New(session.Config{Client: rdb, AuditKey: cfg.AuditKey,
		Retention: cfg.Retention, Prefix: cfg.RedisKeyPrefix, MinReplicas: cfg.RedisMinReplicas,
		Logger: log.With().Str("component", "session").Logger()})
	if err != nil {
		rdb.Close()
		return nil, nil, fmt.Errorf("incident store: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := store.Ping(pctx); err != nil {
		rdb.Close()
		return nil, nil, fmt.Errorf("redis at %s does not answer: %w", session.RedactURL(cfg.RedisURL), err)
	}
	return store, rdb, nil
}

// cliConfig loads the configuration of an operator command from the environment only (its own
// flags are parsed by the command): Redis and the keys always, the PBX when pbx is set, never
// the Slack tokens.
func cliConfig(name string, getenv func(string) string, pbx bool) (config, error) {
	cfg, err := loadConfig(name, nil, getenv, os.ReadFile, needs{pbx: pbx})
	if err != nil {
		return cfg, &exitError{code: exitUsage, err: err}
	}
	return cfg, nil
}

// cliLogger is the operator commands' log: warnings and errors only (LOG_LEVEL may lower it) on
// stderr, so that stdout holds only the command's answer. Nothing secret is ever logged.
func cliLogger(cfg config, stderr io.Writer) zerolog.Logger {
	level := cfg.LogLevel
	if strings.EqualFold(level, "info") { // the default; debug and trace stay available
		level = "warn"
	}
	return newLogger(cfg.LogFormat, level, stderr)
}
