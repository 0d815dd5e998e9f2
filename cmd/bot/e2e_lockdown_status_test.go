package main

import (
	"strings"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/session"
)

// TestLockdownStatus: `/compromised status LCK-…` answers, only to the asker, with the
// lockdown's progress and its members' states, the member whose deny failed first; an unknown
// or malformed ID gets a clear answer; `bot respond status LCK-…` prints the same from the CLI.
// The card follows the members' evidence as it is read (a call made after the open is on it
// once deny has contained the users), and its Reset dialog says the portal passwords stay.
func TestLockdownStatus(t *testing.T) {
	w := newLockdownWorld(t, 3, 0, 0)
	env := w.cliEnv()
	w.start()
	w.pbx.FailNext("PUT", "/domains/"+lockdownDomain+"/users/3002", 403, "Permission Denied")
	w.command(alice, incChan, "users 3000@"+lockdownDomain+" 3001@"+lockdownDomain+" 3002@"+lockdownDomain)
	l := w.lockdown()
	// Without NS_V1_PORTAL_PASSWORD the Reset (all) dialog says the portal passwords are not changed.
	w.cardShows(l.MessageTS, "the portal passwords are not changed: reset them in the Manager Portal")
	// A call of 3000's after the open: the evidence read again at containment brings it to the card.
	w.pbx.AddCDR(nstest.CDR{Domain: lockdownDomain, User: "3000", Number: "2348031234567", Start: time.Now(), Seconds: 60, Type: 1})
	w.click(alice, l.MessageTS, "lockdown:deny")
	w.waitLong("the deny run finished", func() bool {
		return w.last(l).Done() && w.every(l, func(inc session.Incident) bool {
			return inc.Step(session.StepDeny).Status.Finished() ||
				inc.Step(session.StepDeny).Status == session.StatusFailed
		})
	})

	w.cardShows(l.MessageTS, "(last 24 h, 3 of 3 users read) · 1 calls · 1.0 min outgoing · international 1")
	w.command(bob, incChan, "status "+strings.ToLower(l.ID))
	m := w.ephemeralWith(bob, "*Members* — 3 open · 0 restored · 0 aborted (those that need attention first):")
	body := string(m.Blocks)
	for _, want := range []string{"*2 contained* · 1 pending · 1 failed — of 3", "last: *deny* by", "3000@" + lockdownDomain + " · INC-",
		"deny ✅ recreate ⬜ reset ⬜ restore ⬜", "deny ❌ recreate ⬜ reset ⬜ restore ⬜ — deny failed: "} {
		if !strings.Contains(body, want) {
			t.Errorf("status answer lacks %q:\n%s", want, body)
		}
	}
	if i, j := strings.Index(body, "3002@"), strings.Index(body, "3000@"+lockdownDomain+" · INC-"); i < 0 || j < 0 || i > j {
		t.Errorf("the failed member 3002 is not listed first:\n%s", body)
	}
	for _, e := range w.slack.Ephemerals(alice) {
		if strings.Contains(string(e.Blocks), "*Members*") {
			t.Errorf("bob's status answer reached alice")
		}
	}
	w.command(bob, incChan, "status LCK-0000AA")
	w.ephemeralWith(bob, "I found no lockdown LCK-0000AA.")
	w.command(bob, incChan, "status LCK-12")
	w.ephemeralWith(bob, "is not a lockdown ID: use LCK- and 6 letters or digits")

	r := w.cli(env, "respond", "status", l.ID)
	r.want(t, 0, "respond status LCK-…")
	for _, want := range []string{l.ID + " · 3 named users · open", "2 contained · 1 pending · 1 failed", "members (those that need attention first):",
		"3002@" + lockdownDomain, "(deny failed: "} {
		if !strings.Contains(r.out, want) {
			t.Errorf("respond status lacks %q:\n%s", want, r.out)
		}
	}
	if i, j := strings.Index(r.out, "3002@"), strings.Index(r.out, "3000@"); i > j {
		t.Errorf("the failed member is not first:\n%s", r.out)
	}
	w.cli(env, "respond", "status", "LCK-0000AA").want(t, exitUsage, "respond status of an unknown lockdown")
	w.cli(env, "respond", "status", "LCK-12").want(t, exitUsage, "respond status of a malformed lockdown ID")
}
