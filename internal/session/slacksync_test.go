package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// keyNamed is the test's key <prefix>:suffix, which must exist: the key layout is what
// deployments already have in Redis.
func keyNamed(t *testing.T, ctx context.Context, rdb *testenv.Redis, suffix string) string {
	t.Helper()
	k := rdb.Key(suffix)
	if n, err := rdb.Client.Exists(ctx, k).Result(); err != nil || n != 1 {
		t.Fatalf("exists %s = %d, %v; want the key", k, n, err)
	}
	return k
}

// TestFirstDelivery: a delivery key is first once, under the key name deployments already have.
func TestFirstDelivery(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	for i, want := range []bool{true, false, false} {
		got, err := s.FirstDelivery(ctx, "env:TestFirstDelivery1")
		if err != nil || got != want {
			t.Fatalf("FirstDelivery #%d = %v, %v; want %v", i, got, err, want)
		}
	}
	if ok, err := s.FirstDelivery(ctx, "env:TestFirstDelivery2"); err != nil || !ok {
		t.Fatalf("another delivery = %v, %v; want first", ok, err)
	}
	key := keyNamed(t, ctx, rdb, "slackui:seen:env:TestFirstDelivery1")
	ttl, err := rdb.Client.TTL(ctx, key).Result()
	if err != nil || ttl <= 0 || ttl > session.DeliveryTTL {
		t.Fatalf("TTL of %s = %v, %v; want (0, %v]", key, ttl, err, session.DeliveryTTL)
	}
}

// TestSyncLock: one holder at a time; the card stamp only grows; the thread cursor moves by
// compare-and-set; a holder whose lock was taken over can move nothing.
func TestSyncLock(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	const id = "INC-TESTSYNCLOCK"
	l, ok, err := s.TrySyncLock(ctx, id)
	if err != nil || !ok {
		t.Fatalf("TrySyncLock = %v, %v", ok, err)
	}
	if _, ok, err := s.TrySyncLock(ctx, id); err != nil || ok {
		t.Fatalf("second TrySyncLock = %v, %v; want held", ok, err)
	}
	if err := l.Extend(ctx); err != nil {
		t.Fatalf("Extend: %v", err)
	}

	if n := l.CardStamp(); n != 0 {
		t.Fatalf("CardStamp of a new incident = %d", n)
	}
	for _, raise := range []int64{16, 8} {
		if err := l.RaiseCardStamp(ctx, raise); err != nil {
			t.Fatalf("RaiseCardStamp(%d): %v", raise, err)
		}
	}
	if n := l.CardStamp(); n != 16 {
		t.Fatalf("CardStamp = %d; want 16 (it never goes down)", n)
	}

	if n := l.ThreadPosted(); n != 0 {
		t.Fatalf("ThreadPosted = %d", n)
	}
	if err := l.AdvanceThread(ctx, 0, 2); err != nil {
		t.Fatalf("AdvanceThread(0, 2): %v", err)
	}
	if err := l.AdvanceThread(ctx, 0, 3); err == nil || errors.Is(err, session.ErrSyncLockLost) {
		t.Fatalf("AdvanceThread from a stale cursor = %v; want a cursor error", err)
	}
	if n := l.ThreadPosted(); n != 2 {
		t.Fatalf("ThreadPosted = %d; want 2", n)
	}
	for _, suffix := range []string{"slackui:{" + id + "}:card", "slackui:{" + id + "}:posted"} {
		key := keyNamed(t, ctx, rdb, suffix)
		if ttl, err := rdb.Client.PTTL(ctx, key).Result(); err != nil || ttl <= 0 {
			t.Errorf("PTTL %s = %v, %v; want the retention", key, ttl, err)
		}
	}

	l.Release(ctx)
	l2, ok, err := s.TrySyncLock(ctx, id)
	if err != nil || !ok {
		t.Fatalf("TrySyncLock after Release = %v, %v", ok, err)
	}
	for name, f := range map[string]func() error{
		"Extend":         func() error { return l.Extend(ctx) },
		"RaiseCardStamp": func() error { return l.RaiseCardStamp(ctx, 99) },
		"AdvanceThread":  func() error { return l.AdvanceThread(ctx, 2, 3) },
	} {
		if err := f(); !errors.Is(err, session.ErrSyncLockLost) {
			t.Errorf("%s by the old holder = %v; want ErrSyncLockLost", name, err)
		}
	}
	l.Release(ctx) // not the holder: must not free l2's lock
	if err := l2.Extend(ctx); err != nil {
		t.Fatalf("the new holder lost its lock to the old one's Release: %v", err)
	}
	if n := l2.CardStamp(); n != 16 {
		t.Fatalf("CardStamp after a lost-lock raise = %d; want 16", n)
	}
}

// TestClaimHeadPost: the global audit head is claimed only when it moved past the last post,
// once per throttle period.
func TestClaimHeadPost(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	claim := func(seq int64) bool {
		t.Helper()
		ok, err := s.ClaimHeadPost(ctx, seq, time.Hour)
		if err != nil {
			t.Fatalf("ClaimHeadPost(%d): %v", seq, err)
		}
		return ok
	}
	if !claim(5) {
		t.Fatal("first claim refused")
	}
	if claim(6) {
		t.Fatal("a second claim within the throttle period was granted")
	}
	if err := s.HeadPosted(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Client.Del(ctx, keyNamed(t, ctx, rdb, "slackui:head:throttle")).Err(); err != nil { // the period ends
		t.Fatal(err)
	}
	if claim(5) {
		t.Fatal("claimed a head that was already posted")
	}
	if !claim(6) {
		t.Fatal("a head that moved was refused after the period")
	}
}

// TestSyncRoundTrips: GetForSync reads the incident with both cursors and its audit head in one
// round trip; taking the lock reads the cursors with it; an Extend right after taking the lock
// asks Redis nothing (the lock is ours for a Slack call's timeout anyway).
func TestSyncRoundTrips(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	inc := open(t, s, "1001")
	if _, err := s.Append(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: "U1", Action: "note.added"}); err != nil {
		t.Fatal(err)
	}
	head, _, err := s.AuditHead(ctx, inc.ID)
	if err != nil || head == 0 {
		t.Fatalf("AuditHead = %d, %v", head, err)
	}
	if err := session.LoadSyncScripts(ctx, rdb.Client); err != nil {
		t.Fatal(err)
	}
	rt := &roundTrips{}
	rdb.Client.AddHook(rt)
	step := func(what string, want int64, f func()) {
		t.Helper()
		before := rt.n.Load()
		f()
		if n := rt.n.Load() - before; n != want {
			t.Errorf("%s: %d round trips, want %d", what, n, want)
		}
	}

	step("GetForSync", 1, func() {
		got, v, err := s.GetForSync(ctx, inc.ID)
		if err != nil || got.ID != inc.ID || v != (session.SyncView{AuditSeq: head}) {
			t.Errorf("GetForSync = %s, %+v, %v; want %s, audit seq %d", got.ID, v, err, inc.ID, head)
		}
	})
	var l *session.SyncLock
	step("TrySyncLock", 1, func() {
		var ok bool
		if l, ok, err = s.TrySyncLock(ctx, inc.ID); err != nil || !ok {
			t.Fatalf("TrySyncLock = %v, %v", ok, err)
		}
	})
	step("Extend just after", 0, func() {
		if err := l.Extend(ctx); err != nil {
			t.Errorf("Extend: %v", err)
		}
	})
	step("RaiseCardStamp, AdvanceThread", 2, func() {
		if err := l.RaiseCardStamp(ctx, 16); err != nil {
			t.Error(err)
		}
		if err := l.AdvanceThread(ctx, 0, head); err != nil {
			t.Error(err)
		}
	})
	l.Release(ctx)
	if _, v, err := s.GetForSync(ctx, inc.ID); err != nil || v != (session.SyncView{CardStamp: 16, ThreadPosted: head, AuditSeq: head}) {
		t.Errorf("GetForSync after the sync = %+v, %v", v, err)
	}
	step("TrySyncLock again", 1, func() {
		l2, ok, err := s.TrySyncLock(ctx, inc.ID)
		if err != nil || !ok || l2.CardStamp() != 16 || l2.ThreadPosted() != head {
			t.Fatalf("TrySyncLock = %v, %v; cursors %d, %d", ok, err, l2.CardStamp(), l2.ThreadPosted())
		}
	})
}
