package slacksocket_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/slackfake"
	"github.com/compromised-responder/bot/internal/slacksocket"
)

// The client with several connections (Options.Connections): Slack delivers each envelope on
// one of them at random (slackfake does too), so a refresh or a drop of one leaves the others
// serving.

// liveN waits until the fake sees n live sockets and the client has read the hello of each
// (the fake counts a socket live once it wrote the hello).
func (r *rig) liveN(n int) {
	r.t.Helper()
	r.waitFor("live sockets", func(s *slackfake.Server) bool { return s.LiveSockets() == n })
	for deadline := time.Now().Add(10 * time.Second); r.client.Live() != n; {
		if time.Now().After(deadline) {
			r.t.Fatalf("the client has %d live connections, want %d", r.client.Live(), n)
		}
		time.Sleep(time.Millisecond) // the client reads its hellos on its own goroutines
	}
}

// burst sends n slash commands at once (as BurstHelp does) and waits until each is acked, then
// checks that each was delivered to the handler and acked exactly once, with its own answer.
func (r *rig) burst(n int) {
	r.t.Helper()
	cmds := make([]slackfake.SlashCommand, n)
	for i := range cmds {
		cmds[i] = slackfake.SlashCommand{UserID: "U1", ChannelID: "C1", Text: "help"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ids, err := r.fake.SlashCommands(ctx, cmds)
	if err != nil {
		r.t.Fatal(err)
	}
	delivered := map[string]int{}
	for range n {
		delivered[r.next().ID]++
	}
	r.waitFor("the burst's acks", func(s *slackfake.Server) bool {
		acks := acksOf(s)
		for _, id := range ids {
			if acks[id] == 0 {
				return false
			}
		}
		return true
	})
	acks := acksOf(r.fake)
	for _, id := range ids {
		if delivered[id] != 1 || acks[id] != 1 {
			r.t.Errorf("envelope %s delivered %d times, acked %d times; want once each", id, delivered[id], acks[id])
		}
	}
	for _, a := range r.fake.Acks() {
		var p struct{ Text string }
		if err := json.Unmarshal(a.Payload, &p); err != nil || p.Text != "answer "+a.EnvelopeID {
			r.t.Errorf("ack of %s carries %s, want its own answer", a.EnvelopeID, a.Payload)
		}
	}
}

// answerOwn makes the rig's handler answer each envelope with a text naming it.
func (r *rig) answerOwn() {
	r.rec.ack = func(e *slacksocket.Envelope) any { return map[string]string{"text": "answer " + e.ID} }
}

// TestTwoConnections: with Connections 2 the fake sees two live sockets, opened by two calls of
// apps.connections.open, and a burst over both is delivered and acked once per envelope.
func TestTwoConnections(t *testing.T) {
	fake := newFake(t)
	r := startN(t, fake, "xapp-1-test", 2)
	r.answerOwn()
	r.liveN(2)
	if n := len(fake.Calls("apps.connections.open")); n != 2 {
		t.Errorf("%d calls of apps.connections.open for two connections", n)
	}
	r.burst(100)
	if n := fake.NoSocketSends(); n != 0 {
		t.Errorf("%d envelopes found no live socket", n)
	}
}

// TestRefreshOneOfTwo: Slack refreshing one of two connections (a disconnect on it) leaves the
// other serving: a burst sent while the refreshed one cannot come back (apps.connections.open is
// rate limited) all finds a live socket (none would have been dispatch_failed) and is delivered
// and acked exactly once; the link is never reported down; the refreshed connection comes back.
func TestRefreshOneOfTwo(t *testing.T) {
	fake := newFake(t)
	r := startN(t, fake, "xapp-1-test", 2)
	r.answerOwn()
	r.liveN(2)
	fake.RateLimit("apps.connections.open", 1, 1) // the refreshed connection waits ≥ 1 s
	if !fake.DisconnectOldest("refresh_requested") {
		t.Fatal("no socket to refresh")
	}
	r.liveN(1)
	r.burst(100)
	if n := fake.NoSocketSends(); n != 0 {
		t.Errorf("%d envelopes found no live socket during the refresh", n)
	}
	r.waitFor("the refreshed connection back", func(s *slackfake.Server) bool { return s.Connects() == 3 && s.LiveSockets() == 2 })
	r.rec.mu.Lock()
	links := append([]string(nil), r.rec.links...)
	r.rec.mu.Unlock()
	up := false
	for _, l := range links {
		switch {
		case l == "up" && up:
			t.Errorf("links %v: reported up twice", links)
		case l == "up":
			up = true
		case up:
			t.Errorf("links %v: reported %q while the other connection served", links, l)
		}
	}
	if !up {
		t.Errorf("links %v: never up", links)
	}
}

// TestOneConnectionRefreshGap: with one connection (Connections 1, as before), a refresh leaves
// no live socket until the client is back: an envelope sent then finds none (Slack would answer
// it dispatch_failed), which is the gap TestRefreshOneOfTwo shows closed.
func TestOneConnectionRefreshGap(t *testing.T) {
	fake := newFake(t)
	r := startN(t, fake, "xapp-1-test", 1)
	r.answerOwn()
	r.liveN(1)
	fake.RateLimit("apps.connections.open", 1, 1)
	fake.DisconnectOldest("refresh_requested")
	r.burst(1)
	if n := fake.NoSocketSends(); n != 1 {
		t.Errorf("%d envelopes found no live socket, want the one sent during the refresh", n)
	}
	if n := fake.LiveSockets(); n != 1 {
		t.Errorf("%d live sockets, want 1", n)
	}
}

// TestOpenBackoffShared: the connections share one backoff: after a 429 on
// apps.connections.open, no connection calls it again before its Retry-After, and after a
// failure none calls it again before the backoff's first step (100 ms). With a backoff of their
// own, the second connection would call at once, beside the first.
func TestOpenBackoffShared(t *testing.T) {
	fake := newFake(t)
	fake.RateLimit("apps.connections.open", 1, 1)
	fake.FailMethod("apps.connections.open", "internal_error", 2)
	r := startN(t, fake, "xapp-1-test", 2)
	r.liveN(2)
	calls := fake.Calls("apps.connections.open")
	if len(calls) != 5 {
		t.Errorf("%d calls of apps.connections.open, want 3 refused and 2 that worked", len(calls))
	}
	for i := 1; i < len(calls); i++ {
		prev, gap := calls[i-1], calls[i].At.Sub(calls[i-1].At)
		want := time.Duration(0)
		switch prev.Error {
		case "ratelimited":
			want = time.Second
		case "internal_error":
			want = 100 * time.Millisecond
		}
		if gap < want {
			t.Errorf("call %d came %v after a call refused with %q, want ≥ %v", i, gap, prev.Error, want)
		}
	}
}

// TestAckOnOtherConnection: envelopes whose connection Slack refreshed before they were acked
// are acked on the other live connection, at once, while the refreshed one cannot come back.
// Twenty envelopes, so that (the fake picking a socket at random for each) some surely came on
// the refreshed connection: all twenty on the other has a chance of 1 in 2^20.
func TestAckOnOtherConnection(t *testing.T) {
	fake := newFake(t)
	r := startN(t, fake, "xapp-1-test", 2)
	r.rec.hold = true
	r.liveN(2)
	const n = 20
	cmds := make([]slackfake.SlashCommand, n)
	for i := range cmds {
		cmds[i] = slackfake.SlashCommand{UserID: "U1", ChannelID: "C1", Text: "held"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := fake.SlashCommands(ctx, cmds); err != nil {
		t.Fatal(err)
	}
	envs := make([]*slacksocket.Envelope, n)
	for i := range envs {
		envs[i] = r.next()
	}
	fake.RateLimit("apps.connections.open", 1000, 60) // no new connection for the test's length
	fake.DisconnectOldest("refresh_requested")
	r.waitFor("the refreshed socket closed", func(s *slackfake.Server) bool { return s.LiveSockets() == 1 })
	for deadline := time.Now().Add(10 * time.Second); r.client.Live() != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("the client has %d live connections, want 1", r.client.Live())
		}
		time.Sleep(time.Millisecond) // the client reads the disconnect on its own goroutine
	}
	for _, e := range envs {
		if err := e.AckWithin(ctx, nil, 5*time.Second); err != nil {
			t.Errorf("ack of %s: %v", e.ID, err)
		}
	}
	r.waitFor("every ack", func(s *slackfake.Server) bool { return len(acksOf(s)) == n })
	if c := fake.Connects(); c != 2 {
		t.Errorf("%d connects: the acks waited for a new connection", c)
	}
}

// TestTooManyWebsocketsBacksOff: a connection Slack refuses with too_many_websockets (the app's
// 10 sockets are taken, by all its replicas) is opened again only after the backoff, not at once
// as after a refresh (whose replacement is opened as soon as Slack asks, while the old one
// drains): at once it would be refused again, in a loop.
func TestTooManyWebsocketsBacksOff(t *testing.T) {
	fake := newFake(t)
	r := startN(t, fake, "xapp-1-test", 1)
	r.liveN(1)
	at := time.Now()
	fake.DisconnectOldest("too_many_websockets")
	r.waitFor("a new connection", func(s *slackfake.Server) bool { return s.Connects() == 2 && s.LiveSockets() == 1 })
	calls := fake.Calls("apps.connections.open")
	if len(calls) != 2 {
		t.Fatalf("%d calls of apps.connections.open, want 2", len(calls))
	}
	if gap := calls[1].At.Sub(at); gap < 100*time.Millisecond {
		t.Errorf("opened again %v after too_many_websockets, want ≥ the backoff's 100 ms", gap)
	}
}
