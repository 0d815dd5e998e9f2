package main

import (
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/slackfake"
	"github.com/compromised-responder/bot/internal/slackui"
)

// shortcut runs "Contain this user" on the message ts as user and waits for the ack.
func (w *world) shortcut(user, ts string) {
	w.t.Helper()
	ctx := w.ctx()
	id, err := w.slack.MessageShortcut(ctx, slackfake.MessageShortcut{UserID: user, ChannelID: incChan, MessageTS: ts,
		CallbackID: slackui.ShortcutContain})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.slack.WaitAck(ctx, id); err != nil {
		w.t.Fatalf("shortcut not acked: %v", err)
	}
}

// TestContainFromMessage: the shortcut on a monitoring alert opens the incident for the first
// address in it (a mailto link as Slack formats it), in that channel, with the alert's permalink
// as the reason; a message without an address and a person not in RESPONDERS are answered
// ephemerally and nothing is opened.
func TestContainFromMessage(t *testing.T) {
	w := newWorld(t)
	w.start()
	alert := w.slack.PostAs(incChan, "B0MONITOR", "PBX fraud alert: <mailto:1001@acme.example|1001@acme.example> dialled +882 40 times since 01:50; also see 1002@acme.example")

	w.shortcut(mallory, alert)
	w.ephemeralWith(mallory, "not allowed")
	noAddr := w.slack.PostAs(incChan, "B0MONITOR", "CPU high on core1.pbx.example")
	w.shortcut(alice, noAddr)
	w.ephemeralWith(alice, "I found no `user@domain` in that message")
	if incs, _ := w.store.ListOpen(w.ctx()); len(incs) != 0 {
		t.Fatalf("refused shortcuts opened %d incident(s)", len(incs))
	}

	w.shortcut(alice, alert)
	ts, inc := w.card("1001", "acme.example")
	if inc.Channel != incChan || inc.OpenedBy != alice {
		t.Errorf("incident in %s by %s", inc.Channel, inc.OpenedBy)
	}
	if want := "https://fake.slack.com/archives/" + incChan + "/p" + strings.Replace(alert, ".", "", 1); inc.Reason != want {
		t.Errorf("reason %q, want the alert's permalink %q", inc.Reason, want)
	}
	w.cardShows(ts, "1001@acme.example")
}
