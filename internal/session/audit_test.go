package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// fillAudit appends n entries to the incident's chain and returns the list key.
func fillAudit(t *testing.T, s *session.Store, rdb *testenv.Redis, inc session.Incident, n int) string {
	t.Helper()
	for i := range n {
		if _, err := s.Append(ctxT(t), session.AuditEntry{IncidentID: inc.ID, Actor: "U1", Action: "step.deny.done",
			Step: session.StepDeny, Before: "US and Canada", After: fmt.Sprintf("Deny All %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	return rdb.Key("{" + inc.Key() + "}:inc:" + inc.ID + ":audit")
}

func TestAuditVerify(t *testing.T) {
	edit := func(ctx context.Context, rdb redis.UniversalClient, list string, idx int64, fn func(*session.AuditEntry)) error {
		raw, err := rdb.LIndex(ctx, list, idx).Result()
		if err != nil {
			return err
		}
		var e session.AuditEntry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return err
		}
		fn(&e)
		b, _ := json.Marshal(e)
		return rdb.LSet(ctx, list, idx, b).Err()
	}
	tests := []struct {
		name    string
		keyed   bool
		tamper  func(ctx context.Context, rdb redis.UniversalClient, list string) error
		wantSeq int64 // 0 = verifies
	}{
		{name: "intact, keyed", keyed: true},
		{name: "intact, plain hashes"},
		{name: "edited entry", keyed: true, tamper: func(ctx context.Context, rdb redis.UniversalClient, list string) error {
			return edit(ctx, rdb, list, 2, func(e *session.AuditEntry) { e.Actor = "U666" })
		}, wantSeq: 3},
		{name: "edited entry, plain hashes", tamper: func(ctx context.Context, rdb redis.UniversalClient, list string) error {
			return edit(ctx, rdb, list, 1, func(e *session.AuditEntry) { e.After = "US and Canada" })
		}, wantSeq: 2},
		{name: "deleted entry", keyed: true, tamper: func(ctx context.Context, rdb redis.UniversalClient, list string) error {
			raw, _ := rdb.LIndex(ctx, list, 1).Result()
			return rdb.LRem(ctx, list, 1, raw).Err()
		}, wantSeq: 2},
		{name: "deleted and renumbered", keyed: true, tamper: func(ctx context.Context, rdb redis.UniversalClient, list string) error {
			raw, _ := rdb.LIndex(ctx, list, 1).Result()
			if err := rdb.LRem(ctx, list, 1, raw).Err(); err != nil {
				return err
			}
			for i := int64(1); i < 4; i++ {
				if err := edit(ctx, rdb, list, i, func(e *session.AuditEntry) { e.Seq = i + 1 }); err != nil {
					return err
				}
			}
			return nil
		}, wantSeq: 2},
		{name: "truncated tail", keyed: true, tamper: func(ctx context.Context, rdb redis.UniversalClient, list string) error {
			return rdb.RPop(ctx, list).Err()
		}, wantSeq: 5},
		{name: "truncated head", keyed: true, tamper: func(ctx context.Context, rdb redis.UniversalClient, list string) error {
			return rdb.LPop(ctx, list).Err()
		}, wantSeq: 1},
		{name: "re-ordered", keyed: true, tamper: func(ctx context.Context, rdb redis.UniversalClient, list string) error {
			a, _ := rdb.LIndex(ctx, list, 2).Result()
			b, _ := rdb.LIndex(ctx, list, 3).Result()
			if err := rdb.LSet(ctx, list, 2, b).Err(); err != nil {
				return err
			}
			return rdb.LSet(ctx, list, 3, a).Err()
		}, wantSeq: 3},
		{name: "downgraded to plain hashes", keyed: true, tamper: func(ctx context.Context, rdb redis.UniversalClient, list string) error {
			return edit(ctx, rdb, list, 0, func(e *session.AuditEntry) { e.MAC = "s1:" + e.MAC[3:] })
		}, wantSeq: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, rdb, _ := newStore(t, func(c *session.Config) {
				if !tc.keyed {
					c.AuditKey = nil
				}
			})
			ctx := ctxT(t)
			inc := open(t, s, "1001")
			list := fillAudit(t, s, rdb, inc, 5)
			if err := s.Verify(ctx, inc.ID); err != nil {
				t.Fatalf("Verify before tampering: %v", err)
			}
			if tc.tamper != nil {
				if err := tc.tamper(ctx, rdb.Client, list); err != nil {
					t.Fatal(err)
				}
			}
			err := s.Verify(ctx, inc.ID)
			if tc.wantSeq == 0 {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			var ae *session.AuditError
			if !errors.Is(err, session.ErrAuditTampered) || !errors.As(err, &ae) {
				t.Fatalf("Verify = %v, want ErrAuditTampered", err)
			}
			if ae.Seq != tc.wantSeq {
				t.Errorf("first bad entry %d (%s), want %d", ae.Seq, ae.Reason, tc.wantSeq)
			}
			// The global copy was made before the tampering and still verifies.
			if err := s.Verify(ctx, ""); err != nil {
				t.Errorf("global chain: %v", err)
			}
		})
	}
}

func TestAuditGlobalChain(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxT(t)
	a, b := open(t, s, "1001"), open(t, s, "1002")
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			id := a.ID
			if i%2 == 1 {
				id = b.ID
			}
			if _, err := s.Append(ctx, session.AuditEntry{IncidentID: id, Actor: "U1", Action: fmt.Sprint("event ", i)}); err != nil {
				t.Errorf("Append: %v", err)
			}
		})
	}
	wg.Go(func() {
		if _, err := s.Append(ctx, session.AuditEntry{Actor: "U9", Action: "refused.unauthorized"}); err != nil {
			t.Errorf("Append global: %v", err)
		}
	})
	wg.Wait()
	for _, id := range []string{a.ID, b.ID, ""} {
		if err := s.Verify(ctx, id); err != nil {
			t.Errorf("Verify(%q): %v", id, err)
		}
	}
	g, err := s.GlobalAudit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	perIncident := map[string][]int64{}
	for i, e := range g {
		if e.Seq != int64(i+1) {
			t.Errorf("global entry %d has seq %d", i+1, e.Seq)
		}
		perIncident[e.IncidentID] = append(perIncident[e.IncidentID], e.IncidentSeq)
	}
	want := map[string][]int64{a.ID: {1, 2, 3, 4, 5}, b.ID: {1, 2, 3, 4, 5}, "": {0}}
	if diff := cmp.Diff(perIncident, want); diff != "" {
		t.Errorf("global chain copies, in order, each once (-got +want):\n%s", diff)
	}
	page, err := s.GlobalAudit(ctx, 3, 2)
	if err != nil || len(page) != 2 || page[0].Seq != 4 {
		t.Errorf("GlobalAudit(3, 2) = %d entries from %v, %v", len(page), page, err)
	}
	seq, mac, err := s.AuditHead(ctx, "")
	if err != nil || seq != 11 || mac != g[10].MAC {
		t.Errorf("AuditHead(global) = %d, %q, %v", seq, mac, err)
	}
}

func TestAuditVerifyNeedsKey(t *testing.T) {
	s, rdb, _ := newStore(t)
	inc := open(t, s, "1001")
	fillAudit(t, s, rdb, inc, 2)
	plain, _ := storeOn(t, rdb.Client, withPrefix(rdb), func(c *session.Config) { c.AuditKey = nil })
	if err := plain.Verify(ctxT(t), inc.ID); !errors.Is(err, session.ErrNoKey) {
		t.Errorf("Verify of a keyed chain without AUDIT_KEY = %v, want ErrNoKey", err)
	}
	other, _ := storeOn(t, rdb.Client, withPrefix(rdb), func(c *session.Config) { c.AuditKey = []byte("another key of at least 32 bytes!!") })
	if err := other.Verify(ctxT(t), inc.ID); !errors.Is(err, session.ErrAuditTampered) {
		t.Errorf("Verify under another AUDIT_KEY = %v, want ErrAuditTampered", err)
	}
}

// TestAuditVerifyWhileAppending: a bot that keeps writing while `bot audit --verify` runs must not
// make an intact chain look truncated (seen in TestClusterRestart: the list read before an append,
// the head after it, "head says 22 entries, chain has 21").
func TestAuditVerifyWhileAppending(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxT(t)
	inc := open(t, s, "1001")
	done := make(chan error, 1)
	go func() {
		for i := range 150 {
			if _, err := s.Append(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: "U1", Action: "step.deny.done",
				Step: session.StepDeny, After: fmt.Sprintf("Deny All %d", i)}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for verifies := 0; ; verifies++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if verifies == 0 {
				t.Log("the appends ended before the first verify")
			}
			if err := s.Verify(ctx, inc.ID); err != nil {
				t.Fatalf("Verify after the appends: %v", err)
			}
			return
		default:
		}
		if err := s.Verify(ctx, inc.ID); err != nil {
			t.Fatalf("Verify during the appends (after %d verifies): %v", verifies, err)
		}
		if err := s.Verify(ctx, ""); err != nil {
			t.Fatalf("Verify of the global chain during the appends: %v", err)
		}
	}
}
