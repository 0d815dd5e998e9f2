package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// TestServeKilledBeforeTheCard (found by TestChaos): the process that opened an incident is
// SIGKILLed while the card's post waits out Slack's Retry-After, so the incident is stored and
// has no card. Another process posts the card (once) on its maintenance pass, and the card works;
// before, the incident stayed open with nothing in Slack to act on, and a second /compromised
// linked to a card that did not exist.
func TestServeKilledBeforeTheCard(t *testing.T) {
	bin := buildBot(t)
	w := newWorld(t)
	p1 := w.startProcess(bin)
	w.slack.RateLimit("chat.postMessage", 1, 60) // the first post waits a minute for its retry
	w.command(alice, incChan, target)
	w.waitFor("the card's post answered 429", func() bool { return len(w.slack.Calls("chat.postMessage")) > 0 })
	inc, err := w.store.FindOpen(context.Background(), "1001", "acme.example")
	if err != nil || inc.MessageTS != "" {
		t.Fatalf("before the kill: %+v, %v; want an open incident without a card", inc, err)
	}
	if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p1.done
	killed := time.Now()
	w.startProcess(bin)
	ts, _ := w.card("1001", "acme.example")
	t.Logf("card posted %s after the kill", time.Since(killed).Round(time.Millisecond))
	posted := 0
	for _, m := range w.slack.Messages() {
		if m.Method == "chat.postMessage" && m.ThreadTS == "" && strings.Contains(string(m.Blocks), inc.ID) {
			posted++
		}
	}
	if posted != 1 {
		t.Errorf("%d cards posted for %s, want 1", posted, inc.ID)
	}
	w.click(alice, ts, "step:deny")
	w.cardShows(ts, "deny done")
	if st := w.step(inc.ID, session.StepDeny); !st.Status.Finished() {
		t.Errorf("deny is %s after a click on the late card", st.Status)
	}
}
