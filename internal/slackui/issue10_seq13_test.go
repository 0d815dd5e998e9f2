package slackui

import (
	"strings"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// TestSeq13AuthorityRecheckedWhenTheStepRuns: a requester removed from RESPONDERS since asking
// gets nothing: an approval of their request runs no step (refused, audited, withdrawn), and a
// step of theirs resumed after a crash delivers them no secret (withheld, audited, on the card).
func TestSeq13AuthorityRecheckedWhenTheStepRuns(t *testing.T) {
	h := newHarnessCfg(t, func(c *Config) { c.Responders = []string{"S0ONCALL"} })
	h.fake.AddUserGroup("S0ONCALL", hAlice, hBob)
	inc := h.open()
	h.click(0, hAlice, "step:deny", inc.ID)
	h.click(0, hAlice, "step:restore", inc.ID)
	asked := h.get(inc.ID)
	if st := asked.Step(session.StepRestore); st.Status != session.StatusAwaiting {
		t.Fatalf("restore is %s, want awaiting approval", st.Status)
	}
	// Alice leaves the on-call group; the bot sees it once its group cache expires.
	h.fake.AddUserGroup("S0ONCALL", hBob)
	h.clock.Advance(2 * time.Minute)
	writes := len(h.pbx.Writes())
	h.click(1, hBob, "approve:restore", inc.ID)
	if n := len(h.pbx.Writes()) - writes; n != 0 {
		t.Errorf("the approval of a removed requester's restore made %d PBX writes", n)
	}
	after := h.get(inc.ID)
	if st := after.Step(session.StepRestore); st.Status == session.StatusAwaiting || st.Status.Finished() || st.Status == session.StatusRunning {
		t.Errorf("restore is %s after the refused approval, want the request withdrawn", st.Status)
	}
	if !audited(t, h, inc.ID, hAlice, "refused.unauthorized", session.StepRestore) {
		t.Error("the refused approval is not in the audit")
	}

	// A reset alice started, whose runner died: the takeover runs it, but the PIN is not hers.
	if _, _, err := h.store.Begin(h.ctx, inc.ID, session.StepReset, session.BeginOptions{Actor: hAlice, Owner: "dead",
		LeaseTTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(2 * time.Second)
	h.apps[0].maintainOnce(h.ctx)
	reset := h.get(inc.ID)
	if st := reset.Step(session.StepReset); !st.Status.Finished() {
		t.Fatalf("the resumed reset is %s (%s)", st.Status, st.ErrMessage)
	}
	for _, m := range h.fake.Ephemerals(hAlice) {
		if strings.Contains(string(m.Blocks), "Voicemail PIN") {
			t.Errorf("the removed requester got the new PIN: %s", m.Text)
		}
	}
	if d, ok := reset.Delivery["pin"]; !ok || d.Delivered || !strings.Contains(d.Error, "withheld") {
		t.Errorf("PIN delivery = %+v (recorded %v), want withheld", d, ok)
	}
	if !audited(t, h, inc.ID, hAlice, "refused.unauthorized", session.StepReset) {
		t.Error("the withheld secrets are not in the audit")
	}
}

func audited(t *testing.T, h *harness, id, actor, action string, step session.Step) bool {
	t.Helper()
	for _, e := range mustAudit(t, h, id) {
		if e.Actor == actor && e.Action == action && e.Step == step {
			return true
		}
	}
	return false
}
