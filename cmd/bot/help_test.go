package main

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"testing"
)

// configVars is every environment variable loadConfig reads (the *_FILE variants folded into
// their variable), found by recording its getenv calls: the list the help, the README and
// deploy/example.env are checked against, so a new setting cannot be forgotten in them.
func configVars(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	getenv := func(k string) string {
		seen[strings.TrimSuffix(k, "_FILE")] = true
		return ""
	}
	_, _ = loadConfig("serve", nil, getenv, noFiles, needs{slack: true, pbx: true})
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	if len(out) < 20 {
		t.Fatalf("loadConfig read only %d variables: %v", len(out), out)
	}
	return out
}

func TestServeHelpListsEveryVariableAndFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	// No configuration at all: -h must still answer, with exit status 0 and no config error.
	if err := run(context.Background(), []string{"bot", "serve", "-h"}, envMap(nil), nil, &stdout, &stderr); err != nil {
		t.Fatalf("serve -h: %v", err)
	}
	help := stdout.String()
	for _, v := range configVars(t) {
		if !strings.Contains(help, v) {
			t.Errorf("serve -h does not list %s", v)
		}
	}
	for _, want := range []string{"-workers", `(default "16")`, "-http-addr", `(default ":8080")`, `(default "redis://localhost:6379/0")`, "SLACK_BOT_TOKEN_FILE"} {
		if !strings.Contains(help, want) {
			t.Errorf("serve -h lacks %q:\n%s", want, help)
		}
	}
	if strings.Contains(help, "invalid configuration") {
		t.Errorf("serve -h printed a config error:\n%s", help)
	}
}

func TestEverySubcommandHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"serve", "-h"}, {"serve", "--help"}, {"drill", "-h"}, {"audit", "-h"}, {"healthcheck", "-h"}, {"-workers", "2", "-h"}} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"bot"}, args...), envMap(nil), nil, &stdout, &stderr)
		if err != nil {
			t.Errorf("bot %s: %v", strings.Join(args, " "), err)
		}
		if stdout.Len()+stderr.Len() == 0 || !strings.Contains(strings.ToLower(stdout.String()+stderr.String()), "usage") {
			t.Errorf("bot %s printed no usage", strings.Join(args, " "))
		}
	}
}
