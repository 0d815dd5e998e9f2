package session_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/compromised-responder/bot/internal/session"
)

// TestCardPending: a card can be marked pending only for an incident with a channel; marking and
// clearing are idempotent.
func TestCardPending(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxT(t)
	noChannel := open(t, s, "1001")
	if err := s.MarkCardPending(ctx, noChannel.ID); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("MarkCardPending without a channel = %v, want ErrInvalid", err)
	}
	if err := s.MarkCardPending(ctx, "INC-7K2QXM"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("MarkCardPending of no incident = %v, want ErrNotFound", err)
	}
	inc, _, err := s.Open(ctx, session.Incident{User: "1002", Domain: "acme.example", OpenedBy: "cli:alice", Channel: "C0INC"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.MarkCardPending(ctx, inc.ID); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := s.PendingCards(ctx)
	if err != nil || !slices.Equal(ids, []string{inc.ID}) {
		t.Fatalf("PendingCards = %v, %v; want [%s]", ids, err, inc.ID)
	}
	for range 2 {
		if err := s.ClearCardPending(ctx, inc.ID); err != nil {
			t.Fatal(err)
		}
	}
	if ids, err := s.PendingCards(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("PendingCards after clear = %v, %v", ids, err)
	}
}
