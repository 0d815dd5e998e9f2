package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/testenv"
)

// TestDrill runs `bot drill` end to end against the test Redis: the whole runbook, with an
// approval, must leave the simulated PBX as it began and print no secret.
func TestDrill(t *testing.T) {
	rdb := testenv.NewRedis(t)
	env := map[string]string{"REDIS_URL": rdb.URL, "REDIS_KEY_PREFIX": rdb.Prefix}
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"bot", "drill"}, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errb)
	if err != nil {
		t.Fatalf("drill: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	got := out.String()
	for _, want := range []string{
		"deny      done · verified · 1 live call(s) ended",
		"restore   awaiting approval (requested by cli:alice)",
		"restore   approved by cli:bob",
		"audit chain verified (HMAC",
		"Drill passed: 1001@acme.example contained in",
		"softphone 1001a: SIP password (16 characters, not shown)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("drill output lacks %q:\n%s", want, got)
		}
	}
	// A second drill on the same Redis works too (the first one closed its incident).
	out.Reset()
	if err := run(context.Background(), []string{"bot", "drill", "-user", "1002@ACME.example"}, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errb); err != nil {
		t.Fatalf("second drill: %v\n%s", err, out.String())
	}
}

func TestDrillRefusesBadUser(t *testing.T) {
	var out, errb bytes.Buffer
	for _, u := range []string{"nobody", "10/01@acme.example", "9999@acme.example"} {
		err := run(context.Background(), []string{"bot", "drill", "-user", u, "-redis", "redis://127.0.0.1:1/0"}, func(string) string { return "" }, strings.NewReader(""), &out, &errb)
		if err == nil {
			t.Errorf("drill -user %q: no error", u)
		}
	}
}

// TestDrillTakesEveryRedisURLForm: the drill parses REDIS_URL as serve does, Sentinel and Cluster
// too (nothing answers on port 1, so each form gets as far as dialling).
func TestDrillTakesEveryRedisURLForm(t *testing.T) {
	for _, u := range []string{
		"redis://127.0.0.1:1/0",
		"redis://127.0.0.1:1?addr=127.0.0.1:2&addr=127.0.0.1:3",
		"redis://127.0.0.1:1?master_name=mymaster&addr=127.0.0.1:2",
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"bot", "drill", "-redis", u}, func(string) string { return "" }, strings.NewReader(""), &out, &errb)
		if err == nil || !strings.Contains(err.Error(), "does not answer") {
			t.Errorf("drill -redis %s = %v, want it to try and fail to reach Redis", u, err)
		}
	}
}
