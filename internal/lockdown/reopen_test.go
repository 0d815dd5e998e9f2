package lockdown_test

import (
	"context"
	"errors"
	"testing"

	"github.com/compromised-responder/bot/internal/lockdown"
	"github.com/compromised-responder/bot/internal/session"
)

// TestLockdownReopenIsNotAJoin (found by the chaos run, seed 7): a replica killed after opening
// some members' incidents and before recording them in the lockdown left incidents that are the
// lockdown's own (marked with its ID, no card). When Reconcile opens the members again it finds
// those incidents open: they must be recorded as the lockdown's, not as users who joined with an
// incident of their own (a join keeps its own card, is audited "lockdown.joined", and Discard
// leaves it open: a member left open with no card anywhere).
func TestLockdownReopenIsNotAJoin(t *testing.T) {
	const n = 6
	r := newRig(t, n, 0)
	ctx := context.Background()
	dead := r.engine("dead", nil)
	l, err := dead.Open(ctx, lockdown.OpenRequest{Target: lockdown.Target{Scope: session.ScopeDomain, Domain: bulk}, Actor: "U1", Channel: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	own := map[string]string{}
	if _, err := r.store.UpdateLockdown(ctx, l.ID, func(l *session.Lockdown) error {
		for i := range l.Members[:3] { // the dead replica never recorded these three
			own[l.Members[i].Key()] = l.Members[i].IncidentID
			l.Members[i].IncidentID = ""
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b := r.engine("B", nil)
	if err := b.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	l, err = b.Get(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range l.Members {
		if id, ok := own[m.Key()]; ok && (m.IncidentID != id || m.Joined) {
			t.Errorf("member %s recorded as %+v, want its own incident %s, not joined", m.Key(), m, id)
		}
	}
	if err := b.Discard(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	for key, id := range own {
		if inc, err := r.store.Get(ctx, id); !errors.Is(err, session.ErrNotFound) && inc.Open() {
			t.Errorf("%s's incident %s is open after the lockdown was discarded (%v)", key, id, err)
		}
	}
}
