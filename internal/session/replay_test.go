package session_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/compromised-responder/bot/internal/session"
)

// The compare-and-set scripts replayed as go-redis replays a command whose reply was lost
// (replayScript, openreplay_test.go): each change is made once and answered as made. A true
// conflict (another writer) is still refused: TestBeginExactlyOnce, TestLockdownStore and the
// concurrent appends of TestAuditChain race real writers.

// replayUpdate replays the incident's compare-and-set (updateScript: 7 KEYS, the incident first).
func replayUpdate() *replayScript {
	return &replayScript{match: func(keys []string) bool { return len(keys) == 7 && strings.Contains(keys[0], ":inc:") }}
}

// TestUpdateReplayed: a Begin whose update runs twice starts the step once (version +1, its
// "started" line once) and hands out the run; an Update's fn is applied once.
func TestUpdateReplayed(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	inc := open(t, s, "1001")
	h := replayUpdate()
	rdb.Client.AddHook(h)
	started := func(inc *session.Incident) []session.AuditEntry {
		return []session.AuditEntry{{Actor: "U1", Action: "step.deny.started", Step: session.StepDeny}}
	}
	run, got, err := s.Begin(ctx, inc.ID, session.StepDeny, session.BeginOptions{
		Actor: "U1", Owner: "w1", LeaseTTL: time.Minute, Lines: started})
	if !h.replayed.Load() {
		t.Fatal("the update script was not replayed: the hook no longer matches it")
	}
	if err != nil {
		t.Fatalf("Begin replayed = %v; want the run", err)
	}
	if got.Version != inc.Version+1 {
		t.Errorf("Begin's incident at version %d; want %d", got.Version, inc.Version+1)
	}
	other, _ := storeOn(t, rdb.Client, withPrefix(rdb)) // nothing remembered
	stored, err := other.Get(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st := stored.Step(session.StepDeny); stored.Version != inc.Version+1 || st.Status != session.StatusRunning ||
		st.Attempts != 1 || st.Fence != run.Lease().Fence {
		t.Errorf("stored v%d, deny %+v; want v%d running, 1 attempt, fence %d", stored.Version, st, inc.Version+1, run.Lease().Fence)
	}
	countAction(t, other, inc.ID, "step.deny.started", 1)
	if err := other.Verify(ctx, inc.ID); err != nil {
		t.Errorf("Verify: %v", err)
	}

	h2 := replayUpdate()
	rdb.Client.AddHook(h2)
	calls := 0
	upd, err := s.Update(ctx, inc.ID, func(inc *session.Incident) error {
		calls++
		inc.Reason += " (confirmed)"
		return nil
	})
	if !h2.replayed.Load() || err != nil || calls != 1 || upd.Version != stored.Version+1 {
		t.Fatalf("Update replayed %v: %v, fn called %d times, v%d; want fn once, v%d",
			h2.replayed.Load(), err, calls, upd.Version, stored.Version+1)
	}
	if stored, err = other.Get(ctx, inc.ID); err != nil || stored.Version != upd.Version || stored.Reason != "toll fraud (confirmed)" {
		t.Errorf("stored v%d %q, %v; want v%d, the reason changed once", stored.Version, stored.Reason, err, upd.Version)
	}
	// The run's fence still holds: its start was not taken for another's.
	if _, err := run.Finish(ctx, session.StatusDone, "verified", nil, nil); err != nil {
		t.Errorf("Finish: %v", err)
	}
}

// countAction fails the test unless the incident's chain holds want entries of action.
func countAction(t *testing.T, s *session.Store, id, action string, want int) {
	t.Helper()
	entries, err := s.Audit(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Action == action {
			n++
		}
	}
	if n != want {
		t.Errorf("%s: %d entries %q; want %d", id, n, action, want)
	}
}

// TestAppendReplayed: an Append whose script runs twice appends the entry once, to the incident's
// chain and to the global one.
func TestAppendReplayed(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	inc := open(t, s, "1001")
	h := &replayScript{match: func(keys []string) bool {
		return len(keys) == 4 && strings.HasSuffix(keys[0], ":audit") && strings.Contains(keys[0], ":inc:")
	}}
	rdb.Client.AddHook(h)
	if _, err := s.Append(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: "U1", Action: "note.added"}); err != nil {
		t.Fatalf("Append replayed: %v", err)
	}
	if !h.replayed.Load() {
		t.Fatal("the append script was not replayed: the hook no longer matches it")
	}
	other, _ := storeOn(t, rdb.Client, withPrefix(rdb))
	countAction(t, other, inc.ID, "note.added", 1)
	if err := other.Verify(ctx, inc.ID); err != nil {
		t.Errorf("Verify: %v", err)
	}
	global, err := other.GlobalAudit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range global {
		if e.Action == "note.added" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("global chain: %d entries note.added; want 1", n)
	}
}

// TestLockdownReplayed: an OpenLockdown whose script runs twice stores one lockdown, the one it
// returns (it used to take its own record for a taken ID and store a second under another); an
// UpdateLockdown's fn is applied once.
func TestLockdownReplayed(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	isLockdown := func(keys []string) bool { return len(keys) == 1 && strings.HasSuffix(keys[0], "}:lockdown") }
	h := &replayScript{match: isLockdown}
	rdb.Client.AddHook(h)
	l, err := s.OpenLockdown(ctx, session.Lockdown{Scope: session.ScopeUsers, OpenedBy: "U1",
		Members: []session.Member{{User: "1001", Domain: "acme.example"}}})
	if !h.replayed.Load() || err != nil {
		t.Fatalf("OpenLockdown replayed %v: %v", h.replayed.Load(), err)
	}
	keys, err := session.ScanKeys(ctx, rdb.Client, rdb.Prefix+":{LCK-*}:lockdown")
	if err != nil || len(keys) != 1 || keys[0] != rdb.Prefix+":{"+l.ID+"}:lockdown" {
		t.Fatalf("lockdown keys %v, %v; want only %s's", keys, err, l.ID)
	}
	if open, err := s.ListOpenLockdowns(ctx); err != nil || len(open) != 1 || open[0].ID != l.ID {
		t.Fatalf("ListOpenLockdowns = %v, %v; want %s", open, err, l.ID)
	}

	h2 := &replayScript{match: isLockdown}
	rdb.Client.AddHook(h2)
	calls := 0
	upd, err := s.UpdateLockdown(ctx, l.ID, func(l *session.Lockdown) error {
		calls++
		l.AddLine(l.CreatedAt, "U1", "a line", false)
		return nil
	})
	if !h2.replayed.Load() || err != nil || calls != 1 || upd.Version != l.Version+1 {
		t.Fatalf("UpdateLockdown replayed %v: %v, fn called %d times, v%d; want once, v%d",
			h2.replayed.Load(), err, calls, upd.Version, l.Version+1)
	}
	got, err := s.GetLockdown(ctx, l.ID)
	if err != nil || got.Version != l.Version+1 || len(got.Lines) != len(l.Lines)+1 {
		t.Errorf("stored v%d with %d lines, %v; want v%d with %d", got.Version, len(got.Lines), err, l.Version+1, len(l.Lines)+1)
	}
}

// TestDiscardReplayed: a Discard whose script runs twice discards the incident and says so (the
// replay used to find it gone, and the next attempt answered "not found", leaving its indexes).
func TestDiscardReplayed(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	inc := open(t, s, "1001")
	h := &replayScript{match: func(keys []string) bool { return len(keys) == 4 && strings.HasSuffix(keys[1], ":open") }}
	rdb.Client.AddHook(h)
	if err := s.Discard(ctx, inc.ID); !h.replayed.Load() || err != nil {
		t.Fatalf("Discard replayed %v: %v", h.replayed.Load(), err)
	}
	other, _ := storeOn(t, rdb.Client, withPrefix(rdb))
	if _, err := other.Get(ctx, inc.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get after Discard = %v; want ErrNotFound", err)
	}
	if open, err := other.ListOpen(ctx); err != nil || len(open) != 0 {
		t.Errorf("ListOpen after Discard = %v, %v; want none", open, err)
	}
}

// TestAdvanceThreadReplayed: a thread cursor's move whose script runs twice is the move made, not
// "the cursor moved under the lock".
func TestAdvanceThreadReplayed(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	inc := open(t, s, "1001")
	l, ok, err := s.TrySyncLock(ctx, inc.ID)
	if err != nil || !ok {
		t.Fatalf("TrySyncLock = %v, %v", ok, err)
	}
	defer l.Release(ctx)
	h := &replayScript{match: func(keys []string) bool { return len(keys) == 2 && strings.HasSuffix(keys[1], "}:posted") }}
	rdb.Client.AddHook(h)
	if err := l.AdvanceThread(ctx, 0, 3); !h.replayed.Load() || err != nil || l.ThreadPosted() != 3 {
		t.Fatalf("AdvanceThread replayed %v: %v, at %d; want at 3", h.replayed.Load(), err, l.ThreadPosted())
	}
}

// replayPipeline runs the first successful pipeline whose first command's key has suffix twice,
// as go-redis retries a pipeline whose replies were lost (replayScript).
type replayPipeline struct {
	suffix   string
	replayed atomic.Bool
}

func (h *replayPipeline) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *replayPipeline) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *replayPipeline) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if len(cmds) == 0 || len(cmds[0].Args()) < 2 || !strings.HasSuffix(fmt.Sprint(cmds[0].Args()[1]), h.suffix) ||
			!h.replayed.CompareAndSwap(false, true) {
			return err
		}
		return next(ctx, cmds) // the replies the caller sees are the second run's
	}
}

// TestFirstDeliveryReplayed: a delivery whose mark's pipeline runs twice is its first arrival
// (the replay used to find its own mark and drop the click as a duplicate); a second delivery of
// the same key is still a duplicate.
func TestFirstDeliveryReplayed(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	h := &replayPipeline{suffix: ":click-1"}
	rdb.Client.AddHook(h)
	firsts, err := s.FirstDeliveries(ctx, "click-1", "envelope-1")
	if !h.replayed.Load() || err != nil || !firsts[0] || !firsts[1] {
		t.Fatalf("FirstDeliveries replayed %v = %v, %v; want both first", h.replayed.Load(), firsts, err)
	}
	if first, err := s.FirstDelivery(ctx, "click-1"); err != nil || first {
		t.Errorf("second delivery = first %v, %v; want a duplicate", first, err)
	}
}

// TestSyncLockReplayed: a TrySyncLock whose pipeline runs twice holds the lock (the replay used
// to find its own token and answer "held by another sync" until it expired); another sync is
// still refused.
func TestSyncLockReplayed(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	inc := open(t, s, "1001")
	h := &replayPipeline{suffix: "}:lock"}
	rdb.Client.AddHook(h)
	l, ok, err := s.TrySyncLock(ctx, inc.ID)
	if !h.replayed.Load() || err != nil || !ok {
		t.Fatalf("TrySyncLock replayed %v = %v, %v; want the lock", h.replayed.Load(), ok, err)
	}
	defer l.Release(ctx)
	if _, ok, err := s.TrySyncLock(ctx, inc.ID); err != nil || ok {
		t.Errorf("another TrySyncLock = %v, %v; want held", ok, err)
	}
}
