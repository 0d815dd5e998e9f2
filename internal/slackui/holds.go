package slackui

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// Audit lines are held back briefly so that the lines of one burst of activity (an open and the
// deny clicked right after it, a step's lines) go out in one thread reply: under a burst every
// chat.postMessage counts against the channel's one per second, which the cards need. A sync
// that finds lines waiting posts them once the incident has written none for threadQuiet, or
// threadHoldMax after it first found them, whichever comes first. Never held: an approval request
// (a page that someone waits for), and anything once shutdown began (flushHeld). The lines are
// in Redis all along, so a hold delays them and loses nothing.
const (
	threadQuiet   = 1500 * time.Millisecond
	threadHoldMax = 5 * time.Second
)

// A card update is held back, for at most runningHold, while the newest version shows a step
// running that has achieved nothing yet (no milestone: remediate.StepDef.Reached): a step usually
// reaches its first milestone, or ends, within a few PBX round trips, and one update then shows
// it, instead of one per record the step writes on the way (started, original recorded, PUT
// accepted). A milestone, an end, a failure or an approval request is never held.
const runningHold = 300 * time.Millisecond

// heldError says a sync held its card or lines back; the sync runs again after d.
type heldError struct{ d time.Duration }

func (e heldError) Error() string { return fmt.Sprintf("card or thread held for %s", e.d) }

// heldFor is how long err asks the sync to wait, if it is a heldError.
func heldFor(err error) (time.Duration, bool) {
	var h heldError
	if errors.As(err, &h) {
		return h.d, true
	}
	return 0, false
}

// threadHolds remembers, per incident, when a sync first found audit lines waiting and when the
// newest of them was first seen, in this process's monotonic time (not the App's clock, which
// tests may stop).
type threadHolds struct {
	mu    sync.Mutex
	waits map[string]threadWait
}

type threadWait struct {
	first  time.Time // a sync first found lines waiting
	newest int64     // the newest waiting seq seen
	seenAt time.Time // when newest was first seen
}

func newThreadHolds() *threadHolds { return &threadHolds{waits: map[string]threadWait{}} }

// wait is how much longer the lines of incident id up to seq newest should wait (0: post now).
func (h *threadHolds) wait(id string, newest int64) time.Duration {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	w, ok := h.waits[id]
	if !ok {
		w = threadWait{first: now}
	}
	if w.newest != newest {
		w.newest, w.seenAt = newest, now
	}
	h.waits[id] = w
	return max(0, min(threadQuiet-now.Sub(w.seenAt), threadHoldMax-now.Sub(w.first)))
}

// posted forgets incident id's wait: its lines went out.
func (h *threadHolds) posted(id string) {
	h.mu.Lock()
	delete(h.waits, id)
	h.mu.Unlock()
}

// cardHolds remembers, per incident, since when a sync has held its card for one step run (in
// monotonic time, like threadHolds).
type cardHolds struct {
	mu    sync.Mutex
	waits map[string]cardWait
}

type cardWait struct {
	run   string // the step run held: step and attempt
	since time.Time
}

func newCardHolds() *cardHolds { return &cardHolds{waits: map[string]cardWait{}} }

// wait is how much longer incident id's card may wait for step run run to reach something.
func (h *cardHolds) wait(id, run string) time.Duration {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	w, ok := h.waits[id]
	if !ok || w.run != run {
		w = cardWait{run: run, since: now}
		h.waits[id] = w
	}
	return max(0, runningHold-now.Sub(w.since))
}

// shown forgets incident id's wait: its card was brought up to date.
func (h *cardHolds) shown(id string) {
	h.mu.Lock()
	delete(h.waits, id)
	h.mu.Unlock()
}

// runningBlank names the step run of inc that is running and has reached no milestone yet, if
// one is ("" otherwise, or when another step's state is what changed to something else).
func runningBlank(inc session.Incident) string {
	for _, s := range session.Steps {
		st := inc.Step(s)
		if st.Status != session.StatusRunning {
			continue
		}
		if d, ok := remediate.Def(s); ok && reached(d, st) == "" {
			return fmt.Sprintf("%s#%d", s, st.Attempts)
		}
	}
	return ""
}

// hold runs a sync of id again after d; until then the change set is not idle, so a shutdown
// waits for it (flushHeld runs it at once).
func (c *Changes) hold(ctx context.Context, id string, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.flush {
		c.markLocked(id)
		return
	}
	if t := c.held[id]; t != nil {
		t.Stop()
	}
	c.held[id] = time.AfterFunc(d, func() {
		c.mu.Lock()
		delete(c.held, id)
		c.mu.Unlock()
		c.Changed(ctx, id)
	})
}

// flushHeld ends every hold now and holds nothing from now on (shutdown: post what waits).
func (c *Changes) flushHeld() {
	c.mu.Lock()
	c.flush = true
	for id, t := range c.held {
		t.Stop()
		delete(c.held, id)
		c.markLocked(id)
	}
	c.mu.Unlock()
	c.signal()
}

// flushing reports whether holds are over (flushHeld ran).
func (c *Changes) flushing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flush
}
