package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
)

// TestLockdownRestoreOverGate: the restore gate of a lockdown's members through Slack, the
// simulator and Redis. Three users are denied and re-created; 3000's softphone registers again,
// 3001 calls Nigeria after containment, 3002's softphone stays silent. Restore (all) restores
// 3000 and holds the other two; the card lists them and offers one red Restore over the gate
// whose dialog names the count and why. A click of it on another message is refused as
// forged; the real one (restore is in APPROVAL_STEPS) asks for approval, which the card flags
// as over the gate; bob's approval restores both, each audited gate.overridden. A click once the
// lockdown is closed is refused.
func TestLockdownRestoreOverGate(t *testing.T) {
	w := newLockdownWorld(t, 3, 0, 0)
	w.env["RESTORE_GATE"] = "true"
	w.start()
	w.command(alice, incChan, "users 3000@"+lockdownDomain+" 3001@"+lockdownDomain+" 3002@"+lockdownDomain+" leaked list")
	l := w.lockdown()
	w.click(alice, l.MessageTS, "lockdown:deny")
	w.waitLong("every member denied", func() bool {
		return w.last(l).Done() && w.every(l, func(inc session.Incident) bool { return inc.Step(session.StepDeny).Status.Finished() })
	})
	w.click(alice, l.MessageTS, "lockdown:recreate")
	w.waitLong("every member re-created", func() bool {
		return w.last(l).Done() && w.every(l, func(inc session.Incident) bool { return inc.Step(session.StepRecreate).Status.Finished() })
	})
	for _, d := range w.pbx.Devices(lockdownDomain, "3000") {
		if err := w.pbx.RegisterDevice(lockdownDomain, d["device"].(string), d["device-sip-registration-password"].(string),
			"198.51.100.7:5060", "Zoiper 5"); err != nil {
			t.Fatal(err)
		}
	}
	w.pbx.AddCDR(nstest.CDR{Domain: lockdownDomain, User: "3001", Number: "2348031234567", Start: time.Now(), Seconds: 60, Type: 1})

	// Restore (all), approved: 3000 is restored, 3001 and 3002 are held with no PBX write.
	w.click(alice, l.MessageTS, "lockdown:restore")
	w.cardShows(l.MessageTS, "awaits approval")
	w.waitLong("the restore request run finished", func() bool { return w.last(l).Done() })
	w.click(bob, l.MessageTS, "approve:restore")
	w.waitLong("3000 restored, the others held", func() bool {
		return w.last(l).Done() && w.getLockdown(l.ID).LastRun().Kind == "approve"
	})
	incs := w.members(l)
	if incs[0].State != session.StateRestored {
		t.Fatalf("3000 (gate met) is %s: %+v", incs[0].State, incs[0].Step(session.StepRestore))
	}
	for _, inc := range incs[1:] {
		if st := inc.Step(session.StepRestore); st.Status != session.StatusFailed || st.ErrKind != "gate" {
			t.Fatalf("%s restore: %s %s: %s", inc.Key(), st.Status, st.ErrKind, st.ErrMessage)
		}
		if p := w.pbxPolicy(inc.Key()); p != "Deny All" {
			t.Fatalf("held %s is in %q", inc.Key(), p)
		}
	}
	w.cardShows(l.MessageTS, "2 users held by the restore gate")
	w.cardShows(l.MessageTS, "3001@"+lockdownDomain+": 1 international or premium call(s) since containment")
	w.cardShows(l.MessageTS, `"action_id":"lockdown:gate-restore"`)
	w.cardShows(l.MessageTS, "THE RESTORE GATE IS NOT MET for 2 users: 1 with international or premium calls since containment, "+
		"2 with re-created devices not registered again.")
	w.cardShows(l.MessageTS, "Ask for approval to restore them over the gate anyway?")
	w.command(alice, incChan, "status "+l.ID)
	// status LCK-… words why each held member is held.
	w.ephemeralWith(alice, "— held by the restore gate: 3002a not registered again with the new credentials")

	// The button's value on another message (an incident's card) is forged: refused, audited.
	w.command(alice, incChan, target+" unrelated")
	other, _ := w.card("1001", "acme.example")
	runs := len(w.getLockdown(l.ID).Runs)
	w.clickWith(slackfake.Click{UserID: alice, ChannelID: incChan, MessageTS: other, ActionID: "lockdown:gate-restore",
		BlockID: "l:v1", Value: l.ID, Stale: true})
	w.ephemeralWith(alice, "does not belong to this lockdown's card")
	w.globalEntry("refused.forged", l.ID+": button lockdown:gate-restore")
	if got := len(w.getLockdown(l.ID).Runs); got != runs {
		t.Fatalf("a forged click started a run (%d runs, was %d)", got, runs)
	}

	w.click(alice, l.MessageTS, "lockdown:gate-restore")
	w.cardShows(l.MessageTS, "2 of them *over the restore gate*")
	w.waitLong("the over-gate run finished", func() bool { return w.last(l).Done() })
	w.cardShows(l.MessageTS, "2 OF THEM OVER THE RESTORE GATE (not met)")
	for _, inc := range w.members(l)[1:] {
		if p := w.pbxPolicy(inc.Key()); p != "Deny All" {
			t.Fatalf("%s restored before the approval: %q", inc.Key(), p)
		}
	}
	w.click(bob, l.MessageTS, "approve:restore")
	w.waitLong("the lockdown closed restored", func() bool { return w.getLockdown(l.ID).State == session.StateRestored })
	for _, inc := range w.members(l) {
		if p := w.pbxPolicy(inc.Key()); p != "US and Canada" {
			t.Errorf("%s is in %q after the restore over the gate", inc.Key(), p)
		}
	}
	for _, inc := range w.members(l)[1:] {
		entries, err := w.store.Audit(context.Background(), inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range entries {
			// The requester is the actor of record; bob's approval is its own entry.
			if e.Action == "gate.overridden" && e.Actor == alice && strings.HasPrefix(e.Detail, "restored over the gate: ") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no gate.overridden entry by %s", inc.Key(), alice)
		}
	}
	w.cardShows(l.MessageTS, "Closed lockdown (restored)")

	// A click of the old card once the lockdown is closed is refused.
	w.clickWith(slackfake.Click{UserID: alice, ChannelID: incChan, MessageTS: l.MessageTS, ActionID: "lockdown:gate-restore",
		BlockID: "l:v1", Value: l.ID, Stale: true})
	w.ephemeralWith(alice, "The lockdown is closed")
}

// last is the newest run of l as stored now (a new click is refused while it runs).
func (w *lockdownWorld) last(l session.Lockdown) *session.LockdownRun {
	w.t.Helper()
	r := w.getLockdown(l.ID).LastRun()
	if r == nil {
		return &session.LockdownRun{}
	}
	return r
}

// globalEntry waits for an entry of the global audit stream with action whose detail starts with prefix.
func (w *world) globalEntry(action, prefix string) {
	w.t.Helper()
	w.waitFor("a global audit entry "+action+" "+prefix, func() bool {
		for _, e := range w.globalAudit() {
			if e.Action == action && strings.HasPrefix(e.Detail, prefix) {
				return true
			}
		}
		return false
	})
}
