package slackui

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
)

// TestLockdownCardFailureKeptOrDiscarded: a lockdown whose card Slack did not take in time (a
// 5xx here; a wave's backlog or a shutdown alike) stays open with its members, its opener is
// told once that its card follows (not "try again"), and the maintenance pass posts the card
// once; a card Slack refuses for good (not_in_channel) still discards the lockdown.
func TestLockdownCardFailureKeptOrDiscarded(t *testing.T) {
	cases := []struct {
		name string
		fail func(*slackfake.Server)
		kept bool
		want string // in the one answer
	}{
		{"HTTP 503", func(f *slackfake.Server) { f.FailHTTP("chat.postMessage", 503, 1) }, true,
			"is open, but Slack did not take its card just now"},
		{"not_in_channel", func(f *slackfake.Server) { f.FailMethod("chat.postMessage", "not_in_channel", 1) }, false,
			"I could not post the lockdown card (not_in_channel), so nothing was opened"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			c.fail(h.fake)
			h.apps[0].command(h.ctx, &slack.SlashCommand{UserID: hAlice, ChannelID: hChan, Text: "users 1001@acme.example",
				ResponseURL: h.fake.CommandResponseURL(hChan, hAlice)})
			answers := h.fake.Ephemerals(hAlice)
			if len(answers) != 1 || !strings.Contains(answers[0].Text, c.want) {
				t.Fatalf("the opener's answers %+v, want one saying %q", answers, c.want)
			}
			open, err := h.store.ListOpenLockdowns(h.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !c.kept {
				if len(open) != 0 {
					t.Fatalf("after Slack refused the card for good the lockdown is still open: %+v", open)
				}
				if _, err := h.store.FindOpen(h.ctx, "1001", "acme.example"); !errors.Is(err, session.ErrNotFound) {
					t.Fatalf("its member is still open (%v)", err)
				}
				return
			}
			if len(open) != 1 || open[0].MessageTS != "" || len(open[0].Members) != 1 {
				t.Fatalf("open lockdowns after the failed post: %+v, want one, with its member and no card", open)
			}
			l := open[0]
			for _, s := range []string{l.ID, "card follows in this channel", "/compromised status " + l.ID} {
				if !strings.Contains(answers[0].Text, s) {
					t.Errorf("the answer lacks %q: %s", s, answers[0].Text)
				}
			}
			if strings.Contains(answers[0].Text, "try again") || strings.Contains(answers[0].Text, "nothing was opened") {
				t.Errorf("the opener of a kept lockdown was told to try again: %s", answers[0].Text)
			}
			if _, err := h.store.FindOpen(h.ctx, "1001", "acme.example"); err != nil {
				t.Fatalf("the member is not open: %v", err)
			}
			h.clock.Advance(orphanCardAfter + time.Second)
			for range 3 {
				h.maintainAll()
			}
			got, err := h.store.GetLockdown(h.ctx, l.ID)
			if err != nil || got.MessageTS == "" {
				t.Fatalf("the maintenance pass did not post the kept lockdown's card: %+v, %v", got, err)
			}
			cards := 0
			for _, m := range h.fake.Channel(hChan) {
				// A message of the channel as posted or updated since, not an answer to someone.
				if m.User == "" && m.ThreadTS == "" && m.Method != "response_url" && strings.Contains(m.Text, " "+l.ID+":") {
					cards++
				}
			}
			if cards != 1 {
				t.Errorf("%d cards posted for %s, want 1", cards, l.ID)
			}
		})
	}
}
