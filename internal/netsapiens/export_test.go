package netsapiens

import "time"

// Waiting is how many of c's requests wait for one of its MaxInflight slots.
func (c *Client) Waiting() int { return c.sem.waiting() }

// SetLowDeferMax sets how long a Low request waits out a burst (lowDeferMax).
func (c *Client) SetLowDeferMax(d time.Duration) {
	c.sem.mu.Lock()
	defer c.sem.mu.Unlock()
	c.sem.deferMax = d
}
