package session_test

import (
	"errors"
	"testing"

	"github.com/compromised-responder/bot/internal/session"
)

// TestAuditAfter: the entries after a seq, oldest first, as Audit has them; none past the head;
// an unknown incident is ErrNotFound.
func TestAuditAfter(t *testing.T) {
	s, rdb, _ := newStore(t)
	inc := open(t, s, "1001")
	fillAudit(t, s, rdb, inc, 4)
	all, err := s.Audit(ctxT(t), inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(all))
	for _, after := range []int64{-1, 0, 2, n - 1, n, n + 3} {
		got, err := s.AuditAfter(ctxT(t), inc.ID, after)
		if err != nil {
			t.Fatalf("AuditAfter(%d): %v", after, err)
		}
		var want []session.AuditEntry
		for _, e := range all {
			if e.Seq > after {
				want = append(want, e)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("AuditAfter(%d): %d entries, want %d", after, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("AuditAfter(%d)[%d] = %+v, want %+v", after, i, got[i], want[i])
			}
		}
	}
	if _, err := s.AuditAfter(ctxT(t), "INC-ZZZZZZ", 0); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("unknown incident: %v, want ErrNotFound", err)
	}
}

// TestAuditAfterGone: an incident gone since this store learnt where it is (another replica
// discarded it; RETENTION expires it alike) is ErrNotFound, not an empty chain, from the
// remembered location as from a fresh lookup; the incident's chain up to then read normally.
func TestAuditAfterGone(t *testing.T) {
	s, r, _ := newStore(t)
	other, _ := storeOn(t, r.Client, withPrefix(r)) // another replica on the same Redis
	inc := open(t, s, "1001")
	if _, err := s.Append(ctxT(t), session.AuditEntry{IncidentID: inc.ID, Actor: "U1", Action: "incident.opened"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.AuditAfter(ctxT(t), inc.ID, 0) // the store now remembers the incident's user@domain
	if err != nil || len(got) != 1 {
		t.Fatalf("AuditAfter before the discard = %d entries, %v; want 1", len(got), err)
	}
	if err := other.Discard(ctxT(t), inc.ID); err != nil {
		t.Fatal(err)
	}
	for _, after := range []int64{0, 1} {
		if got, err := s.AuditAfter(ctxT(t), inc.ID, after); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("AuditAfter(%d) of a discarded incident = %d entries, %v; want ErrNotFound", after, len(got), err)
		}
	}
}
