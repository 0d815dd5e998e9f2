package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/session"
)

// gateWorld runs the bot with the restore gate and no approval, and brings 1001@acme.example to
// re-created devices: it returns the card's ts and the incident ID.
func gateWorld(t *testing.T) (*world, string, string) {
	w := newWorld(t)
	w.env["RESTORE_GATE"] = "true"
	w.env["APPROVAL_STEPS"] = "none"
	w.start()
	ts, inc := w.openAndDeny("")
	w.click(alice, ts, "step:recreate")
	w.waitFor("recreate finished", func() bool { return w.step(inc.ID, session.StepRecreate).Status.Finished() })
	return w, ts, inc.ID
}

// registerAgain registers every device of 1001 with the password the PBX holds now (the new one).
func (w *world) registerAgain() {
	w.t.Helper()
	for _, d := range w.pbx.Devices("acme.example", "1001") {
		id, pw := d["device"].(string), d["device-sip-registration-password"].(string)
		if err := w.pbx.RegisterDevice("acme.example", id, pw, "198.51.100.7:5060", "Zoiper 5"); err != nil {
			w.t.Fatal(err)
		}
	}
}

// TestRestoreGateBlocks: a call to Nigeria after containment and softphones that have not
// registered again hold restore (no PBX write, the reason on the card); the card then offers
// "Restore over the gate", whose dialog names what is unmet, and that restore is audited.
func TestRestoreGateBlocks(t *testing.T) {
	w, ts, id := gateWorld(t)
	w.cardShows(ts, "⚠️ *not met*")
	w.cardShows(ts, "not registered again since it was re-created")
	// The attacker's old password no longer registers.
	if err := w.pbx.RegisterDevice("acme.example", "1001a", "DemoSoftPh0ne1aa", "203.0.113.5:5060", "Zoiper 5"); !errors.Is(err, nstest.ErrRegistrationRefused) {
		t.Fatalf("old password registered: %v", err)
	}
	w.pbx.AddCDR(nstest.CDR{Domain: "acme.example", User: "1001", Number: "2348031234567", Start: time.Now(), Seconds: 60, Type: 1})
	w.cardShows(ts, "Restore gate not met (") // the Restore dialog warns before the click

	writes := len(w.pbx.Writes())
	w.click(alice, ts, "step:restore")
	w.waitFor("restore held", func() bool { return w.step(id, session.StepRestore).Status == session.StatusFailed })
	if st := w.step(id, session.StepRestore); st.ErrKind != "gate" || !strings.Contains(st.ErrMessage, "1 international or premium call(s) since containment (2348031234567 Nigeria") {
		t.Fatalf("restore: %s %s: %s", st.Status, st.ErrKind, st.ErrMessage)
	}
	if n := len(w.pbx.Writes()) - writes; n != 0 {
		t.Fatalf("a held restore made %d PBX writes", n)
	}
	w.ephemeralWith(alice, "Restore held by the gate")
	w.cardShows(ts, `"action_id":"gate:restore"`)
	w.cardShows(ts, "THE RESTORE GATE IS NOT MET: 1 international or premium call(s)")

	w.click(alice, ts, "gate:restore")
	w.waitFor("restored over the gate", func() bool { return w.incident(id).State == session.StateRestored })
	entries, err := w.store.Audit(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		if e.Action == "gate.overridden" && e.Actor == alice && strings.HasPrefix(e.Detail, "restored over the gate: 1 international") {
			found = true
		}
	}
	if !found {
		t.Errorf("no gate.overridden entry by %s in the audit: %+v", alice, entries)
	}
}

// TestRestoreGateAllows: with no risky call since containment and every re-created device
// registered again with its new password, the gate is met and a plain Restore restores.
func TestRestoreGateAllows(t *testing.T) {
	w, ts, id := gateWorld(t)
	w.cardShows(ts, "⚠️ *not met*")
	w.registerAgain()
	// A call before containment does not count.
	w.pbx.AddCDR(nstest.CDR{Domain: "acme.example", User: "1001", Number: "2348031234567", Start: time.Now().Add(-time.Hour), Seconds: 60, Type: 1})
	w.click(alice, ts, "step:reset") // reset's end checks the gate again: the card shows it met
	w.cardShows(ts, "*Restore gate*  ✅ met")
	w.cardShows(ts, "✅ registered again with its new credentials: registered from 198.51.100.7 (Zoiper 5)")
	w.click(alice, ts, "step:restore")
	w.waitFor("restored", func() bool { return w.incident(id).State == session.StateRestored })
	if u, _ := w.pbx.User("acme.example", "1001"); u["dial-policy"] != "US and Canada" {
		t.Errorf("dial policy after restore: %v", u["dial-policy"])
	}
}
