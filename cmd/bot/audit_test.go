package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// auditedIncident runs deny, recreate and reset for target with the engine on the world's PBX
// and Redis (the audit chain keyed with the commands' AUDIT_KEY) and returns the incident ID.
func (w *world) auditedIncident() string {
	w.t.Helper()
	ctx := w.ctx()
	pbx, err := netsapiens.New(netsapiens.Config{BaseURL: w.env["NS_API_URL"], APIKey: netsapiens.Secret(w.env["NS_API_KEY"]), Logger: zerolog.Nop()})
	if err != nil {
		w.t.Fatal(err)
	}
	eng, err := remediate.New(pbx, w.keyedStore(), remediate.Config{Owner: "test"})
	if err != nil {
		w.t.Fatal(err)
	}
	inc, _, err := eng.Open(ctx, remediate.OpenRequest{User: "1001", Domain: "acme.example", Reason: "intl calls", Actor: "cli:alice"})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, s := range []session.Step{session.StepDeny, session.StepRecreate, session.StepReset} {
		if _, err := eng.Run(ctx, inc.ID, s, "cli:alice", remediate.RunOptions{}); err != nil {
			w.t.Fatalf("%s: %v", s, err)
		}
	}
	return inc.ID
}

// TestAuditBundleAndVerify exports an incident's evidence through `run` and verifies its chain;
// after one audit entry is edited in Redis, and after one is deleted, --verify fails naming it.
func TestAuditBundleAndVerify(t *testing.T) {
	w := newWorld(t)
	env := w.cliEnv()
	id := w.auditedIncident()

	r := w.cli(env, "audit", id, "--verify")
	r.want(t, exitOK, "audit --verify of an untouched incident")
	for _, want := range []string{
		"Evidence bundle " + id + " · 1001@acme.example",
		"original dial permission  \"US and Canada\", known", // the write-ahead snapshot
		"device 1001a",
		"PBX changes (before → after)",
		"step.deny.policy: US and Canada → Deny All",
		"HMAC-SHA256 (AUDIT_KEY)",
		"prev —", // the first entry's link
		"mac  h1:",
		"Verification: the chain verifies",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("bundle lacks %q:\n%s", want, r.out)
		}
	}
	if strings.Contains(r.out, "password_hmac") || strings.Contains(r.out, "sealed:") {
		t.Errorf("bundle shows credential material:\n%s", r.out)
	}

	// jsonl: one object per line, every time in UTC, every audit entry with its link.
	r = w.cli(env, "audit", "--format", "jsonl", id)
	r.want(t, exitOK, "audit --format jsonl")
	types := map[string]int{}
	var prev string
	for _, line := range strings.Split(strings.TrimSpace(r.out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		typ, _ := m["type"].(string)
		types[typ]++
		for _, k := range []string{"at", "created_at", "exported_at", "started_at"} {
			if v, ok := m[k].(string); ok && !strings.HasSuffix(v, "Z") {
				t.Errorf("%s %s is not UTC: %s", typ, k, v)
			}
		}
		if typ == "audit" {
			if got, _ := m["prev_mac"].(string); got != prev {
				t.Errorf("entry %v links to %q, want %q", m["seq"], got, prev)
			}
			prev, _ = m["mac"].(string)
		}
	}
	entries, err := w.keyedStore().Audit(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if types["audit"] != len(entries) || types["incident"] != 1 || types["original"] != 1 || types["device"] == 0 || types["change"] == 0 || types["step"] != 4 {
		t.Errorf("jsonl record counts %v for %d audit entries", types, len(entries))
	}

	r = w.cli(env, "audit", "--verify-all")
	r.want(t, exitOK, "audit --verify-all untouched")
	if !strings.Contains(r.out, id+" ") || !strings.Contains(r.out, "global") {
		t.Errorf("--verify-all output:\n%s", r.out)
	}

	// Edit entry 3 in Redis (as someone with write access would): --verify names entry 3.
	key := w.auditListKey(id)
	raw, err := w.redis.Client.LIndex(context.Background(), key, 2).Result()
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]any
	_ = json.Unmarshal([]byte(raw), &e)
	e["actor"] = "cli:mallory"
	edited, _ := json.Marshal(e)
	if err := w.redis.Client.LSet(context.Background(), key, 2, edited).Err(); err != nil {
		t.Fatal(err)
	}
	r = w.cli(env, "audit", id, "--verify")
	r.want(t, exitFailed, "audit --verify after an edit")
	if !strings.Contains(r.err, "entry 3: MAC does not match") || !strings.Contains(r.out, "Verification: FAILED") {
		t.Errorf("edited entry not named:\nstdout:\n%s\nstderr:\n%s", r.out, r.err)
	}
	r = w.cli(env, "audit", "--verify-all")
	r.want(t, exitFailed, "audit --verify-all after an edit")
	if !strings.Contains(r.out, id+"   FAILED: audit chain "+id+": entry 3") || !strings.Contains(r.err, id) {
		t.Errorf("--verify-all does not name %s:\n%s%s", id, r.out, r.err)
	}

	// Put it back, then delete entry 2: --verify names entry 2 as missing.
	if err := w.redis.Client.LSet(context.Background(), key, 2, raw).Err(); err != nil {
		t.Fatal(err)
	}
	w.cli(env, "audit", id, "--verify").want(t, exitOK, "audit --verify after the edit was undone")
	second, err := w.redis.Client.LIndex(context.Background(), key, 1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.redis.Client.LRem(context.Background(), key, 1, second).Err(); err != nil {
		t.Fatal(err)
	}
	r = w.cli(env, "audit", "--verify", id)
	r.want(t, exitFailed, "audit --verify after a deletion")
	if !strings.Contains(r.err, "entry 2: sequence number 3: an entry is missing") {
		t.Errorf("deleted entry not named:\n%s", r.err)
	}
	if got := w.cli(env, "audit", "--format", "jsonl", "--verify", id); !strings.Contains(got.out, `"first_bad_entry":2`) {
		t.Errorf("jsonl verify record lacks the first bad entry:\n%s", got.out)
	}
}

// TestAuditUsage: bad arguments are usage errors (exit 2) that touch nothing.
func TestAuditUsage(t *testing.T) {
	w := newWorld(t)
	env := w.cliEnv()
	for _, args := range [][]string{
		{"audit"},
		{"audit", "nonsense"},
		{"audit", "INC-7K2QXM", "INC-7K2QXN"},
		{"audit", "--verify-all", "INC-7K2QXM"},
		{"audit", "--format", "xml", "INC-7K2QXM"},
		{"audit", "--bogus"},
		{"audit", "INC-7K2QXM"}, // well-formed, but no such incident
	} {
		if r := w.cli(env, args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, r.code, exitUsage, r.err)
		}
	}
	if r := w.cli(env, "audit", "-h"); r.code != exitOK || !strings.Contains(r.out, "usage: bot audit") {
		t.Errorf("audit -h: exit %d\n%s", r.code, r.out)
	}
	// Without AUDIT_KEY a keyed chain cannot be verified, and the error says what to set.
	id := w.auditedIncident()
	delete(env, "AUDIT_KEY")
	r := w.cli(env, "audit", id, "--verify")
	r.want(t, exitFailed, "verify without AUDIT_KEY")
	if !strings.Contains(r.err, "set the same AUDIT_KEY") {
		t.Errorf("no hint about AUDIT_KEY:\n%s", r.err)
	}
}
