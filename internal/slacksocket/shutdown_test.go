package slacksocket_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/slackfake"
	"github.com/compromised-responder/bot/internal/slacksocket"
)

// holdFirst is a Handler that acks every envelope and holds the reading goroutine on the first
// one (after its ack is out) until release is closed: the envelopes Slack writes meanwhile wait
// unread in the connection's buffers.
type holdFirst struct {
	held, release chan struct{}
	once          sync.Once
}

func (h *holdFirst) Envelope(ctx context.Context, e *slacksocket.Envelope) {
	if err := e.Ack(ctx, nil); err != nil {
		return // not acked: the fake shows it
	}
	h.once.Do(func() {
		e.Flush()
		close(h.held)
		<-h.release
	})
}

func (h *holdFirst) Link(bool, string) {}

// TestShutdownAcksWhatArrived: Run's ctx ends while envelopes Slack has already written wait
// unread behind one the handler is still on. The client reads on until the link is quiet and
// acks every one before it closes: Slack never delivers a slash command or a click again, so one
// left unread at the close is a command or click its sender saw fail (the SIGTERM of a replica
// in a burst lost several so, cmd/bot TestSIGTERMMidBurst). Run still returns once the link is
// quiet.
func TestShutdownAcksWhatArrived(t *testing.T) {
	fake := newFake(t) // its pings, every 50 ms, do not keep a shutdown reading
	api := slack.New("xoxb-test", slack.OptionAPIURL(fake.APIURL()), slack.OptionAppLevelToken("xapp-1-test"))
	// The watchdog far off: the reader is held here on purpose, not dead.
	c := slacksocket.New(api, slacksocket.Options{PingInterval: 30 * time.Second, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	h := &holdFirst{held: make(chan struct{}), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, h) }()
	r := &rig{t: t, fake: fake}
	r.live()

	ids := []string{r.command("first")}
	select {
	case <-h.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the first envelope never reached the handler")
	}
	for i := range 20 {
		ids = append(ids, r.command(fmt.Sprintf("c%d", i))) // written to the socket: Slack sent them
	}
	cancel()
	// Closing at once is what lost them: give a close its chance to happen before the reader
	// goes on (bounded; a client that reads on keeps the socket, and this wait just ends).
	wctx, wcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_ = fake.WaitFor(wctx, func(s *slackfake.Server) bool { return s.LiveSockets() == 0 })
	wcancel()
	close(h.release)

	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	acks := acksOf(fake)
	for i, id := range ids {
		if acks[id] != 1 {
			t.Errorf("envelope %d (of %d sent before the shutdown) acked %d times, want once", i, len(ids), acks[id])
		}
	}
}
