package session_test

import (
	"slices"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// startedLine is the engine's "started" line as Begin's Lines makes it.
func startedLine(inc *session.Incident) []session.AuditEntry {
	st := inc.Step(session.StepDeny)
	return []session.AuditEntry{{Actor: st.RequestedBy, Action: "step.deny.started", Step: session.StepDeny,
		After: string(session.StatusRunning), Detail: "attempt 1"}}
}

// originalLine is deny's "original" line as SaveOriginal's Lines makes it.
func originalLine(inc *session.Incident) []session.AuditEntry {
	return []session.AuditEntry{{Actor: "U1", Action: "step.deny.original", Step: session.StepDeny,
		After: inc.Original.Policy}}
}

// actions lists the actions of an incident's chain and checks that it verifies.
func actions(t *testing.T, s *session.Store, id string) []string {
	t.Helper()
	ctx := ctxT(t)
	if err := s.Verify(ctx, id); err != nil {
		t.Fatalf("Verify(%s): %v", id, err)
	}
	es, err := s.Audit(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Action)
	}
	return out
}

// TestLinesWithTheirRecord: Begin and SaveOriginal store their audit lines in the same write as
// the record, chained after the lines before them (also when another replica moved the chain's
// head meanwhile), and the lines reach the global chain.
func TestLinesWithTheirRecord(t *testing.T) {
	s, r, _ := newStore(t)
	other, _ := storeOn(t, r.Client, withPrefix(r)) // another replica on the same Redis
	ctx := ctxT(t)
	inc := open(t, s, "1001")
	if _, err := s.Append(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: "U1", Action: "incident.opened"}); err != nil {
		t.Fatal(err)
	}
	// Another replica appends: the head this store remembers is stale, and the write reads it.
	if _, err := other.Append(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: "U2", Action: "note"}); err != nil {
		t.Fatal(err)
	}
	l, started, err := s.Begin(ctx, inc.ID, session.StepDeny, session.BeginOptions{Actor: "U1", Owner: "w1",
		LeaseTTL: 30 * time.Second, Lines: startedLine})
	if err != nil {
		t.Fatal(err)
	}
	if started.Step(session.StepDeny).Status != session.StatusRunning {
		t.Fatalf("deny %s after Begin", started.Step(session.StepDeny).Status)
	}
	got, err := l.SaveOriginal(ctx, session.Original{Policy: "US and Canada", Known: true}, "Deny All", originalLine)
	if err != nil {
		t.Fatal(err)
	}
	if got.Original == nil || got.Original.Policy != "US and Canada" {
		t.Fatalf("original = %+v", got.Original)
	}
	want := []string{"incident.opened", "note", "step.deny.started", "step.deny.original"}
	if a := actions(t, s, inc.ID); !slices.Equal(a, want) {
		t.Errorf("incident chain = %q, want %q", a, want)
	}
	es, err := s.Audit(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if e := es[3]; e.IncidentID != inc.ID || e.Actor != "U1" || e.After != "US and Canada" || e.At.IsZero() {
		t.Errorf("original line = %+v", e)
	}
	// A second SaveOriginal records nothing, so it writes no line.
	if _, err := l.SaveOriginal(ctx, session.Original{Policy: "Deny All", Known: true}, "Deny All", originalLine); err != nil {
		t.Fatal(err)
	}
	if a := actions(t, s, inc.ID); len(a) != len(want) {
		t.Errorf("chain after a second SaveOriginal = %q", a)
	}
	// The lines are copied into the global chain after the write; the next Append waits for its
	// copy, which includes them.
	if _, err := s.Append(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: "U1", Action: "step.deny.policy"}); err != nil {
		t.Fatal(err)
	}
	global, err := s.GlobalAudit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var copied []string
	for _, e := range global {
		if e.IncidentID == inc.ID {
			copied = append(copied, e.Action)
		}
	}
	if w := append(want, "step.deny.policy"); !slices.Equal(copied, w) {
		t.Errorf("global chain holds %q of the incident, want %q", copied, w)
	}
	if err := s.Verify(ctx, ""); err != nil {
		t.Errorf("global chain: %v", err)
	}
}

// TestLinesAllOrNothing: a write whose script cannot complete (here the audit chain's list, or
// the user's set of deny policies, holds another type of key, as an edit outside the bot would
// leave it) writes nothing: not the start, not the original, not a line, not the deny policy.
// After the key is repaired the same writes go through.
func TestLinesAllOrNothing(t *testing.T) {
	s, r, _ := newStore(t)
	ctx := ctxT(t)
	inc := open(t, s, "1001")
	tag := r.Prefix + ":{1001@acme.example}"
	list := tag + ":inc:" + inc.ID + ":audit"
	denied := tag + ":denied"
	if err := r.Client.Set(ctx, list, "not a list", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Begin(ctx, inc.ID, session.StepDeny, session.BeginOptions{Actor: "U1", Owner: "w1",
		LeaseTTL: 30 * time.Second, Lines: startedLine}); err == nil {
		t.Fatal("Begin with its line on a broken chain succeeded")
	}
	if got := get(t, s, inc.ID); got.Step(session.StepDeny).Status != session.StatusReady || got.Version != inc.Version {
		t.Fatalf("after a failed Begin: deny %s, version %d (was %d)", got.Step(session.StepDeny).Status, got.Version, inc.Version)
	}
	if err := r.Client.Del(ctx, list).Err(); err != nil {
		t.Fatal(err)
	}
	l, _, err := s.Begin(ctx, inc.ID, session.StepDeny, session.BeginOptions{Actor: "U1", Owner: "w1",
		LeaseTTL: 30 * time.Second, Lines: startedLine})
	if err != nil {
		t.Fatal(err)
	}

	for _, broken := range []struct{ key, what string }{{list, "audit list"}, {denied, "deny policies"}} {
		// The key's value is put aside and a string put in its place (RENAME fails on no key).
		_ = r.Client.Rename(ctx, broken.key, broken.key+":aside").Err()
		if err := r.Client.Set(ctx, broken.key, "not a collection", 0).Err(); err != nil {
			t.Fatal(err)
		}
		before := get(t, s, inc.ID)
		if _, err := l.SaveOriginal(ctx, session.Original{Policy: "US and Canada", Known: true}, "Deny All", originalLine); err == nil {
			t.Fatalf("%s broken: SaveOriginal succeeded", broken.what)
		}
		after := get(t, s, inc.ID)
		if after.Original != nil || after.DenyPolicy != "" || after.Version != before.Version {
			t.Errorf("%s broken: the record was written: original %+v, deny policy %q", broken.what, after.Original, after.DenyPolicy)
		}
		if n, err := r.Client.Exists(ctx, tag+":original").Result(); err != nil || n != 0 {
			t.Errorf("%s broken: user original written (%d, %v)", broken.what, n, err)
		}
		if err := r.Client.Del(ctx, broken.key).Err(); err != nil {
			t.Fatal(err)
		}
		_ = r.Client.Rename(ctx, broken.key+":aside", broken.key).Err()
		if a := actions(t, s, inc.ID); !slices.Equal(a, []string{"step.deny.started"}) {
			t.Errorf("%s broken: chain = %q, want the start's line only", broken.what, a)
		}
		if dp, err := s.DenyPolicies(ctx, "1001", "acme.example"); err != nil || len(dp) != 0 {
			t.Errorf("%s broken: deny policies = %q, %v; want none", broken.what, dp, err)
		}
	}
	// Repaired, the same write goes through.
	if _, err := l.SaveOriginal(ctx, session.Original{Policy: "US and Canada", Known: true}, "Deny All", originalLine); err != nil {
		t.Fatal(err)
	}
	if dp, err := s.DenyPolicies(ctx, "1001", "acme.example"); err != nil || !slices.Equal(dp, []string{"Deny All"}) {
		t.Errorf("deny policies = %q, %v; want Deny All", dp, err)
	}
	if a := actions(t, s, inc.ID); !slices.Equal(a, []string{"step.deny.started", "step.deny.original"}) {
		t.Errorf("chain = %q, want the start's and the original's lines", a)
	}
}

func get(t *testing.T, s *session.Store, id string) session.Incident {
	t.Helper()
	inc, err := s.Get(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return inc
}
