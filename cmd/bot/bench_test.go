package main

import (
	"testing"

	"github.com/compromised-responder/bot/internal/session"
)

// BenchmarkSlackToContainment measures what the on-call engineer waits for, end to end through
// `run`: the real slack-go Socket Mode client against slackfake, the simulator and redis-server.
// One op = "/compromised 1001@acme.example" → card posted → click Deny → card shows deny verified
// (policy set, read back, live calls ended). Restoring between iterations is not timed.
func BenchmarkSlackToContainment(b *testing.B) {
	w := newWorld(b)
	w.env["APPROVAL_STEPS"] = "none" // time the responder's own click, not a second person
	w.env["LOG_LEVEL"] = "warn"
	w.start()
	for b.Loop() {
		ts, inc := w.openAndDeny("benchmark")

		b.StopTimer()
		w.click(alice, ts, "step:restore")
		w.waitFor("restore", func() bool { return w.incident(inc.ID).State == session.StateRestored })
		b.StartTimer()
	}
}
