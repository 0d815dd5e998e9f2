package slacksocket_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/slackfake"
	"github.com/compromised-responder/bot/internal/slacksocket"
)

// The client against slackfake's real Socket Mode protocol: every case of the link it handles
// (hello, acks with and without payload, disconnect requests, dropped and silent sockets, a
// rate-limited or refused apps.connections.open, redeliveries, bad frames, the 20 KiB limit).

const (
	fakePing   = 50 * time.Millisecond
	clientPing = 400 * time.Millisecond
)

// recorder is a Handler that acks every envelope with ack(e) (nil: a bare ack) unless hold is
// set, and records what it saw.
type recorder struct {
	mu    sync.Mutex
	envs  []*slacksocket.Envelope
	links []string // "up" or "down: why"
	hold  bool
	ack   func(e *slacksocket.Envelope) any
	got   chan *slacksocket.Envelope
}

func newRecorder() *recorder { return &recorder{got: make(chan *slacksocket.Envelope, 1024)} }

func (r *recorder) Envelope(ctx context.Context, e *slacksocket.Envelope) {
	r.mu.Lock()
	r.envs = append(r.envs, e)
	hold, ack := r.hold, r.ack
	r.mu.Unlock()
	if !hold {
		var payload any
		if ack != nil {
			payload = ack(e)
		}
		if err := e.Ack(ctx, payload); err != nil {
			panic(fmt.Sprintf("ack %s: %v", e.ID, err))
		}
	}
	r.got <- e
}

func (r *recorder) Link(up bool, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if up {
		r.links = append(r.links, "up")
	} else {
		r.links = append(r.links, "down: "+why)
	}
}

func (r *recorder) sawLink(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.links {
		if l == s {
			return true
		}
	}
	return false
}

type rig struct {
	t      testing.TB
	fake   *slackfake.Server
	client *slacksocket.Client
	rec    *recorder
	done   chan error
	stop   context.CancelFunc
}

func newFake(t testing.TB) *slackfake.Server {
	t.Helper()
	fake := slackfake.Start(t, slackfake.Options{PingInterval: fakePing,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
	fake.AddUser("U1", "alice")
	fake.AddChannel("C1", "incident", true)
	return fake
}

// start runs a client of one connection (app token appToken) against fake until the test ends.
func start(t testing.TB, fake *slackfake.Server, appToken string) *rig {
	t.Helper()
	return startN(t, fake, appToken, 1)
}

// startN is start with a client of n connections.
func startN(t testing.TB, fake *slackfake.Server, appToken string, n int) *rig {
	t.Helper()
	return startOpts(t, fake, appToken, slacksocket.Options{Connections: n})
}

// startOpts is start with a client made with opts (PingInterval clientPing when not set, the
// test's logger).
func startOpts(t testing.TB, fake *slackfake.Server, appToken string, opts slacksocket.Options) *rig {
	t.Helper()
	api := slack.New("xoxb-test", slack.OptionAPIURL(fake.APIURL()), slack.OptionAppLevelToken(appToken))
	if opts.PingInterval == 0 {
		opts.PingInterval = clientPing
	}
	opts.Logger = zerolog.New(zerolog.NewTestWriter(t))
	c := slacksocket.New(api, opts)
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{t: t, fake: fake, client: c, rec: newRecorder(), done: make(chan error, 1), stop: cancel}
	go func() { r.done <- c.Run(ctx, r.rec) }()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil && appToken == "xapp-1-test" {
			t.Errorf("Run = %v after cancel, want nil", err)
		}
	})
	return r
}

func (r *rig) waitFor(what string, cond func(*slackfake.Server) bool) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.fake.WaitFor(ctx, cond); err != nil {
		r.t.Fatalf("waiting for %s: %v", what, err)
	}
}

func (r *rig) live() {
	r.t.Helper()
	r.waitFor("a live socket", func(s *slackfake.Server) bool { return s.LiveSockets() == 1 })
}

func (r *rig) command(text string) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := r.fake.SlashCommand(ctx, slackfake.SlashCommand{UserID: "U1", ChannelID: "C1", Text: text})
	if err != nil {
		r.t.Fatal(err)
	}
	return id
}

func (r *rig) next() *slacksocket.Envelope {
	r.t.Helper()
	select {
	case e := <-r.rec.got:
		return e
	case <-time.After(10 * time.Second):
		r.t.Fatal("no envelope delivered")
		return nil
	}
}

func (r *rig) waitAck(id string) slackfake.Ack {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := r.fake.WaitAck(ctx, id)
	if err != nil {
		r.t.Fatal(err)
	}
	return a
}

// acksOf counts the acks the fake recorded per envelope.
func acksOf(fake *slackfake.Server) map[string]int {
	n := map[string]int{}
	for _, a := range fake.Acks() {
		n[a.EnvelopeID]++
	}
	return n
}

// TestCommandAckWithPayload: hello makes the link up; a slash command arrives decoded into
// slack.SlashCommand with its envelope fields, and its ack carries the payload given.
func TestCommandAckWithPayload(t *testing.T) {
	r := start(t, newFake(t), "xapp-1-test")
	r.rec.ack = func(*slacksocket.Envelope) any {
		return map[string]string{"response_type": "ephemeral", "text": "hi <there> & \"you\""}
	}
	r.live()
	id := r.command("help me")
	e := r.next()
	if e.ID != id || e.Type != slacksocket.TypeSlashCommands || !e.AcceptsResponsePayload || e.RetryAttempt != 0 {
		t.Errorf("envelope = %+v, want %s slash_commands accepting a payload, first delivery", e, id)
	}
	if e.Command == nil || e.Command.Text != "help me" || e.Command.UserID != "U1" || e.Command.Command != "/compromised" ||
		e.Command.ResponseURL == "" || e.Command.TriggerID == "" || e.Callback != nil {
		t.Fatalf("command = %+v", e.Command)
	}
	a := r.waitAck(id)
	var p struct{ ResponseType, Text string }
	if err := json.Unmarshal(a.Payload, &p); err != nil || p.Text != `hi <there> & "you"` {
		t.Errorf("ack payload = %s (%v)", a.Payload, err)
	}
	if !r.rec.sawLink("up") {
		t.Error("the link was never reported up")
	}
}

// TestBurstAckedOnceEach: envelopes sent all at once (whose acks leave together, corked) are each
// acked exactly once, each with its own payload.
func TestBurstAckedOnceEach(t *testing.T) {
	r := start(t, newFake(t), "xapp-1-test")
	r.rec.ack = func(e *slacksocket.Envelope) any { return json.RawMessage(`{"text":"` + e.Command.Text + `"}`) }
	r.live()
	const n = 300
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ids[i] = r.command(fmt.Sprintf("c%d", i)) })
	}
	wg.Wait()
	r.waitFor("every ack", func(s *slackfake.Server) bool { return len(acksOf(s)) >= n })
	counts := acksOf(r.fake)
	for i, id := range ids {
		if counts[id] != 1 {
			t.Errorf("envelope %d acked %d times", i, counts[id])
		}
	}
	for _, a := range r.fake.Acks() {
		var p struct{ Text string }
		if err := json.Unmarshal(a.Payload, &p); err != nil || !strings.HasPrefix(p.Text, "c") {
			t.Errorf("ack %s payload %s", a.EnvelopeID, a.Payload)
		}
	}
}

// TestDisconnectReconnects: for each reason Slack gives, the client opens a new link and
// envelopes flow on it. (Whether the link is reported down meanwhile depends on whether the new
// one said hello before the old one's reading ended: TestRefreshRedialsAtOnce makes it so.)
func TestDisconnectReconnects(t *testing.T) {
	fake := newFake(t)
	r := start(t, fake, "xapp-1-test")
	r.live()
	for i, reason := range []string{"refresh_requested", "warning", "link_disabled"} {
		fake.Disconnect(reason)
		r.waitFor("a new socket", func(s *slackfake.Server) bool { return s.Connects() == i+2 && s.LiveSockets() == 1 })
		id := r.command("after " + reason)
		if e := r.next(); e.ID != id {
			t.Fatalf("after %s: got envelope %s, want %s", reason, e.ID, id)
		}
		r.waitAck(id)
	}
}

// TestDroppedAndSilentLinks: a socket closed without a close frame, and one whose pings stop
// (silently dead), are both replaced.
func TestDroppedAndSilentLinks(t *testing.T) {
	fake := newFake(t)
	r := start(t, fake, "xapp-1-test")
	r.live()
	fake.DropSockets()
	r.waitFor("a new socket after the drop", func(s *slackfake.Server) bool { return s.Connects() == 2 && s.LiveSockets() == 1 })
	fake.StopPings(true)
	r.waitFor("the client to give up the silent socket", func(s *slackfake.Server) bool { return s.Opens() >= 3 })
	fake.StopPings(false)
	r.waitFor("a live socket again", func(s *slackfake.Server) bool { return s.LiveSockets() == 1 && s.Connects() >= 3 })
	id := r.command("still here")
	r.next()
	r.waitAck(id)
}

// TestOpenRateLimited: a 429 on apps.connections.open is retried (after its Retry-After) and
// the link comes up; meanwhile it is reported down.
func TestOpenRateLimited(t *testing.T) {
	fake := newFake(t)
	fake.RateLimit("apps.connections.open", 1, 1)
	r := start(t, fake, "xapp-1-test")
	r.live()
	if n := fake.Opens(); n != 1 { // the 429 is not counted as an open by the fake
		t.Logf("opens = %d", n)
	}
	if !r.rec.sawLink("down: socket mode connection error") {
		t.Errorf("links %v: the failed open was not reported", r.rec.links)
	}
}

// TestRefusedAppToken: Slack refusing the app-level token ends Run with ErrAuth, whatever the
// number of connections, and no connection keeps asking (they open one at a time, and the first
// refusal closes the others).
func TestRefusedAppToken(t *testing.T) {
	for _, conns := range []int{1, 3} {
		t.Run(fmt.Sprintf("connections=%d", conns), func(t *testing.T) {
			fake := newFake(t)
			r := startN(t, fake, "xapp-1-wrong", conns)
			select {
			case err := <-r.done:
				if !errors.Is(err, slacksocket.ErrAuth) || !strings.Contains(err.Error(), "invalid_auth") {
					t.Errorf("Run = %v, want ErrAuth (invalid_auth)", err)
				}
				r.done <- nil // for the cleanup
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not stop on a refused token")
			}
			if n := len(fake.Calls("apps.connections.open")); n < 1 || n > conns {
				t.Errorf("%d calls of apps.connections.open by %d connections", n, conns)
			}
		})
	}
}

// TestRedeliveryFields: a redelivered envelope carries retry_attempt and retry_reason.
func TestRedeliveryFields(t *testing.T) {
	fake := newFake(t)
	r := start(t, fake, "xapp-1-test")
	r.live()
	id := r.command("x")
	r.next()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fake.Redeliver(ctx, id, "timeout"); err != nil {
		t.Fatal(err)
	}
	e := r.next()
	if e.ID != id || e.RetryAttempt != 1 || e.RetryReason != "timeout" {
		t.Errorf("redelivery = %s attempt %d reason %q", e.ID, e.RetryAttempt, e.RetryReason)
	}
	r.waitFor("two acks", func(s *slackfake.Server) bool { return acksOf(s)[id] == 2 })
}

// TestAckTooBig: an ack reaching 20 KiB is refused before it is written (Slack would close the
// socket); the envelope can still be acked within the limit.
func TestAckTooBig(t *testing.T) {
	fake := newFake(t)
	r := start(t, fake, "xapp-1-test")
	r.rec.hold = true
	r.live()
	id := r.command("big")
	e := r.next()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := e.Ack(ctx, map[string]string{"text": strings.Repeat("x", 20*1024)})
	if !errors.Is(err, slacksocket.ErrAckTooBig) {
		t.Fatalf("big ack = %v, want ErrAckTooBig", err)
	}
	if err := e.Ack(ctx, map[string]string{"text": strings.Repeat("x", 20*1024-200)}); err != nil {
		t.Fatalf("ack just under the limit: %v", err)
	}
	if a := r.waitAck(id); len(a.Payload) < 20*1024-200 {
		t.Errorf("ack payload of %d bytes", len(a.Payload))
	}
	if fake.Connects() != 1 {
		t.Errorf("%d connects: the socket was closed", fake.Connects())
	}
}

// TestAckAfterLinkDrop: an envelope acked after its connection died is acked on the new one.
func TestAckAfterLinkDrop(t *testing.T) {
	fake := newFake(t)
	r := start(t, fake, "xapp-1-test")
	r.rec.hold = true
	r.live()
	id := r.command("slow")
	e := r.next()
	fake.DropSockets()
	r.waitFor("a new socket", func(s *slackfake.Server) bool { return s.Connects() == 2 && s.LiveSockets() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	r.waitAck(id)
}

// TestBadFrames: frames that are not Socket Mode messages are ignored and the link stays; an
// envelope whose payload does not decode is acked (bare) so Slack does not send it again; an
// events_api envelope is delivered by type.
func TestBadFrames(t *testing.T) {
	fake := newFake(t)
	r := start(t, fake, "xapp-1-test")
	r.live()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, raw := range []string{`not json`, `{"type":"weird","envelope_id":"w1"}`, `{"type":"slash_commands"}`, `[]`} {
		if err := fake.SendEnvelope(ctx, []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	if err := fake.SendEnvelope(ctx, []byte(`{"type":"slash_commands","envelope_id":"bad1","payload":"a string"}`)); err != nil {
		t.Fatal(err)
	}
	if err := fake.SendEnvelope(ctx, []byte(`{"type":"events_api","envelope_id":"ev1","payload":{"event":{"type":"app_mention"}}}`)); err != nil {
		t.Fatal(err)
	}
	if e := r.next(); e.ID != "ev1" || e.Type != slacksocket.TypeEventsAPI {
		t.Errorf("delivered %s %s, want the events_api envelope ev1", e.Type, e.ID)
	}
	r.waitAck("bad1")
	r.waitAck("ev1")
	if n := acksOf(fake)["w1"]; n != 0 {
		t.Errorf("a frame of unknown type acked %d times", n)
	}
	if fake.Connects() != 1 {
		t.Errorf("%d connects: bad frames cost the link", fake.Connects())
	}
}

// TestAckWithinBound: an envelope whose connection died waits for a live one at most the bound
// given, even under a context without a deadline, and says why it gave up; with a connection
// open the bound is not used at all (the ack goes out, whatever the bound).
func TestAckWithinBound(t *testing.T) {
	fake := newFake(t)
	r := start(t, fake, "xapp-1-test")
	r.rec.hold = true
	r.live()
	id := r.command("first")
	e := r.next()
	if err := e.AckWithin(context.Background(), nil, time.Nanosecond); err != nil {
		t.Fatalf("ack on an open connection with a 1 ns bound: %v", err)
	}
	r.waitAck(id)
	r.command("second")
	e = r.next()
	// No new link: apps.connections.open is rate limited for a minute.
	fake.RateLimit("apps.connections.open", 1000, 60)
	fake.DropSockets()
	// The client asks for a new link once it has closed the old connection.
	r.waitFor("a refused reconnect", func(s *slackfake.Server) bool { return len(s.Calls("apps.connections.open")) >= 2 })
	err := e.AckWithin(context.Background(), nil, 20*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ack with no live connection = %v, want context.DeadlineExceeded", err)
	}
}
