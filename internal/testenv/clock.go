package testenv

import (
	"sync"
	"time"
)

// Clock is a test clock, safe for concurrent use: Now is a start time (a fixed one, or the real
// time) plus whatever Advance added, so a test expires a lease or an approval at once instead of
// waiting for it.
type Clock struct {
	mu    sync.Mutex
	start time.Time // zero: the real time
	off   time.Duration
}

// NewClock returns a clock that stands at start until it is advanced.
func NewClock(start time.Time) *Clock { return &Clock{start: start} }

// NewRealClock returns a clock that runs with the real time, plus what Advance added (for tests
// whose other parts, such as a simulator or Slack, keep the real time).
func NewRealClock() *Clock { return &Clock{} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.start.IsZero() {
		return time.Now().Add(c.off)
	}
	return c.start.Add(c.off)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}
