package main

import (
	"bytes"
	"context"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// configVars is every environment variable loadConfig reads (the *_FILE variants folded into
// their variable), found by recording its getenv calls: the list the help, the README and
// deploy/example.env are checked against, so a new setting cannot be forgotten in them.
func configVars(t testing.TB) []string {
	t.Helper()
	seen := map[string]bool{}
	getenv := func(k string) string {
		seen[k] = true
		return ""
	}
	_, _ = loadConfig("serve", nil, getenv, noFiles, needs{slack: true, pbx: true})
	var out []string
	for k := range seen {
		// X_FILE is the file variant of a secret X; a variable that merely ends in _FILE
		// (RATES_FILE, a path) is listed as itself.
		if base, ok := strings.CutSuffix(k, "_FILE"); ok && seen[base] {
			continue
		}
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

// Every sub-command that the usage line names answers -h with its usage and exit status 0.
func TestEverySubcommandHelp(t *testing.T) {
	m := regexp.MustCompile(`^usage: bot \[([a-z|]+)\]`).FindStringSubmatch(usage)
	if m == nil {
		t.Fatalf("the usage does not start with the sub-command list:\n%s", usage)
	}
	cases := [][]string{{"-h"}, {"serve", "--help"}, {"-workers", "2", "-h"}}
	for _, sub := range strings.Split(m[1], "|") {
		cases = append(cases, []string{sub, "-h"})
	}
	for _, args := range cases {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"bot"}, args...), envMap(nil), nil, &stdout, &stderr)
		if err != nil {
			t.Errorf("bot %s: %v", strings.Join(args, " "), err)
		}
		want := "usage"
		if args[0] == "version" { // takes no flags: it prints the version
			want = "bot "
		}
		if !strings.Contains(strings.ToLower(stdout.String()+stderr.String()), want) {
			t.Errorf("bot %s printed no usage", strings.Join(args, " "))
		}
	}
}
