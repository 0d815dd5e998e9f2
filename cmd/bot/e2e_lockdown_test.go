package main

import (
	"context"
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/session"
)

// TestLockdownDomain: `/compromised domain` for a 200-user domain through Slack (slackfake),
// the simulator and Redis: one card; every user becomes an incident of their own (one of them
// joins with the incident it had); Deny on the card puts every user in verified Deny All; the
// restore (under APPROVAL_STEPS=restore, approved by a second person) puts each user's own
// original back, and the users with no known original are listed and stay denied.
func TestLockdownDomain(t *testing.T) {
	const n, denied = 200, 3
	w := newLockdownWorld(t, n, denied, 0)
	w.start()

	// 3010 already has an incident of its own: it joins the lockdown with it.
	w.command(alice, incChan, "3010@"+lockdownDomain+" earlier report")
	_, own := w.card("3010", lockdownDomain)

	w.command(alice, incChan, "domain "+lockdownDomain+" fraud wave since 01:50")
	l := w.lockdown()
	if len(l.Members) != n {
		t.Fatalf("%d members, want %d", len(l.Members), n)
	}
	ids := map[string]bool{}
	for _, m := range l.Members {
		ids[m.IncidentID] = true
		if m.Key() == "3010@"+lockdownDomain && (m.IncidentID != own.ID || !m.Joined) {
			t.Errorf("3010 is member %+v, want it to join with %s", m, own.ID)
		}
	}
	if len(ids) != n {
		t.Errorf("%d distinct incidents for %d members", len(ids), n)
	}
	cards := 0
	for _, m := range w.slack.Channel(incChan) {
		if m.ThreadTS == "" && strings.Contains(m.Text, "Lockdown") {
			cards++
		}
	}
	if cards != 1 {
		t.Errorf("%d lockdown cards in the channel, want 1", cards)
	}

	w.click(alice, l.MessageTS, "lockdown:deny")
	w.waitLong("every member in verified Deny All", func() bool {
		return w.every(l, func(inc session.Incident) bool { return inc.Step(session.StepDeny).Status.Finished() })
	})
	for _, u := range w.users {
		if p := w.pbxPolicy(u); p != "Deny All" {
			t.Errorf("%s is in %q on the PBX after the lockdown's deny", u, p)
		}
	}
	w.cardShows(l.MessageTS, "200 contained")

	// Each user is a full incident: status per user works.
	w.command(bob, incChan, "status 3100@"+lockdownDomain)
	w.ephemeralWith(bob, "3100@"+lockdownDomain)

	w.click(alice, l.MessageTS, "lockdown:restore")
	w.cardShows(l.MessageTS, "awaits approval")
	w.click(bob, l.MessageTS, "approve:restore")
	w.waitLong("every member with a known original restored", func() bool {
		return w.every(l, func(inc session.Incident) bool {
			return inc.State == session.StateRestored || inc.Step(session.StepRestore).Status == session.StatusFailed
		})
	})
	for i, u := range w.users {
		want := "US and Canada"
		if i < denied {
			want = "Deny All"
		}
		if p := w.pbxPolicy(u); p != want {
			t.Errorf("%s is in %q after the restore, want %q", u, p, want)
		}
	}
	w.cardShows(l.MessageTS, "3 with no known original")
	for _, inc := range w.members(l) {
		if inc.Step(session.StepRestore).Status == session.StatusDone && inc.Step(session.StepRestore).ApprovedBy != bob {
			t.Errorf("%s restored without bob's approval on record: %+v", inc.ID, inc.Step(session.StepRestore))
		}
	}
	// The thread: a line per batch, not per user.
	l = w.getLockdown(l.ID)
	if got := len(w.slack.Thread(incChan, l.MessageTS)); got == 0 || got > 12 {
		t.Errorf("%d thread replies on the lockdown card, want a few (one per batch)", got)
	}
	// Abort closes the rest (the three still denied), as for an incident.
	w.click(alice, l.MessageTS, "lockdown:abort")
	w.waitLong("the lockdown closed", func() bool { return !w.getLockdown(l.ID).Open() })
	if st := w.getLockdown(l.ID).State; st != session.StateAborted {
		t.Errorf("lockdown closed as %s, want aborted (three users were never restored)", st)
	}
	w.cardShows(l.MessageTS, "Closed lockdown")
}

// TestLockdownBadInput: an unknown domain, 501 addresses, an unknown user and mixed garbage are
// refused with a clear ephemeral answer; nothing is opened and nothing is written on the PBX.
func TestLockdownBadInput(t *testing.T) {
	w := newLockdownWorld(t, 5, 0, 0)
	w.start()
	for _, tc := range []struct{ text, want string }{
		{"domain nope.example", "no domain nope.example"},
		{usersCommand(501), "at most 500 addresses"},
		{"users 3000@" + lockdownDomain + " 3999@" + lockdownDomain, "3999@" + lockdownDomain + " is not on the PBX"},
		{"users 3000@" + lockdownDomain + " oops 3001@" + lockdownDomain, "comes after the reason"},
		{"domain ~", "is not a domain"},
		{"plan domain nope.example", "no domain nope.example"},
	} {
		w.command(alice, incChan, tc.text)
		w.ephemeralWith(alice, tc.want)
	}
	if n := w.pbxWrites(); n != 0 {
		t.Errorf("bad input made %d PBX writes", n)
	}
	open, err := w.store.ListOpenLockdowns(context.Background())
	if err != nil || len(open) != 0 {
		t.Errorf("bad input opened %d lockdowns (%v)", len(open), err)
	}
	if incs, err := w.store.ListOpen(context.Background()); err != nil || len(incs) != 0 {
		t.Errorf("bad input opened %d incidents (%v)", len(incs), err)
	}
	// The plan of a good lockdown: every user and device, no write.
	w.command(alice, incChan, "plan users 3000@"+lockdownDomain+" 3001@"+lockdownDomain)
	m := w.ephemeralWith(alice, "Dry run of a lockdown")
	if !strings.Contains(string(m.Blocks), "2 users · 2 devices") || !strings.Contains(string(m.Blocks), "3001a") {
		t.Errorf("plan answer: %s", m.Blocks)
	}
	if n := w.pbxWrites(); n != 0 {
		t.Errorf("the plan made %d PBX writes", n)
	}
	// Someone not in RESPONDERS is refused in the ack, before any PBX call.
	calls := len(w.pbx.Calls())
	w.command(mallory, incChan, "domain "+lockdownDomain)
	w.ephemeralWith(mallory, "not allowed")
	if got := len(w.pbx.Calls()); got != calls {
		t.Errorf("a refused lockdown made %d PBX calls", got-calls)
	}
}
