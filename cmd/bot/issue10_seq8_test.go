package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
	"github.com/compromised-responder/bot/internal/slackui"
)

// TestSeq8RestoreUnknownOriginalModal is issue 10's sequence 8, through Socket Mode, the PBX
// simulator and Redis: a user already in Deny All has no known original; Restore opens the
// restore_original dialog listing the domain's and the system's policies but no deny policy;
// invalid submissions get a field error in the ack and change nothing; a valid one sets the policy
// on the PBX, verified, with the chooser and the policy in the audit. Under APPROVAL_STEPS the
// request and the approver's dialog name the chosen policy, and the approved run sets it.
func TestSeq8RestoreUnknownOriginalModal(t *testing.T) {
	t.Run("direct", func(t *testing.T) {
		w := newWorld(t)
		w.env["APPROVAL_STEPS"] = "none"
		w.start()
		ts, inc := w.openUnknownOriginal()
		w.click(alice, ts, "step:restore")
		view := w.restoreView(inc.ID, 1, alice)
		if got, want := viewOptions(t, view), []string{"Acme Local", "US and Canada", "International"}; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("the dialog offers %q, want %q (the domain's, then the system's, no Deny All)", got, want)
		}
		block := inputBlock(t, view)
		pick := func(v string) map[string]map[string]string {
			return map[string]map[string]string{block: {slackui.RestorePolicyAction: v}}
		}

		// Invalid submissions: the ack names the field's error, and nothing changes.
		for _, tc := range []struct {
			name string
			sub  slackfake.ViewSubmission
			want string
		}{
			{"missing value", slackfake.ViewSubmission{Forged: true}, "Choose the policy to restore"},
			{"the deny policy", slackfake.ViewSubmission{Forged: true, Selected: pick("Deny All")}, "Deny All is the deny policy"},
			{"not offered", slackfake.ViewSubmission{Forged: true, Selected: pick("Globex Only")}, "not one of the policies offered"},
			{"not a responder", slackfake.ViewSubmission{UserID: mallory, Selected: pick("International")}, "not allowed to restore"},
		} {
			tc.sub.ViewID = view.ID
			if got := w.submitView(tc.sub); !strings.Contains(got[block], tc.want) {
				t.Errorf("%s: field errors %q, want %q on %s", tc.name, got, tc.want, block)
			}
		}
		if u, _ := w.pbx.User("acme.example", "1001"); u["dial-policy"] != "Deny All" {
			t.Fatalf("after invalid submissions the user holds %v", u["dial-policy"])
		}
		if st := w.restoreStep(inc.ID); st.Status != session.StatusReady {
			t.Fatalf("after invalid submissions restore is %s", st.Status)
		}
		// The refusal is recorded right after its ack.
		w.waitFor("the non-responder's submission in the audit", func() bool {
			return w.audited(inc.ID, mallory, "refused.unauthorized", "")
		})

		// Bob opens the dialog too; alice's submission will make his stale.
		w.click(bob, ts, "step:restore")
		bobs := w.restoreView(inc.ID, 2, bob)

		// A valid one: International, set and read back; the audit names who chose what.
		if got := w.submitView(slackfake.ViewSubmission{ViewID: view.ID, Selected: pick("International")}); got != nil {
			t.Fatalf("valid submission answered %q", got)
		}
		w.waitFor("restore to run", func() bool { return w.restoreStep(inc.ID).Status.Finished() })
		got := w.incident(inc.ID)
		if st := got.Step(session.StepRestore); st.Status != session.StatusDone || !strings.Contains(st.Summary, "International") {
			t.Fatalf("restore = %s %q", st.Status, st.Summary)
		}
		if u, _ := w.pbx.User("acme.example", "1001"); u["dial-policy"] != "International" {
			t.Errorf("the user holds %v, want International", u["dial-policy"])
		}
		w.waitFor("the audit to say that alice chose International", func() bool {
			return w.audited(inc.ID, alice, "", "International") && w.audited(inc.ID, "", "", "chosen by "+alice)
		})
		// Bob's dialog is stale now: the incident is closed (the close follows the step's end).
		w.waitFor("the incident to close", func() bool { i := w.incident(inc.ID); return !i.Open() })
		if got := w.submitView(slackfake.ViewSubmission{ViewID: bobs.ID, Selected: pick("US and Canada")}); !strings.Contains(got[block], "is closed") {
			t.Errorf("stale submission answered %q", got)
		}
	})

	t.Run("approval", func(t *testing.T) {
		w := newWorld(t) // APPROVAL_STEPS=restore
		w.start()
		ts, inc := w.openUnknownOriginal()
		w.click(alice, ts, "step:restore")
		view := w.restoreView(inc.ID, 1, alice)
		block := inputBlock(t, view)
		if got := w.submitView(slackfake.ViewSubmission{ViewID: view.ID,
			Selected: map[string]map[string]string{block: {slackui.RestorePolicyAction: "Acme Local"}}}); got != nil {
			t.Fatalf("submission answered %q", got)
		}
		w.waitFor("the approval request", func() bool {
			return w.restoreStep(inc.ID).Status == session.StatusAwaiting
		})
		if u, _ := w.pbx.User("acme.example", "1001"); u["dial-policy"] != "Deny All" {
			t.Fatalf("before approval the user holds %v", u["dial-policy"])
		}
		w.cardShows(ts, "Restores *Acme Local*, chosen by \\u003c@"+alice+"\\u003e (the original is unknown)")
		w.cardShows(ts, "dial permission from Deny All to Acme Local (chosen by the requester")
		// The card may show the request before its audit entry is appended.
		w.waitFor("the approval request's audit to name the chosen policy", func() bool {
			return w.audited(inc.ID, alice, "approval.requested", "restore to Acme Local, chosen by "+alice)
		})
		w.click(bob, ts, "approve:restore")
		w.waitFor("the approved restore", func() bool { return w.restoreStep(inc.ID).Status.Finished() })
		if st := w.restoreStep(inc.ID); st.Status != session.StatusDone {
			t.Fatalf("approved restore = %s %q", st.Status, st.ErrMessage)
		}
		if u, _ := w.pbx.User("acme.example", "1001"); u["dial-policy"] != "Acme Local" {
			t.Errorf("after approval the user holds %v, want Acme Local", u["dial-policy"])
		}
	})
}

// openUnknownOriginal puts 1001 in Deny All by hand, opens an incident and runs deny: the
// original is unknown, and the card says what Restore will do.
func (w *world) openUnknownOriginal() (string, session.Incident) {
	w.t.Helper()
	w.pbx.SetUserField("acme.example", "1001", "dial-policy", "Deny All")
	ts, inc := w.openAndDeny("")
	if o := w.incident(inc.ID).Original; o == nil || o.Known {
		w.t.Fatalf("original = %+v, want unknown", o)
	}
	w.cardShows(ts, "original unknown: *Restore* asks which policy to set")
	return ts, inc
}

// restoreView waits for the n-th dialog the bot opened and checks it is incident id's
// restore_original, opened to user.
func (w *world) restoreView(id string, n int, user string) slackfake.View {
	w.t.Helper()
	w.waitFor("the restore_original dialog", func() bool { return len(w.slack.Views()) >= n })
	v := w.slack.Views()[n-1]
	if v.CallbackID != slackui.CallbackRestoreOriginal || v.PrivateMetadata != id || v.User != user {
		w.t.Fatalf("dialog %+v, want %s for %s opened to %s", v, slackui.CallbackRestoreOriginal, id, user)
	}
	return v
}

// submitView submits a dialog and returns the field errors its ack carried (nil: a plain ack).
func (w *world) submitView(s slackfake.ViewSubmission) map[string]string {
	w.t.Helper()
	ctx := w.ctx()
	id, err := w.slack.SubmitView(ctx, s)
	if err != nil {
		w.t.Fatal(err)
	}
	ack, err := w.slack.WaitAck(ctx, id)
	if err != nil {
		w.t.Fatalf("submission not acked: %v", err)
	}
	if len(ack.Payload) == 0 {
		return nil
	}
	var p struct {
		Action string            `json:"response_action"`
		Errors map[string]string `json:"errors"`
	}
	if err := json.Unmarshal(ack.Payload, &p); err != nil || p.Action != "errors" || len(p.Errors) == 0 {
		w.t.Fatalf("ack payload %s", ack.Payload)
	}
	return p.Errors
}

// audited reports whether the incident's audit has an entry by actor (any if "") with action
// (any if "") whose detail or after contains what.
func (w *world) audited(id, actor, action, what string) bool {
	w.t.Helper()
	es, err := w.store.Audit(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, e := range es {
		if (actor == "" || e.Actor == actor) && (action == "" || e.Action == action) &&
			(strings.Contains(e.Detail, what) || strings.Contains(e.After, what)) {
			return true
		}
	}
	return false
}

type viewBlock struct {
	Type    string `json:"type"`
	BlockID string `json:"block_id"`
	Element struct {
		Type    string `json:"type"`
		Options []struct {
			Value string `json:"value"`
		} `json:"options"`
	} `json:"element"`
}

func viewBlocks(t *testing.T, v slackfake.View) []viewBlock {
	t.Helper()
	var bs []viewBlock
	if err := json.Unmarshal(v.Blocks, &bs); err != nil {
		t.Fatal(err)
	}
	return bs
}

// viewOptions are the values of the dialog's one select, which must be its only input.
func viewOptions(t *testing.T, v slackfake.View) []string {
	t.Helper()
	var out []string
	inputs := 0
	for _, b := range viewBlocks(t, v) {
		if b.Type != "input" {
			continue
		}
		inputs++
		if b.Element.Type != "static_select" {
			t.Errorf("input %s is a %s, want static_select", b.BlockID, b.Element.Type)
		}
		for _, o := range b.Element.Options {
			out = append(out, o.Value)
		}
	}
	if inputs != 1 {
		t.Errorf("the dialog has %d inputs, want one select", inputs)
	}
	return out
}

func inputBlock(t *testing.T, v slackfake.View) string {
	t.Helper()
	for _, b := range viewBlocks(t, v) {
		if b.Type == "input" {
			return b.BlockID
		}
	}
	t.Fatal("the dialog has no input block")
	return ""
}

func (w *world) restoreStep(id string) session.StepState {
	inc := w.incident(id)
	return *inc.Step(session.StepRestore)
}
