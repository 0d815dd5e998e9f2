package main

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// testAuditKey is the AUDIT_KEY of the operator-command tests (32 bytes, base64).
var testAuditKey = base64.StdEncoding.EncodeToString([]byte("h6-cli test audit key, 32 bytes!"))

// cliResult is what one operator command printed and its exit status.
type cliResult struct {
	out, err string
	code     int
}

// cliEnv is the world's environment without any Slack setting (the operator commands must not
// need Slack) and with an AUDIT_KEY, which it also gives the world's `bot serve` (one chain, one
// key); keyedStore reads the same chains.
func (w *world) cliEnv() map[string]string {
	w.env["AUDIT_KEY"] = testAuditKey
	env := map[string]string{}
	for k, v := range w.env {
		if !strings.HasPrefix(k, "SLACK_") {
			env[k] = v
		}
	}
	return env
}

// cli runs `bot args…` through run with env, as an operator at a shell would (stdout is not a
// terminal), and records its output for the secret scan.
func (w *world) cli(env map[string]string, args ...string) cliResult {
	w.t.Helper()
	return w.runCLI(true, env, args...)
}

// cliReveal is cli for a command whose stdout shows secrets on purpose (--reveal): only its
// stderr joins the secret scan.
func (w *world) cliReveal(env map[string]string, args ...string) cliResult {
	w.t.Helper()
	return w.runCLI(false, env, args...)
}

func (w *world) runCLI(scanStdout bool, env map[string]string, args ...string) cliResult {
	w.t.Helper()
	out, errs := &testenv.SyncBuffer{}, &testenv.SyncBuffer{}
	w.mu.Lock()
	w.logs = append(w.logs, errs)
	if scanStdout {
		w.logs = append(w.logs, out)
	}
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"bot"}, args...), func(k string) string { return env[k] }, strings.NewReader(""), out, errs)
	r := cliResult{out: out.String(), err: errs.String(), code: exitCode(err)}
	if err != nil {
		r.err += "bot: " + err.Error() + "\n"
	}
	return r
}

// keyedStore is a store on the world's Redis with the operator commands' AUDIT_KEY.
func (w *world) keyedStore() *session.Store {
	w.t.Helper()
	key, _ := base64.StdEncoding.DecodeString(testAuditKey)
	s, err := session.New(session.Config{Client: w.redis.Client, Prefix: w.redis.Prefix, AuditKey: key})
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// auditListKey finds the Redis list that holds an incident's audit chain (by the layout's
// suffix, so the test does not depend on the key prefix).
func (w *world) auditListKey(id string) string {
	w.t.Helper()
	all, err := w.redis.Keys(context.Background())
	var keys []string
	for _, k := range all {
		if strings.HasSuffix(k, ":inc:"+id+":audit") {
			keys = append(keys, k)
		}
	}
	if err != nil || len(keys) != 1 {
		w.t.Fatalf("audit list of %s: %v %v", id, keys, err)
	}
	return keys[0]
}

func (r cliResult) want(t *testing.T, code int, what string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, r.code, code, r.out, r.err)
	}
}
