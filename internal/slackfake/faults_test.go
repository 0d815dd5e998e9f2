package slackfake_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/compromised-responder/bot/internal/slackfake"
)

func TestFailHTTP(t *testing.T) {
	fake := newFake(t)
	api := newAPI(fake, "xoxb-test")
	fake.FailHTTP("chat.update", 500, 1)
	_, _, err := api.PostMessageContext(ctx5s(t), "C1", slack.MsgOptionText("hi", false))
	if err != nil {
		t.Fatalf("post: %v (FailHTTP is per method)", err)
	}
	ts := fake.Channel("C1")[0].TS
	_, _, _, err = api.UpdateMessageContext(ctx5s(t), "C1", ts, slack.MsgOptionText("new", false))
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("update: %v, want a server error naming 500", err)
	}
	if m, _ := fake.Message("C1", ts); m.Text != "hi" {
		t.Errorf("a failed update changed the message to %q", m.Text)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx5s(t), "C1", ts, slack.MsgOptionText("new", false)); err != nil {
		t.Errorf("second update: %v (FailHTTP counts down)", err)
	}
}

func TestSetLatency(t *testing.T) {
	fake := newFake(t)
	api := newAPI(fake, "xoxb-test")
	fake.SetLatency("*", time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false)); err == nil {
		t.Fatal("a post answered within its deadline under a minute of latency")
	}
	fake.SetLatency("*", 0)
	if _, _, err := api.PostMessageContext(ctx5s(t), "C1", slack.MsgOptionText("hi", false)); err != nil {
		t.Fatalf("post after the latency was removed: %v", err)
	}
	if n := len(fake.Channel("C1")); n != 1 {
		t.Errorf("%d messages, want 1: the abandoned post must do nothing", n)
	}
}

func TestRedeliver(t *testing.T) {
	fake := newFake(t)
	type delivery struct {
		id      string
		attempt int
		reason  string
	}
	got := make(chan delivery, 4)
	runSocket(t, fake, func(h *socketmode.SocketmodeHandler) {
		h.HandleSlashCommand("/compromised", func(evt *socketmode.Event, c *socketmode.Client) {
			_ = c.AckCtx(context.Background(), evt.Request.EnvelopeID, nil)
			got <- delivery{evt.Request.EnvelopeID, evt.Request.RetryAttempt, evt.Request.RetryReason}
		})
	})
	id, err := fake.SlashCommand(ctx5s(t), slackfake.SlashCommand{UserID: "U1", ChannelID: "C1", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	first := recv(t, got, "first delivery")
	for range 2 {
		if err := fake.Redeliver(ctx5s(t), id, "timeout"); err != nil {
			t.Fatal(err)
		}
	}
	want := []delivery{{id, 0, ""}, {id, 1, "timeout"}, {id, 2, "timeout"}}
	// slack-go runs each handler in a goroutine of its own, so the redeliveries may arrive in
	// either order.
	all := []delivery{first, recv(t, got, "redelivery 1"), recv(t, got, "redelivery 2")}
	sort.Slice(all, func(i, j int) bool { return all[i].attempt < all[j].attempt })
	if d := cmp.Diff(all, want, cmp.AllowUnexported(delivery{})); d != "" {
		t.Errorf("deliveries (-got +want):\n%s", d)
	}
	if err := fake.Redeliver(ctx5s(t), "nope", "timeout"); err == nil {
		t.Error("redelivered an envelope never sent")
	}
}
