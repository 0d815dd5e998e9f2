package netsapiens

import (
	"context"
	"sync"
	"time"
)

// Priority orders the requests that wait for one of the client's MaxInflight slots: when a
// slot frees, the oldest waiting request of the highest priority takes it. MaxInflight stays
// the ceiling whatever the priority; a request that finds a slot free never waits, but a Low
// one in a burst (lowDeferFrom, below).
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

// Low waits out a burst even when a slot is free (issue 9 item 5). Under a burst of opens and
// denies the bot's own CPU, not the PBX, is often what the burst waits for: the PBX's slots are
// free between its requests, and a Low read that takes one (a card's devices, evidence's call
// records) costs the bot the CPU to parse and store it, and the card update it leads to, while
// the opens and denies behind it wait for that CPU. So while lowDeferFrom or more requests above
// Low are in flight or waiting, a Low request waits, up to lowDeferMax: then it takes the next
// free slot as before (behind every waiter above it), so a card's cosmetics are late, never
// lost. One incident alone is not a burst: at most two of its requests above Low are at the PBX
// at once (the deny policy's warm-up: the domain's policy beside the open's user read, then the
// system-level policy and its rules), so its devices, live calls and evidence go at once.
const (
	lowDeferFrom = 3
	lowDeferMax  = 2 * time.Second
)

// prioritySem is a counting semaphore whose waiters are served by priority, then in arrival
// order. Hand-written because no well-kept library fits: golang.org/x/sync/semaphore is
// strictly FIFO (and weighted), and a buffered channel (what the client used before) wakes
// waiters in no defined order; neither holds a request back while a slot is free. It is a
// mutex, a free count, the requests in flight per priority and one FIFO per priority; a release
// hands its slot straight to the next waiter above Low, so free > 0 only when nobody waits but
// Low requests waiting out a burst.
type prioritySem struct {
	mu       sync.Mutex
	free     int
	busy     [numPriorities]int // in flight, by priority
	queue    [numPriorities][]*waiter
	deferMax time.Duration // lowDeferMax; shorter in tests
}

// waiter is a request waiting for a slot: ready is closed when it holds one.
type waiter struct {
	ready chan struct{}
	since time.Time
}

func newPrioritySem(n int) *prioritySem { return &prioritySem{free: n, deferMax: lowDeferMax} }

// acquire takes a slot, waiting by priority p; it returns ctx's error if ctx ends first (and
// then holds no slot). Each acquire that returns nil is paired with a release(p).
func (s *prioritySem) acquire(ctx context.Context, p Priority) error {
	s.mu.Lock()
	if s.free > 0 && (p > Low || len(s.queue[Low]) == 0 && !s.burstLocked()) {
		s.take(p)
		s.mu.Unlock()
		return nil
	}
	if err := ctx.Err(); err != nil {
		s.mu.Unlock()
		return err
	}
	w := &waiter{ready: make(chan struct{}), since: time.Now()}
	s.queue[p] = append(s.queue[p], w)
	deferMax := s.deferMax
	s.mu.Unlock()

	var overdue <-chan time.Time
	if p == Low {
		t := time.NewTimer(deferMax)
		defer t.Stop()
		overdue = t.C
	}
	for {
		select {
		case <-w.ready:
			return nil
		case <-ctx.Done():
			s.giveUp(w, p)
			return ctx.Err()
		case <-overdue:
			// Waited out the burst long enough: a slot free now is this one's (the Low queue
			// is FIFO, so the older ones are overdue too and served first). Without a free slot
			// it waits on: release serves an overdue Low waiter as soon as none above it waits.
			overdue = nil
			s.mu.Lock()
			s.serveLowLocked()
			s.mu.Unlock()
		}
	}
}

// giveUp takes w, whose context ended, out of p's queue; a slot handed to it meanwhile is passed on.
func (s *prioritySem) giveUp(w *waiter, p Priority) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-w.ready:
		s.handLocked(p)
		return
	default:
	}
	q := s.queue[p]
	for i, c := range q {
		if c == w {
			s.queue[p] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	s.serveLowLocked() // one waiter fewer above Low may end the burst
}

// take gives a free slot to a request of priority p.
func (s *prioritySem) take(p Priority) {
	s.free--
	s.busy[p]++
}

// release frees the slot of a request of priority p.
func (s *prioritySem) release(p Priority) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handLocked(p)
}

// handLocked frees a slot held at priority p: to the oldest waiter of the highest priority above
// Low, else to the free count, from which the waiting Low requests take what serveLowLocked allows.
func (s *prioritySem) handLocked(p Priority) {
	s.busy[p]--
	for q := numPriorities - 1; q > Low; q-- {
		if len(s.queue[q]) > 0 {
			s.busy[q]++
			s.pop(q)
			return
		}
	}
	s.free++
	s.serveLowLocked()
}

// serveLowLocked gives free slots to the waiting Low requests, oldest first, while there is no
// burst or the oldest has waited lowDeferMax.
func (s *prioritySem) serveLowLocked() {
	for s.free > 0 && len(s.queue[Low]) > 0 {
		if s.burstLocked() && time.Since(s.queue[Low][0].since) < s.deferMax {
			return
		}
		s.take(Low)
		s.pop(Low)
	}
}

// pop hands the slot taken for it to the oldest waiter of priority p.
func (s *prioritySem) pop(p Priority) {
	q := s.queue[p]
	next := q[0]
	q[0] = nil
	s.queue[p] = q[1:]
	close(next.ready)
}

// burstLocked reports whether lowDeferFrom or more requests above Low are in flight or waiting.
func (s *prioritySem) burstLocked() bool {
	n := 0
	for p := Low + 1; p < numPriorities; p++ {
		n += s.busy[p] + len(s.queue[p])
	}
	return n >= lowDeferFrom
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
