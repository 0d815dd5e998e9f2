package session_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/compromised-responder/bot/internal/session"
)

// TestAuditGlobalCopyBatched: two replicas' stores append concurrently to twelve incidents (their
// copies into the global chain batched and racing each other's batches), one incident starting
// with an entry whose copy a crash left undone and one with a Close's mirror racing the batches:
// the global chain verifies and holds every incident's entries once each, in the incident's
// order, and every Append returned after its own entry was copied.
func TestAuditGlobalCopyBatched(t *testing.T) {
	s, rdb, _ := newStore(t)
	other, _ := storeOn(t, rdb.Client, withPrefix(rdb))
	ctx := ctxT(t)
	var incs []session.Incident
	for i := range 12 {
		incs = append(incs, open(t, s, fmt.Sprint(2000+i)))
	}
	// A copy left undone: the next Append of that incident copies both, in order.
	if _, err := s.AppendIncidentOnly(ctx, session.AuditEntry{IncidentID: incs[0].ID, Actor: "U1", Action: "crashed before the copy"}); err != nil {
		t.Fatal(err)
	}
	const perWriter = 3
	var wg sync.WaitGroup
	var mu sync.Mutex
	appended := map[string]int{incs[0].ID: 1}
	for w := range 40 {
		st := s
		if w%2 == 1 {
			st = other
		}
		wg.Go(func() {
			for j := range perWriter {
				inc := incs[(w+j)%len(incs)]
				e, err := st.Append(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: "U1", Action: fmt.Sprintf("event %d.%d", w, j)})
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				appended[inc.ID]++
				mu.Unlock()
				// Append returns after the copy: the global chain has this entry now.
				g, err := st.GlobalAudit(ctx, 0, 0)
				if err != nil {
					t.Errorf("GlobalAudit: %v", err)
					return
				}
				if !slices.ContainsFunc(g, func(ge session.AuditEntry) bool { return ge.IncidentID == inc.ID && ge.IncidentSeq == e.Seq }) {
					t.Errorf("%s entry %d not in the global chain when Append returned", inc.ID, e.Seq)
				}
			}
		})
	}
	wg.Go(func() {
		if _, err := other.Close(ctx, incs[5].ID, session.StateAborted, "U1", "racing the batches"); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	wg.Wait()
	if err := s.Verify(ctx, ""); err != nil {
		t.Fatalf("Verify(global): %v", err)
	}
	g, err := s.GlobalAudit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	seqs := map[string][]int64{}
	for _, e := range g {
		seqs[e.IncidentID] = append(seqs[e.IncidentID], e.IncidentSeq)
	}
	for _, inc := range incs {
		if err := s.Verify(ctx, inc.ID); err != nil {
			t.Errorf("Verify(%s): %v", inc.ID, err)
		}
		chain, err := s.Audit(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		var want []int64
		for _, e := range chain {
			want = append(want, e.Seq)
		}
		if !slices.Equal(seqs[inc.ID], want) {
			t.Errorf("%s: global chain holds its entries %v, want %v (each once, in order)", inc.ID, seqs[inc.ID], want)
		}
		if inc.ID != incs[5].ID && len(chain) != appended[inc.ID] {
			t.Errorf("%s: chain of %d entries, %d appended", inc.ID, len(chain), appended[inc.ID])
		}
	}
}

// TestAuditGlobalCopyBadMarkFailsAlone: an incident whose copy mark is not a number (a damaged
// key) fails its own copy, not the copies of the incidents batched with it.
func TestAuditGlobalCopyBadMarkFailsAlone(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	bad, good := open(t, s, "3001"), open(t, s, "3002")
	var es []session.AuditEntry
	for _, inc := range []session.Incident{bad, good} {
		e, err := s.AppendIncidentOnly(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: "U1", Action: "event"})
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	if err := rdb.Client.HSet(ctx, rdb.Key("{audit}:mirrored"), bad.ID, "garbage").Err(); err != nil {
		t.Fatal(err)
	}
	errs, err := s.CopyToGlobal(ctx, es...)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(errs[bad.ID], session.ErrConflict) {
		t.Errorf("copy of the incident with the damaged mark = %v, want ErrConflict", errs[bad.ID])
	}
	if errs[good.ID] != nil {
		t.Errorf("copy of the other incident = %v, want done", errs[good.ID])
	}
	g, err := s.GlobalAudit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(g, func(ge session.AuditEntry) bool { return ge.IncidentID == good.ID && ge.IncidentSeq == es[1].Seq }) {
		t.Errorf("the other incident's entry is not in the global chain: %v", g)
	}
}
