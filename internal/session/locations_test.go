package session_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/session"
)

// TestLocationsForgetGone: a replica that has read an incident (and so remembers where it is)
// sees it gone once another replica discards it, exactly as one that never read it: Get, Update
// and Append say ErrNotFound, and the Append leaves no stray audit chain behind.
func TestLocationsForgetGone(t *testing.T) {
	a, rdb, _ := newStore(t)
	b, _ := storeOn(t, rdb.Client, withPrefix(rdb))
	ctx := ctxT(t)
	inc := open(t, a, "1001")
	if _, err := a.Get(ctx, inc.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Update(ctx, inc.ID, func(i *session.Incident) error { i.Reason = "read and written by a"; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.Discard(ctx, inc.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, inc.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get of a discarded incident = %v, want ErrNotFound", err)
	}
	if _, err := a.Update(ctx, inc.ID, func(*session.Incident) error { return nil }); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Update of a discarded incident = %v, want ErrNotFound", err)
	}
	inc2 := open(t, a, "1002")
	if _, err := a.Get(ctx, inc2.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.Discard(ctx, inc2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(ctx, session.AuditEntry{IncidentID: inc2.ID, Actor: "U1", Action: "late"}); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Append to a discarded incident = %v, want ErrNotFound", err)
	}
	keys, err := rdb.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(keys, func(k string) bool { return strings.Contains(k, inc2.ID) }); i >= 0 {
		t.Errorf("key %s left behind by the Append to a discarded incident", keys[i])
	}
}

// TestAuditHeadRemembered: two replicas append to one incident's chain in turn, each starting
// from the head it wrote last (which the other has moved): every append lands once, in order, and
// the chain verifies.
func TestAuditHeadRemembered(t *testing.T) {
	a, rdb, _ := newStore(t)
	b, _ := storeOn(t, rdb.Client, withPrefix(rdb))
	ctx := ctxT(t)
	inc := open(t, a, "1001")
	for i := range 6 {
		st := a
		if i%3 == 2 {
			st = b
		}
		e, err := st.Append(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: "U1", Action: "turn"})
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != int64(i+1) {
			t.Errorf("append %d got seq %d", i+1, e.Seq)
		}
	}
	if err := a.Verify(ctx, inc.ID); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := b.Verify(ctx, ""); err != nil {
		t.Errorf("Verify(global): %v", err)
	}
}
