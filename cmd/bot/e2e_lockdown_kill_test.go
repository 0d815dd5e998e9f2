package main

import (
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/session"
)

// TestLockdownKilledMidDeny: a real `bot serve` process is SIGKILLed while a lockdown's deny
// is half done; a second process resumes it (the members' steps through the runbook's
// reconcile, the lockdown's fan-out through its own, once its lease expired), every user ends
// in verified Deny All with one PUT each, every original is kept, and the restore that follows
// puts each one back.
func TestLockdownKilledMidDeny(t *testing.T) {
	const n = 60
	const killAfterPUTs = 5
	bin := buildBot(t)
	w := newLockdownWorld(t, n, 0, 0)
	w.env["APPROVAL_STEPS"] = "none"
	w.env["NS_MAX_INFLIGHT"] = "4"
	p1 := w.startProcess(bin)
	w.command(alice, incChan, "domain "+lockdownDomain+" chaos")
	l := w.lockdown()

	// The deny is held in the middle: the first members' PUTs are answered at once, every later
	// one waits 3 s at the PBX, so the kill comes with PUTs in flight (ended unapplied, or
	// applied after the bot died: the lost reply). A PUT latency for all of them raced the poll
	// below: on a quiet machine all 60 could finish between two polls.
	var putsSeen atomic.Int32
	w.pbx.SetFaults(nstest.Faults{Latency: 3 * time.Second, Match: func(method, path string) bool {
		return method == "PUT" && strings.Contains(path, "/users/") && putsSeen.Add(1) > killAfterPUTs
	}})
	w.click(alice, l.MessageTS, "lockdown:deny")
	w.waitLong("some members contained", func() bool {
		done := 0
		for _, inc := range w.members(l) {
			if inc.Step(session.StepDeny).Status.Finished() {
				done++
			}
		}
		return done >= killAfterPUTs
	})
	if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p1.done
	w.pbx.SetFaults(nstest.Faults{})
	half := 0
	for _, inc := range w.members(l) {
		if inc.Step(session.StepDeny).Status.Finished() {
			half++
		}
	}
	if half == n {
		t.Fatalf("the deny of all %d members finished before the kill: nothing to resume", n)
	}
	t.Logf("%d of %d members contained at the kill", half, n)

	w.startProcess(bin)
	w.waitLong("every member in verified Deny All after the resume", func() bool {
		return w.every(l, func(inc session.Incident) bool { return inc.Step(session.StepDeny).Status.Finished() })
	})
	puts := map[string]int{}
	for _, c := range w.pbx.Calls() {
		if c.Method == "PUT" && c.Status/100 == 2 {
			puts[c.Path]++
		}
	}
	for _, u := range w.users {
		user, _, _ := strings.Cut(u, "@")
		if p := w.pbxPolicy(u); p != "Deny All" {
			t.Errorf("%s in %q after the resumed deny", u, p)
		}
		if got := puts["/domains/"+lockdownDomain+"/users/"+user]; got != 1 {
			t.Errorf("%s: %d PUTs, want exactly one", u, got)
		}
	}
	for _, inc := range w.members(l) {
		if inc.MessageTS != "" || inc.Lockdown != l.ID {
			t.Errorf("%s: a card of its own (%q) or not marked a member of %s (%q)", inc.ID, inc.MessageTS, l.ID, inc.Lockdown)
		}
		if inc.Original == nil || !inc.Original.Known || inc.Original.Policy != "US and Canada" {
			t.Errorf("%s: original %+v, want US and Canada kept", inc.Key(), inc.Original)
		}
	}
	w.waitLong("the lockdown's deny run finished by the second process", func() bool {
		r := w.getLockdown(l.ID).LastRun()
		return r != nil && r.Done()
	})

	w.click(alice, l.MessageTS, "lockdown:restore")
	w.waitLong("the lockdown closed restored", func() bool { return w.getLockdown(l.ID).State == session.StateRestored })
	for _, u := range w.users {
		if p := w.pbxPolicy(u); p != "US and Canada" {
			t.Errorf("%s in %q after the restore", u, p)
		}
	}
}
