package slacksocket

import "time"

// SetClock gives c the clock of its ack latency and of its corks' hold (before Run): a test's
// clock moves only when the test says, so what a latency counts is seen without timing anything.
func SetClock(c *Client, now func() time.Time) { c.now = now }

// SetQuiesceCaps gives c's shutdowns the waits quiet, read and goodbye instead of shutdownQuiet,
// shutdownRead and goodbyeRead (before Run).
func SetQuiesceCaps(c *Client, quiet, read, goodbye time.Duration) {
	c.caps = quiesceCaps{quiet: quiet, read: read, goodbye: goodbye}
}
