package slackui

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/session"
)

// TestOpenerNoticeCarriesTheCardsDeny: the notice's deny section is the card's, byte for byte
// (the same button, value, block_id and confirm dialog), while deny can run; once it ran the
// notice has no button and its fallback says how deny stands; it never says a card is coming
// once one is recorded.
func TestOpenerNoticeCarriesTheCardsDeny(t *testing.T) {
	opts := CardOptions{Now: at(2), ApprovalSteps: map[session.Step]bool{session.StepDeny: true}}
	inc := baseIncident()
	inc.MessageTS = "" // the card waits for Slack
	text, blocks := OpenerNotice(inc, opts, 41*time.Second+time.Millisecond)
	checkLimits(t, blocks)
	_, card := Card(inc, opts)
	var cardDeny slack.Block
	for _, b := range card {
		if blockID(b) == "s:deny:v1" {
			cardDeny = b
		}
	}
	if len(blocks) != 2 || cardDeny == nil || mustJSONString(t, blocks[1]) != mustJSONString(t, cardDeny) {
		t.Fatalf("the notice's deny section differs from the card's:\n%s\nwant\n%s", mustJSONString(t, blocks), mustJSONString(t, cardDeny))
	}
	if bs := buttonsOf(t, blocks); len(bs) != 1 || bs[0].ActionID != "step:deny" || bs[0].Value != inc.ID {
		t.Errorf("buttons %+v, want the one step:deny with value %s", bs, inc.ID)
	}
	for _, s := range []string{inc.ID, "1001@acme.example", "when Slack allows (in about 42 s)", "deny ready"} {
		if !strings.Contains(text, s) {
			t.Errorf("fallback %q lacks %q", text, s)
		}
	}

	running := inc
	running.Steps = steps(session.StepDeny, session.StepState{Status: session.StatusRunning, RequestedBy: "U0MARIA",
		StartedAt: at(1), Progress: map[string]string{"policy": "verified"}})
	text, blocks = OpenerNotice(running, opts, 0)
	if bs := buttonsOf(t, blocks); len(bs) != 0 {
		t.Errorf("a running deny's notice has buttons %+v", bs)
	}
	if !strings.Contains(text, "deny contained") || strings.Contains(text, "in about") {
		t.Errorf("running deny's fallback %q: want deny contained, no wait", text)
	}

	posted := denied()
	text, blocks = OpenerNotice(posted, opts, 0)
	if bs := buttonsOf(t, blocks); len(bs) != 0 || !strings.Contains(text, "deny done") || strings.Contains(text, "follows") {
		t.Errorf("a posted card's notice: %q, %d buttons", text, len(bs))
	}
}

// TestFromNotice: only a click on an ephemeral message, by the opener, in the incident's
// channel, on deny counts as the notice's; anything else is judged as a card click (onCard).
func TestFromNotice(t *testing.T) {
	inc := baseIncident()
	deny := Action{Kind: ActionStep, Step: session.StepDeny, IncidentID: inc.ID}
	cb := func(user, channel string, ephemeral bool) *slack.InteractionCallback {
		c := &slack.InteractionCallback{User: slack.User{ID: user}}
		c.Container.IsEphemeral, c.Container.ChannelID, c.Container.MessageTs = ephemeral, channel, "1710382499.000200"
		return c
	}
	cases := []struct {
		name string
		cb   *slack.InteractionCallback
		act  Action
		want bool
	}{
		{"the opener's notice", cb(inc.OpenedBy, inc.Channel, true), deny, true},
		{"a channel message", cb(inc.OpenedBy, inc.Channel, false), deny, false},
		{"someone else", cb("U0OTHER", inc.Channel, true), deny, false},
		{"another channel", cb(inc.OpenedBy, "C0ELSE", true), deny, false},
		{"no channel", cb(inc.OpenedBy, "", true), deny, false},
		{"another button", cb(inc.OpenedBy, inc.Channel, true), Action{Kind: ActionAbort, IncidentID: inc.ID}, false},
	}
	for _, c := range cases {
		if got := fromNotice(c.cb, c.act, inc); got != c.want {
			t.Errorf("%s: fromNotice = %v, want %v", c.name, got, c.want)
		}
	}
}

func mustJSONString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
