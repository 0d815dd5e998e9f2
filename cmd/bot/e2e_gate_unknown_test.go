package main

import (
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
	"github.com/compromised-responder/bot/internal/slackui"
)

// TestRestoreOverGateKeepsChosenPolicy: a user whose original is unknown gets a policy chosen in
// the restore_original dialog; the gate holds that restore (the re-created softphones have not
// registered again); Restore over the gate then sets the chosen policy, which its dialog names,
// instead of losing the choice and failing on the unknown original. With and without approval.
func TestRestoreOverGateKeepsChosenPolicy(t *testing.T) {
	for _, approval := range []bool{false, true} {
		name := "direct"
		if approval {
			name = "approval"
		}
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			w.env["RESTORE_GATE"] = "true"
			if !approval {
				w.env["APPROVAL_STEPS"] = "none"
			}
			w.start()
			ts, inc := w.openUnknownOriginal()
			w.click(alice, ts, "step:recreate")
			w.waitFor("recreate finished", func() bool { return w.step(inc.ID, session.StepRecreate).Status.Finished() })

			w.click(alice, ts, "step:restore")
			view := w.restoreView(inc.ID, 1, alice)
			if got := w.submitView(slackfake.ViewSubmission{ViewID: view.ID,
				Selected: map[string]map[string]string{inputBlock(t, view): {slackui.RestorePolicyAction: "International"}}}); got != nil {
				t.Fatalf("submission answered %q", got)
			}
			if approval {
				w.waitFor("the approval request", func() bool { return w.restoreStep(inc.ID).Status == session.StatusAwaiting })
				w.cardShows(ts, `"action_id":"approve:restore"`) // the card may follow the store a moment later
				w.click(bob, ts, "approve:restore")
			}
			w.waitFor("restore held by the gate", func() bool { return w.restoreStep(inc.ID).Status == session.StatusFailed })
			if st := w.restoreStep(inc.ID); st.ErrKind != "gate" {
				t.Fatalf("restore: %s %s: %s", st.Status, st.ErrKind, st.ErrMessage)
			}
			w.cardShows(ts, `"action_id":"gate:restore"`)
			w.cardShows(ts, "Give 1001@acme.example its dial permission International back anyway?")

			w.click(alice, ts, "gate:restore")
			if approval {
				w.waitFor("the over-gate request", func() bool { return w.restoreStep(inc.ID).Status == session.StatusAwaiting })
				w.cardShows(ts, "dial permission from Deny All to International (chosen by the requester")
				w.cardShows(ts, `"action_id":"approve:restore"`)
				w.click(bob, ts, "approve:restore")
			}
			w.waitFor("restored over the gate", func() bool { i := w.incident(inc.ID); return !i.Open() })
			if got := w.incident(inc.ID); got.State != session.StateRestored {
				st := got.Step(session.StepRestore)
				t.Fatalf("incident %s, restore %s %s: %s", got.State, st.Status, st.ErrKind, st.ErrMessage)
			}
			if u, _ := w.pbx.User("acme.example", "1001"); u["dial-policy"] != "International" {
				t.Errorf("the user holds %v, want the chosen International", u["dial-policy"])
			}
			w.waitFor("gate.overridden in the audit", func() bool {
				return w.audited(inc.ID, alice, "gate.overridden", "restored over the gate: ")
			})
			if st := w.restoreStep(inc.ID); !strings.Contains(st.Summary, "International") {
				t.Errorf("restore summary %q", st.Summary)
			}
		})
	}
}
