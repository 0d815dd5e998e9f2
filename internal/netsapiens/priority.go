package netsapiens

import (
	"context"
	"sync"
)

// Priority orders the requests that wait for one of the client's MaxInflight slots: when a
// slot frees, the oldest waiting request of the highest priority takes it. MaxInflight stays
// the ceiling whatever the priority; a request that finds a slot free never waits.
//
// The one ordering, highest first (issue 9 items 4 and 5: containment is never queued behind
// anything else; under a burst the PBX's slots go to the calls that lead to "contained": each
// incident's user read, which its card needs before anyone can click Deny, and deny's three):
//
//	Critical  deny's critical path: read the user, the deny policy when the cache has no answer,
//	          PUT the deny policy, read it back. In a lockdown of 200 users every user's PUT
//	          and verify go before any user's live-call work.
//	High      the deny policy cache's warm-up and refresh, which keep the policy read off the
//	          critical path (one or two reads per domain and minute).
//	Normal    the default: the open's user read (the card waits for it, and the Deny button
//	          with it), the steps after containment, the lockdown's reads.
//	FollowUp  deny's work after the verified PUT (list, end and re-list the live calls; a
//	          resumed deny that re-checks a containment already verified).
//	Low       reads that only fill in or refresh what a person looks at: the open's devices and
//	          live calls (the card shows "reading…" until they come), evidence, the card's live
//	          state, the restore gate.
//
// Why deny's live-call work goes after other incidents' opens: once the PUT is verified the
// user can place no new call, and what is left is ending the calls already up, one user's
// follow-up; an open still waiting is another user who can place any number of new calls
// until their card is up and Deny clicked. Ahead of the opens, every contained user's calls
// list (one to three calls each) would be served before the next user's card could be posted:
// in a burst of 100 that is 100 to 300 round trips of the PBX's slots before the last user is
// contained (BenchmarkBurstIncidents). Behind them the wait is bounded: an open takes one slot
// for one round trip, and the opens of a burst end once every card is up, so a fraudulent call
// is ended at most that much later (in the burst of 100 at 8 slots, about 250 ms). It still
// goes before every Low read, so a card's cosmetics never delay ending a call.
type Priority int

// The priorities, lowest first. A context without WithPriority is Normal.
const (
	// Low is for reads that only fill in or refresh what a person looks at (the open's devices
	// and live calls, evidence, the card's live state, the restore gate): under a burst they
	// wait for containment, its follow-up and opening incidents.
	Low Priority = iota
	// FollowUp is for containment's follow-up: deny's live calls once its PUT is verified (and
	// a resumed deny re-checking a verified containment). After the opens, before cosmetics.
	FollowUp
	// Normal is the default: the open's user read, the steps after containment.
	Normal
	// High is for the deny policy cache's reads (warm-up, refresh).
	High
	// Critical is deny's critical path: user read, PUT, verify read (and the deny policy read
	// when deny has to wait for it). Nothing goes before it.
	Critical
	numPriorities
)

type priorityKey struct{}

// WithPriority returns a context whose requests wait for a slot with priority p.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityOf is the priority of ctx's requests (Normal when none was set or it is out of range).
func PriorityOf(ctx context.Context) Priority {
	p, ok := ctx.Value(priorityKey{}).(Priority)
	if !ok || p < Low || p >= numPriorities {
		return Normal
	}
	return p
}

// prioritySem is a counting semaphore whose waiters are served by priority, then in arrival
// order. Hand-written because no well-kept library fits: golang.org/x/sync/semaphore is
// strictly FIFO (and weighted), and a buffered channel (what the client used before) wakes
// waiters in no defined order. It is a mutex, a free count and one FIFO per priority; a
// release hands its slot straight to the next waiter, so free > 0 only when nobody waits.
type prioritySem struct {
	mu    sync.Mutex
	free  int
	queue [numPriorities][]chan struct{}
}

func newPrioritySem(n int) *prioritySem { return &prioritySem{free: n} }

// acquire takes a slot, waiting by priority p; it returns ctx's error if ctx ends first (and
// then holds no slot).
func (s *prioritySem) acquire(ctx context.Context, p Priority) error {
	s.mu.Lock()
	if s.free > 0 {
		s.free--
		s.mu.Unlock()
		return nil
	}
	if err := ctx.Err(); err != nil {
		s.mu.Unlock()
		return err
	}
	ready := make(chan struct{})
	s.queue[p] = append(s.queue[p], ready)
	s.mu.Unlock()

	select {
	case <-ready:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	select {
	case <-ready:
		// A release handed us the slot just as ctx ended: pass it on.
		s.mu.Unlock()
		s.release()
		return ctx.Err()
	default:
	}
	q := s.queue[p]
	for i, c := range q {
		if c == ready {
			s.queue[p] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	return ctx.Err()
}

// release frees a slot: to the oldest waiter of the highest priority, else to the free count.
func (s *prioritySem) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := numPriorities - 1; p >= Low; p-- {
		if q := s.queue[p]; len(q) > 0 {
			next := q[0]
			q[0] = nil
			s.queue[p] = q[1:]
			close(next)
			return
		}
	}
	s.free++
}

// waiting is how many requests wait for a slot (for tests and the gauge of a burst).
func (s *prioritySem) waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, q := range s.queue {
		n += len(q)
	}
	return n
}
