package main

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// TestLockdownKilledBeforeTheCard (found by the chaos run, seed 7): the replica that opened a
// lockdown is SIGKILLed after storing it and its members and before its card was posted (the post
// waits on a 429's Retry-After). Nothing in Slack showed the lockdown, its members have no cards
// of their own by design, so nobody could act on them: a second replica's maintenance pass now
// posts the card (once), and the lockdown works from it.
func TestLockdownKilledBeforeTheCard(t *testing.T) {
	const n = 8
	bin := buildBot(t)
	w := newLockdownWorld(t, n, 0, 0)
	w.env["APPROVAL_STEPS"] = "none"
	p1 := w.startProcess(bin)
	w.slack.RateLimit("chat.postMessage", 1, 60) // the card's post waits a minute for its retry
	w.command(alice, incChan, "domain "+lockdownDomain+" killed before its card")
	var l session.Lockdown
	w.waitLong("the lockdown stored and its card's post answered 429", func() bool {
		open, err := w.store.ListOpenLockdowns(context.Background())
		if err != nil || len(open) != 1 || len(w.slack.Calls("chat.postMessage")) == 0 {
			return false
		}
		l = open[0]
		return true
	})
	if l.MessageTS != "" {
		t.Fatalf("the lockdown has a card (%s) before the kill", l.MessageTS)
	}
	if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p1.done
	killed := time.Now()
	w.startProcess(bin)
	l = w.lockdown()
	t.Logf("card posted %s after the kill", time.Since(killed).Round(time.Millisecond))
	posted := 0
	for _, m := range w.slack.Messages() {
		if m.Method == "chat.postMessage" && m.ThreadTS == "" && strings.Contains(m.Text, " "+l.ID+":") {
			posted++
		}
	}
	if posted != 1 {
		t.Errorf("%d cards posted for %s, want 1", posted, l.ID)
	}
	if got := len(l.Members); got != n {
		t.Errorf("%d members, want %d", got, n)
	}
	w.click(alice, l.MessageTS, "lockdown:deny")
	w.waitLong("every member in verified Deny All from the late card", func() bool {
		return w.every(l, func(inc session.Incident) bool { return inc.Step(session.StepDeny).Status.Finished() })
	})
	w.cardShows(l.MessageTS, strconv.Itoa(n)+" contained")
}

// TestLockdownKilledBeforeTheClosedCard (found by the chaos run, seed 7): the replica that closed
// a lockdown is SIGKILLed before its card showed the close (the update waits on a 429's
// Retry-After). The maintenance pass only looks at open lockdowns, so the card said "Lockdown"
// with its buttons for ever: the next replica now syncs the card of a lockdown with a recent
// entry in the global audit chain, as it does an incident's.
func TestLockdownKilledBeforeTheClosedCard(t *testing.T) {
	const n = 3
	bin := buildBot(t)
	w := newLockdownWorld(t, n, 0, 0)
	w.env["APPROVAL_STEPS"] = "none"
	p1 := w.startProcess(bin)
	w.command(alice, incChan, "domain "+lockdownDomain+" killed before its closed card")
	l := w.lockdown()
	w.click(alice, l.MessageTS, "lockdown:deny")
	w.waitLong("every member denied", func() bool {
		return w.every(l, func(inc session.Incident) bool { return inc.Step(session.StepDeny).Status.Finished() })
	})
	w.cardShows(l.MessageTS, strconv.Itoa(n)+" contained")
	w.slack.RateLimit("chat.update", 1000, 60) // the card's updates wait a minute for their retry
	w.click(alice, l.MessageTS, "lockdown:abort")
	w.waitLong("the lockdown closed", func() bool { return !w.getLockdown(l.ID).Open() })
	if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p1.done
	w.slack.RateLimit("chat.update", 0, 0)
	if m, _ := w.slack.Message(incChan, l.MessageTS); strings.Contains(m.Text, "Closed") {
		t.Fatalf("the card showed the close before the kill: %s", m.Text)
	}
	w.startProcess(bin)
	w.cardShows(l.MessageTS, "Closed lockdown (aborted) "+l.ID)
}
