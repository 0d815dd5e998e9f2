package slackui

import (
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/session"
)

// TestSeq4ForcedRestoreNamesTheLivePolicy: after a drift the Force restore dialog names the policy
// the PBX holds now (not the one read at open), and an approval request for a forced restore says
// so, with that live policy, on the card and in the approver's dialog.
func TestSeq4ForcedRestoreNamesTheLivePolicy(t *testing.T) {
	h := newHarness(t)
	inc := h.open()
	h.click(0, hAlice, "step:deny", inc.ID)
	denied := h.get(inc.ID)
	if st := denied.Step(session.StepDeny); !st.Status.Finished() {
		t.Fatalf("deny is %s", st.Status)
	}
	h.pbx.SetUserField("acme.example", "1001", "dial-policy", "International")
	h.click(0, hAlice, "step:restore", inc.ID)
	h.click(1, hBob, "approve:restore", inc.ID)
	got := h.get(inc.ID)
	if st := got.Step(session.StepRestore); st.Status != session.StatusFailed || st.ErrKind != "drift" {
		t.Fatalf("restore after drift is %s/%s, want failed/drift", st.Status, st.ErrKind)
	}
	cardHas := func(what string, want ...string) {
		t.Helper()
		h.waitFor(what, func() bool {
			m, ok := h.fake.Message(hChan, inc.MessageTS)
			if !ok {
				return false
			}
			for _, w := range want {
				if !strings.Contains(string(m.Blocks), w) {
					return false
				}
			}
			return true
		})
	}
	cardHas("the Force restore dialog to name the live International",
		`"force:restore"`, `dial permission is now International (read `)

	h.click(0, hAlice, "force:restore", inc.ID)
	forced := h.get(inc.ID)
	if st := forced.Step(session.StepRestore); st.Status != session.StatusAwaiting || !st.Force {
		t.Fatalf("force:restore made the step %s (force %v), want a forced request", st.Status, st.Force)
	}
	cardHas("the card and the approver's dialog to say forced, with the live policy",
		`*Forced restore*: overwrites the live dial permission International (read `,
		`Approve forced restore?`, `Forced restore: 1001@acme.example's dial permission is now International (read `)
	found := false
	for _, e := range mustAudit(t, h, inc.ID) {
		if e.Action == "approval.requested" && strings.Contains(e.Detail, "forced restore over the live dial permission International") {
			found = true
		}
	}
	if !found {
		t.Error("the audit of the forced request does not name the live policy")
	}
	h.click(1, hBob, "approve:restore", inc.ID)
	if u, _ := h.pbx.User("acme.example", "1001"); u["dial-policy"] != "US and Canada" {
		t.Errorf("after the approved forced restore dial-policy = %v", u["dial-policy"])
	}
}

func mustAudit(t *testing.T, h *harness, id string) []session.AuditEntry {
	t.Helper()
	es, err := h.store.Audit(h.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestSeq8RestoreViewChecks: a restore_original submission that names no incident, or one that
// does not exist, is answered with the field error before anything runs.
func TestSeq8RestoreViewChecks(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ meta, want string }{
		{"", "names no incident"},
		{"inc-7k2qxm", "names no incident"}, // not canonical: the bot never wrote it
		{"INC-7K2QXM", "INC-7K2QXM no longer exists"},
	} {
		cb := &slack.InteractionCallback{Type: slack.InteractionTypeViewSubmission, User: slack.User{ID: hAlice},
			View: slack.View{CallbackID: CallbackRestoreOriginal, PrivateMetadata: tc.meta}}
		if tc.meta != "" { // the first submission carries no state at all
			cb.View.State = &slack.ViewState{Values: map[string]map[string]slack.BlockAction{
				RestorePolicyBlock: {RestorePolicyAction: {SelectedOption: slack.OptionBlockObject{Value: "International"}}}}}
		}
		_, errs, refusal := h.apps[0].checkRestoreView(h.ctx, cb)
		if !strings.Contains(errs[RestorePolicyBlock], tc.want) || refusal != nil {
			t.Errorf("metadata %q: errors %q, refusal %v; want %q", tc.meta, errs, refusal, tc.want)
		}
	}
}
