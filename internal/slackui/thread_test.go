package slackui

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/compromised-responder/bot/internal/session"
)

// TestThreadBatchesLines: audit lines that wait together go out in one thread reply, all of
// them, in order; the next sync posts only what is new.
func TestThreadBatchesLines(t *testing.T) {
	h := newHarness(t)
	inc := h.open()
	h.waitFor("the open to be synced", func() bool {
		// The open's two lines: incident.opened, live.read (its devices and calls, read after the card).
		return len(threadLines(h.fake.Thread(hChan, inc.MessageTS))) == 2 && h.apps[0].changes.idle() && h.apps[1].changes.idle()
	})
	opened := len(h.fake.Thread(hChan, inc.MessageTS))
	var want []string
	for i := range 5 {
		e, err := h.store.Append(h.ctx, session.AuditEntry{IncidentID: inc.ID, Actor: hBob, Action: "note.added",
			Detail: strings.Repeat("x", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, AuditLine(e))
	}
	h.apps[0].changes.Changed(h.ctx, inc.ID)
	h.waitFor("the notes in the thread", func() bool {
		return len(threadLines(h.fake.Thread(hChan, inc.MessageTS))) == 7 && h.apps[0].changes.idle()
	})
	// A periodic sync of either replica may run between two of the appends and post the first
	// notes early, so the notes take one or two replies (never one each), all in order.
	replies := h.fake.Thread(hChan, inc.MessageTS)
	if n := len(replies) - opened; n < 1 || n > 2 {
		t.Fatalf("%d thread replies after the open's, want 1 or 2 (the five notes batched)", n)
	}
	var got []string
	for _, r := range replies[opened:] {
		got = append(got, strings.Split(r.Text, "\n")...)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("batched replies (-want +got):\n%s", d)
	}
}

// TestThreadHoldsLinesThatComeTogether: the open's line waits for the incident to go quiet, so
// the deny clicked right after the open goes in the same thread reply (holds.go), and every line
// is posted once, in order.
func TestThreadHoldsLinesThatComeTogether(t *testing.T) {
	h := newHarness(t)
	inc := h.open()
	h.click(0, hAlice, "step:deny", inc.ID)
	entries, err := h.store.Audit(h.ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	h.waitFor("the whole audit in the thread", func() bool {
		all, err := h.store.Audit(h.ctx, inc.ID)
		return err == nil && len(threadLines(h.fake.Thread(hChan, inc.MessageTS))) == len(all) &&
			h.apps[0].changes.idle() && h.apps[1].changes.idle()
	})
	replies := h.fake.Thread(hChan, inc.MessageTS)
	first := strings.Split(replies[0].Text, "\n")
	if len(entries) < 3 || len(first) < 2 || first[0] != AuditLine(entries[0]) || first[1] != AuditLine(entries[1]) {
		t.Errorf("the first reply holds %d line(s) %q; want the open's line and the deny's after it (%d entries)",
			len(first), first, len(entries))
	}
	all, _ := h.store.Audit(h.ctx, inc.ID)
	var want []string
	for _, e := range all {
		want = append(want, AuditLine(e))
	}
	if d := cmp.Diff(want, threadLines(replies)); d != "" {
		t.Errorf("thread (-want +got):\n%s", d)
	}
}

// TestBatchLines: batches keep the order and stay within both limits; a line over the
// character limit goes alone.
func TestBatchLines(t *testing.T) {
	lines := []string{"aaaa", "bb", "cc", strings.Repeat("d", 20), "e", "f", "g"} // 4+3+3 = 10 chars, then 3 lines at most
	got := batchLines(lines, 3, 10)
	want := []batch{{0, 3}, {3, 4}, {4, 7}}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(batch{})); d != "" {
		t.Errorf("batches (-want +got):\n%s", d)
	}
	if got := batchLines(nil, 3, 10); len(got) != 0 {
		t.Errorf("batches of nothing: %v", got)
	}
}
