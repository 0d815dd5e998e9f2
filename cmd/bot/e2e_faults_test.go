package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// TestServeRestart: the bot stopped (SIGTERM-style, while a step runs) and started again: the
// running step ends with its result recorded, the card's buttons keep working, the original
// policy is restored, and the thread holds every audit line once.
func TestServeRestart(t *testing.T) {
	w := newWorld(t)
	b1 := w.start()
	ts, inc := w.openAndDeny("")

	// A slow PBX: recreate is still running when the process is told to stop.
	w.slowDeviceCreates(400 * time.Millisecond)
	w.click(alice, ts, "step:recreate")
	w.waitFor("recreate running", func() bool { return w.step(inc.ID, session.StepRecreate).Status == session.StatusRunning })
	b1.stop(t)
	if st := w.step(inc.ID, session.StepRecreate); !st.Status.Finished() {
		t.Fatalf("after a graceful stop recreate is %s (progress %v), want finished", st.Status, st.Progress)
	}
	w.pbx.SetFaults(nstest.Faults{})

	w.start()
	w.cardShows(ts, "recreate done")
	w.restoreApproved(ts)
	replies := w.threadComplete(inc.ID)
	entries, _ := w.store.Audit(context.Background(), inc.ID)
	if len(replies) != len(entries) {
		t.Errorf("thread has %d replies for %d audit entries across a restart", len(replies), len(entries))
	}
	w.cardMonotonic(ts)
	w.scanSecrets(secretValues(w.slack.Ephemerals(alice)))
}

// TestServeLinkDrop: the Socket Mode link dropped (and later refreshed by Slack) while a step
// runs: the step completes and is reported once, and /readyz follows the link.
func TestServeLinkDrop(t *testing.T) {
	w := newWorld(t)
	b := w.start()
	ts, inc := w.openAndDeny("")

	w.slowDeviceCreates(300 * time.Millisecond)
	w.click(alice, ts, "step:recreate")
	w.waitFor("recreate running", func() bool { return w.step(inc.ID, session.StepRecreate).Status == session.StatusRunning })
	connects := w.slack.Connects()
	w.slack.RateLimit("apps.connections.open", 1, 2) // keep the link down long enough to see it
	w.slack.DropSockets()
	w.waitReady(b, false)
	code, r, err := readyz(b.url)
	if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(strings.Join(r.Problems, ";"), "socket") {
		t.Errorf("readyz with the link down: %d %+v %v", code, r, err)
	}
	w.waitFor("a fresh socket", func() bool { return w.slack.Connects() > connects && w.slack.LiveSockets() == socketsPerBot })
	w.waitReady(b, true)
	w.waitFor("recreate finished", func() bool { return w.step(inc.ID, session.StepRecreate).Status.Finished() })

	// Slack recycles the link while reset runs.
	w.pbx.SetFaults(nstest.Faults{Latency: 300 * time.Millisecond, Match: func(method, path string) bool {
		return method == "DELETE" && strings.HasPrefix(path, "/jwt/")
	}})
	w.click(alice, ts, "step:reset")
	w.waitFor("reset running", func() bool { return w.step(inc.ID, session.StepReset).Status == session.StatusRunning })
	connects = w.slack.Connects()
	w.slack.Disconnect("refresh_requested")
	w.waitFor("a fresh socket", func() bool { return w.slack.Connects() > connects && w.slack.LiveSockets() == socketsPerBot })
	w.waitFor("reset finished", func() bool { return w.step(inc.ID, session.StepReset).Status.Finished() })
	w.pbx.SetFaults(nstest.Faults{})
	w.waitReady(b, true)

	replies := w.threadComplete(inc.ID)
	count := map[string]int{}
	for _, r := range replies {
		for _, s := range []string{"step recreate done", "step reset warnings", "step reset done"} {
			if strings.Contains(r.Text, s) {
				count["done"]++
			}
		}
		count[r.Text]++
	}
	if count["done"] != 2 {
		t.Errorf("%d step results in the thread, want 2 (recreate and reset, once each)", count["done"])
	}
	for text, n := range count {
		if n > 1 && text != "done" {
			t.Errorf("reported %d times: %s", n, text)
		}
	}
	// One secrets message for recreate, one for reset.
	w.ephemeralWith(alice, "Voicemail PIN")
	got := 0
	for _, m := range w.slack.Ephemerals(alice) {
		if strings.Contains(m.Text, "New credentials") {
			got++
		}
	}
	if got != 2 {
		t.Errorf("alice got %d credential messages, want 2", got)
	}
	w.scanSecrets(secretValues(w.slack.Ephemerals(alice)))
}

// TestServeReadyzRedis: /readyz turns non-200 within 5 s of losing Redis and back after it
// returns.
func TestServeReadyzRedis(t *testing.T) {
	w := newWorld(t)
	rs := testenv.StartRedis(t)
	w.env["REDIS_URL"] = rs.URL()
	b := w.start()
	rs.Kill()
	lost := time.Now()
	w.waitReady(b, false)
	if d := time.Since(lost); d > 5*time.Second {
		t.Errorf("readyz noticed Redis was gone after %s, want ≤ 5 s", d)
	}
	_, r, _ := readyz(b.url)
	if !strings.Contains(strings.Join(r.Problems, ";"), "redis") {
		t.Errorf("readyz problems %v do not name redis", r.Problems)
	}
	rs.Start()
	w.waitReady(b, true)
}
