package main

import (
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/session"
)

// TestSeq1AbortConfirmNamesMissingDevice is issue 10's sequence 1 through Slack: after a
// re-create the PBX refused, the card and the restore and abort dialogs name the device that
// is deleted and not re-created (restore's no longer says a failed Re-create "will be recorded
// as skipped"); a click from a card that did not name it is refused; the confirmed abort is
// audited in the thread and the closed card says the snapshot is kept.
func TestSeq1AbortConfirmNamesMissingDevice(t *testing.T) {
	w := newWorld(t)
	w.start()
	ts, inc := w.openAndDeny("")
	const devices = "/domains/acme.example/users/1001/devices"
	w.pbx.FailNext("POST", devices, 400, "device-models-model: unsupported value")
	w.pbx.FailNext("POST", devices, 400, "device-models-model: unsupported value")
	w.click(alice, ts, "step:recreate")
	w.waitFor("recreate failed", func() bool { return w.step(inc.ID, session.StepRecreate).Status == session.StatusFailed })
	w.cardShows(ts, "Deleted and not re-created yet: `1001`")
	w.cardShows(ts, "Not re-created: 1001 (snapshot kept for the user's next incident). Close INC-")
	w.cardShows(ts, "Not re-created: 1001 (snapshot kept for the user's next incident). Re-create failed, Reset not done: the stolen credentials may still work (Reset: skipped).")
	if m, _ := w.slack.Message(incChan, ts); strings.Contains(string(m.Blocks), "Re-create and Reset not done, so the stolen credentials still work; they will be recorded as skipped") {
		t.Error("restore's dialog still says the failed Re-create will be recorded as skipped")
	}

	// A card rendered before the failure did not name the device: its abort is refused.
	w.staleClick(alice, ts, "abort", inc.ID)
	w.ephemeralWith(alice, "Device 1001 was deleted and not re-created")
	if cur := w.incident(inc.ID); !cur.Open() {
		t.Fatal("an abort from a card that did not name the missing device closed the incident")
	}

	w.click(alice, ts, "abort")
	w.waitFor("incident aborted", func() bool { return w.incident(inc.ID).State == session.StateAborted })
	w.cardShows(ts, "Not re-created: `1001` (deleted). The snapshot is kept for this user's next incident")
	thread := w.threadComplete(inc.ID)
	audited := false
	for _, m := range thread {
		audited = audited || (strings.Contains(m.Text, "abort confirmed") && strings.Contains(m.Text, "device 1001"))
	}
	if !audited {
		t.Error("the thread has no audit line of the confirmed abort")
	}
	kept, err := w.store.UserDevices(w.ctx(), "1001", "acme.example")
	if err != nil || len(kept) != 1 || kept[0].Device != "1001" {
		t.Fatalf("kept devices = %+v, %v", kept, err)
	}

	// The next incident's card shows it, and its recreate brings it back.
	w.command(alice, incChan, target)
	ts2, inc2 := w.card("1001", "acme.example")
	if inc2.ID == inc.ID {
		t.Fatal("no new incident")
	}
	w.cardShows(ts2, "Deleted by an earlier incident and never re-created: `1001`")
}
