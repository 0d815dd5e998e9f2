package slackui

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
)

// TestApprovalPages: a request pages the approvers but the requester in a new thread reply,
// once although two replicas sync the thread; a reminder while it waits pages them again, once.
func TestApprovalPages(t *testing.T) {
	h := newHarness(t)
	h.fake.AddUser("U0CAROL", "carol")
	h.fake.AddUserGroup("S0LEADS", "U0CAROL")
	for _, a := range h.apps {
		a.cfg.Approvers = []string{hAlice, hBob, "S0LEADS"}
	}
	inc := h.open()
	h.click(0, hAlice, "step:deny", inc.ID)
	h.click(1, hAlice, "step:restore", inc.ID)

	pages := func(prefix string) []slackfake.Message {
		var out []slackfake.Message
		for _, m := range h.fake.Thread(hChan, inc.MessageTS) {
			if strings.HasPrefix(m.Text, prefix) {
				out = append(out, m)
			}
		}
		return out
	}
	h.waitFor("the approvers' page", func() bool { return len(pages("🙋")) > 0 })
	// Let both replicas' syncs finish: the thread then holds one line per audit entry.
	h.waitFor("the whole audit in the thread", func() bool {
		entries, err := h.store.Audit(h.ctx, inc.ID)
		return err == nil && len(threadLines(h.fake.Thread(hChan, inc.MessageTS))) >= len(entries)
	})
	got := pages("🙋")
	if len(got) != 1 {
		t.Fatalf("%d pages, want 1: %+v", len(got), got)
	}
	p := got[0]
	who, rest, _ := strings.Cut(p.Text, ": ")
	if who != "🙋 <@U0BOB> <!subteam^S0LEADS>" {
		t.Errorf("page addressed to %q, want bob and the group but not the requester", who)
	}
	for _, want := range []string{"approval requested by <@U0ALICE> to set", "back to US and Canada", "expires at", inc.ID} {
		if !strings.Contains(rest, want) {
			t.Errorf("page %q lacks %q", p.Text, want)
		}
	}
	if p.Method != "chat.postMessage" || p.Broadcast {
		t.Errorf("page sent by %s (broadcast %v), want a new thread reply only", p.Method, p.Broadcast)
	}

	// The reminder, due 30 min after deny while the request (1 h) still waits, pages them again.
	h.clock.Advance(31 * time.Minute)
	var wg sync.WaitGroup
	for _, a := range h.apps {
		wg.Go(func() { a.maintainOnce(h.ctx) })
	}
	wg.Wait()
	rem := pages("⏰")
	if len(rem) != 1 {
		t.Fatalf("%d reminders, want 1", len(rem))
	}
	if !strings.Contains(rem[0].Text, "\n🙋 <@U0BOB> <!subteam^S0LEADS>: restore still awaits approval (asked by <@U0ALICE>") {
		t.Errorf("reminder does not page the approvers: %q", rem[0].Text)
	}
}

func TestApprovalPageText(t *testing.T) {
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	inc := session.Incident{ID: "INC-7K2QXM", User: "1001", Domain: "acme.example", State: session.StateOpen,
		Original: &session.Original{Policy: "US <and> Canada", Known: true},
		Steps: map[session.Step]*session.StepState{session.StepRestore: {Step: session.StepRestore,
			Status: session.StatusAwaiting, RequestedBy: hAlice, ApprovalExpires: now.Add(time.Hour)}}}
	e := session.AuditEntry{IncidentID: inc.ID, Actor: hAlice, Action: approvalRequested, Step: session.StepRestore}

	got := ApprovalPageText(inc, e, []string{hAlice}, now)
	if !strings.Contains(got, "APPROVERS names nobody else") || strings.Contains(got, "<@U0ALICE>:") {
		t.Errorf("a request with no other approver: %q", got)
	}
	got = ApprovalPageText(inc, e, []string{hBob, hAlice}, now)
	if !strings.HasPrefix(got, "🙋 <@U0BOB>: approval requested by <@U0ALICE> to set") || !strings.Contains(got, "US &lt;and&gt; Canada") {
		t.Errorf("page %q: want bob paged and the policy name escaped", got)
	}
}
