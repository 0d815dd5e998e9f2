package slackfake_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/compromised-responder/bot/internal/slackfake"
)

// TestCountWaitsAndSince: WaitAcks and WaitMessages return once their count is reached, not
// before; AcksSince and MessagesSince are the tails of Acks and Messages; a wait ends with ctx's
// error or ErrClosed.
func TestCountWaitsAndSince(t *testing.T) {
	fake := newFake(t)
	runSocket(t, fake, func(h *socketmode.SocketmodeHandler) {
		h.HandleSlashCommand("/compromised", func(evt *socketmode.Event, c *socketmode.Client) {
			_ = c.AckCtx(context.Background(), evt.Request.EnvelopeID, map[string]any{"text": "answer " + evt.Data.(slack.SlashCommand).Text})
		})
	})
	const n = 3
	acks, msgs := make(chan error, 1), make(chan error, 1)
	go func() { acks <- fake.WaitAcks(ctx5s(t), n) }()
	go func() { msgs <- fake.WaitMessages(ctx5s(t), n) }()
	for i := range n {
		select {
		case err := <-acks:
			t.Fatalf("WaitAcks(%d) returned %v after %d acks", n, err, fake.AckCount())
		case err := <-msgs:
			t.Fatalf("WaitMessages(%d) returned %v after %d messages", n, err, fake.MessageCount())
		default:
		}
		id, err := fake.SlashCommand(ctx5s(t), slackfake.SlashCommand{UserID: "U1", ChannelID: "C1", Text: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fake.WaitAck(ctx5s(t), id); err != nil {
			t.Fatal(err)
		}
	}
	if err := recv(t, acks, "WaitAcks"); err != nil || fake.AckCount() != n {
		t.Errorf("WaitAcks = %v with %d acks, want nil with %d", err, fake.AckCount(), n)
	}
	if err := recv(t, msgs, "WaitMessages"); err != nil || fake.MessageCount() != n {
		t.Errorf("WaitMessages = %v with %d messages, want nil with %d", err, fake.MessageCount(), n)
	}
	if d := cmp.Diff(fake.Acks()[1:], fake.AcksSince(1)); d != "" {
		t.Errorf("AcksSince(1) is not Acks()[1:] (-want +got):\n%s", d)
	}
	if got := fake.AcksSince(n); got != nil {
		t.Errorf("AcksSince(%d) = %v, want nil", n, got)
	}
	if d := cmp.Diff(fake.Messages()[2:], fake.MessagesSince(2)); d != "" {
		t.Errorf("MessagesSince(2) is not Messages()[2:] (-want +got):\n%s", d)
	}
	// An ack's payload is the caller's copy.
	a := fake.AcksSince(0)
	a[0].Payload[0] = 'X'
	if fake.Acks()[0].Payload[0] != '{' {
		t.Error("AcksSince hands out the recorded payload itself")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := fake.WaitAcks(ctx, n+1); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitAcks with a cancelled ctx = %v, want context.Canceled", err)
	}
	if err := fake.WaitAcks(ctx, n); err != nil {
		t.Errorf("WaitAcks of a count already reached = %v, want nil", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- fake.WaitMessages(context.Background(), n+1) }()
	// The waiter is registered (or sees the server closed): either way it must end with ErrClosed.
	fake.Close()
	if err := recv(t, closed, "WaitMessages on a closed server"); !errors.Is(err, slackfake.ErrClosed) {
		t.Errorf("WaitMessages after Close = %v, want ErrClosed", err)
	}
}
