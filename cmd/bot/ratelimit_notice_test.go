package main

import (
	"context"
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
)

// TestNoticeDeniesBeforeCard: under a 429 storm on chat.postMessage the opener gets, at once and
// only for them, the notice with the card's Deny button; a click on it denies at the PBX while
// the card still cannot be posted (its ts not recorded yet); the notice then shows the user
// contained; once Slack takes posts again the card is posted once, already showing the deny;
// a second click, on the notice or the card, gets "already done"; a non-responder's is refused;
// the PBX saw one deny.
func TestNoticeDeniesBeforeCard(t *testing.T) {
	w := newWorld(t)
	w.env["APPROVAL_STEPS"] = "none"
	w.slack.SetRateLimits(stormLimits())
	w.start()
	w.slack.RateLimit("chat.postMessage", 1_000_000, 1) // every post refused until lifted below

	w.command(alice, incChan, target)
	notice := w.ephemeralWith(alice, `"step:deny"`)
	inc, err := w.store.FindOpen(context.Background(), "1001", "acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if m := noticeRE.FindStringSubmatch(notice.Text); m == nil || m[1] != "1001@acme.example" {
		t.Errorf("the burst rig's noticeRE reads %q from the notice %q, want 1001@acme.example", m, notice.Text)
	}
	for _, s := range []string{inc.ID, "1001@acme.example", "when Slack allows", `"s:deny:v`, `"confirm"`, `"value":"` + inc.ID + `"`} {
		if !strings.Contains(notice.Text+string(notice.Blocks), s) {
			t.Errorf("the notice lacks %s:\n%s\n%s", s, notice.Text, notice.Blocks)
		}
	}
	if notice.Method != "response_url" {
		t.Errorf("the notice came by %s, want the command's response_url", notice.Method)
	}

	w.click(alice, notice.TS, "step:deny")
	w.waitFor("deny done", func() bool {
		i := w.incident(inc.ID)
		return i.Step(session.StepDeny).Status == session.StatusDone
	})
	if got := w.pbxUser("1001")["dial-policy"]; got != "Deny All" {
		t.Fatalf("after the notice's Deny the PBX has dial-policy %v", got)
	}
	if n := cardPosts(w.slack, inc.Key()); n != 0 || w.incident(inc.ID).MessageTS != "" {
		t.Fatalf("the card was posted during the storm (%d posts): the test does not test a click before it", n)
	}
	w.waitFor("the notice to show the user contained", func() bool {
		m, ok := w.slack.Message(incChan, notice.TS)
		return ok && showsContained(m.Text) && !strings.Contains(string(m.Blocks), `"step:deny"`)
	})

	w.slack.RateLimit("chat.postMessage", 0, 0) // Slack takes posts again
	ts, _ := w.card("1001", "acme.example")
	if n := cardPosts(w.slack, inc.Key()); n != 1 {
		t.Errorf("%d card posts, want 1", n)
	}
	for _, m := range w.slack.Messages() {
		if m.Method == "chat.postMessage" && m.TS == ts && !strings.Contains(m.Text, "deny done") {
			t.Errorf("the card was posted showing %q, not the deny done meanwhile", m.Text)
		}
	}

	w.clickWith(slackfake.Click{UserID: alice, ChannelID: incChan, MessageTS: notice.TS, ActionID: "step:deny",
		BlockID: "s:deny:v1", Value: inc.ID, Stale: true}) // a client still showing the notice's button
	w.ephemeralWith(alice, "already done by <@"+alice+">")
	w.staleClick(bob, ts, "step:deny", inc.ID)
	w.ephemeralWith(bob, "already done by <@"+alice+">")
	w.staleClick(mallory, ts, "step:deny", inc.ID)
	w.ephemeralWith(mallory, "not allowed")

	denies := 0
	for _, c := range w.pbx.Writes() {
		if c.Method == "PUT" && strings.HasSuffix(c.Path, "/users/1001") && strings.Contains(string(c.Body), "Deny All") {
			denies++
		}
	}
	if denies != 1 {
		t.Errorf("%d PUTs of the deny policy, want 1", denies)
	}
	lines := w.threadComplete(inc.ID)
	refused := false
	for _, l := range lines {
		refused = refused || strings.Contains(l.Text, "refused")
	}
	if !refused {
		t.Errorf("the refused click is not in the thread's audit")
	}
}

// TestNoticeClickAfterCard: the notice's Deny clicked after the card was posted (its ts
// recorded, so the click's message is not the card) runs like the card's; the card then shows it.
func TestNoticeClickAfterCard(t *testing.T) {
	w := newWorld(t)
	w.env["APPROVAL_STEPS"] = "none"
	w.slack.SetRateLimits(stormLimits())
	w.start()
	w.slack.RateLimit("chat.postMessage", 1_000_000, 1)
	w.command(alice, incChan, target)
	notice := w.ephemeralWith(alice, `"step:deny"`)
	w.slack.RateLimit("chat.postMessage", 0, 0)
	ts, inc := w.card("1001", "acme.example")
	w.click(alice, notice.TS, "step:deny")
	w.cardShows(ts, "deny done")
	if got := w.pbxUser("1001")["dial-policy"]; got != "Deny All" {
		t.Errorf("dial-policy %v after the notice's Deny", got)
	}
	for _, e := range w.slack.Ephemerals(alice) {
		if strings.Contains(e.Text, "does not belong") {
			t.Errorf("the notice's click was refused as forged: %s", e.Text)
		}
	}
	w.waitFor("the notice to point to the card", func() bool {
		m, ok := w.slack.Message(incChan, notice.TS)
		return ok && strings.Contains(m.Text, "its card is in") && showsContained(m.Text)
	})
	if n := cardPosts(w.slack, inc.Key()); n != 1 {
		t.Errorf("%d card posts, want 1", n)
	}
}

// TestNoNoticeWhenCardPrompt: a card Slack takes at once gets no notice, so an open makes no
// extra call, under Slack's limits as without them.
func TestNoNoticeWhenCardPrompt(t *testing.T) {
	w := newWorld(t)
	w.slack.SetRateLimits(slackfake.SlackLimits())
	w.start()
	w.command(alice, incChan, target)
	ts, inc := w.card("1001", "acme.example")
	w.click(alice, ts, "step:deny")
	w.cardShows(ts, "deny done")
	w.threadComplete(inc.ID)
	if n := len(w.slack.Ephemerals(alice)); n != 0 {
		t.Errorf("%d ephemeral messages to the opener of a card posted at once, want none", n)
	}
}

// cardPosts counts the cards posted for key (user@domain) in incChan.
func cardPosts(fake *slackfake.Server, key string) int {
	n := 0
	for _, m := range fake.Messages() {
		if m.Method == "chat.postMessage" && m.Channel == incChan && m.ThreadTS == "" && strings.Contains(m.Text, "Compromised: "+key+" (") {
			n++
		}
	}
	return n
}
