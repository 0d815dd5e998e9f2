package slacksocket_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
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

// TestShutdownReadsUntilSlackCloses: an envelope Slack sent in the instant the client's goodbye
// (its close frame) was on its way arrives after it. It can no longer be acked on its connection
// (no data frame may follow a close frame) and this client has no other, but it is still handed
// to the handler, so the app runs it instead of losing it; the reading ends at Slack's own close.
// The server here is a bare WebSocket server that writes the envelope when the goodbye comes,
// before it answers it: slackfake answers a close at once.
func TestShutdownReadsUntilSlackCloses(t *testing.T) {
	const late = `{"envelope_id":"late-1","type":"slash_commands","accepts_response_payload":true,"payload":{` +
		`"token":"t","team_id":"T1","team_domain":"fake","channel_id":"C1","channel_name":"incident","user_id":"U1",` +
		`"user_name":"alice","command":"/compromised","text":"late","api_app_id":"A1","is_enterprise_install":"false",` +
		`"response_url":"http://127.0.0.1:1/r","trigger_id":"1.2.3"}}`
	url := wsServer(t, func(ws *websocket.Conn) {
		ws.SetCloseHandler(func(code int, _ string) error {
			_ = ws.WriteMessage(websocket.TextMessage, []byte(late))
			return ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
		})
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","num_connections":1}`))
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	})
	c := slacksocket.New(opener{url: url},
		slacksocket.Options{PingInterval: 30 * time.Second, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	rec := newRecorder()
	rec.hold = true // its ack would fail: there is no connection left to take it
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, rec) }()
	deadline := time.Now().Add(10 * time.Second)
	for !rec.sawLink("up") {
		if time.Now().After(deadline) {
			t.Fatal("the link never came up")
		}
		time.Sleep(10 * time.Millisecond) // polling the test's own recorder
	}
	cancel()
	select {
	case e := <-rec.got:
		if e.ID != "late-1" || e.Command == nil || e.Command.Text != "late" {
			t.Errorf("handed %+v, want the late slash command", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the envelope sent before Slack had the goodbye never reached the handler")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Slack closed")
	}
}

// TestDisconnectReadsWhatFollows: Slack asks a connection to go (disconnect, refresh_requested)
// and an envelope it sent before it stopped delivering there follows the request on the same
// connection. The client leaves that connection as at a shutdown, reading on until it is quiet,
// so the envelope is handed on and acked instead of lost unread: Slack does not deliver a slash
// command or a click again. The server is a bare WebSocket server so it can write the envelope
// after the disconnect (slackfake stops sending on a socket it told to go).
func TestDisconnectReadsWhatFollows(t *testing.T) {
	const after = `{"envelope_id":"after-1","type":"slash_commands","accepts_response_payload":true,"payload":{` +
		`"token":"t","team_id":"T1","team_domain":"fake","channel_id":"C1","channel_name":"incident","user_id":"U1",` +
		`"user_name":"alice","command":"/compromised","text":"after","api_app_id":"A1","is_enterprise_install":"false",` +
		`"response_url":"http://127.0.0.1:1/r","trigger_id":"1.2.3"}}`
	var mu sync.Mutex
	var dials int
	acked := make(chan string, 4)
	url := wsServer(t, func(ws *websocket.Conn) {
		mu.Lock()
		dials++
		first := dials == 1
		mu.Unlock()
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","num_connections":1}`))
		if first {
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"disconnect","reason":"refresh_requested"}`))
			_ = ws.WriteMessage(websocket.TextMessage, []byte(after))
		}
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if strings.Contains(string(data), `"envelope_id":"after-1"`) {
				acked <- "after-1"
			}
		}
	})
	c := slacksocket.New(opener{url: url},
		slacksocket.Options{PingInterval: 30 * time.Second, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, rec) }()
	select {
	case e := <-rec.got:
		if e.ID != "after-1" || e.Command == nil || e.Command.Text != "after" {
			t.Errorf("handed %+v, want the slash command sent after the disconnect", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the envelope Slack sent after its disconnect never reached the handler")
	}
	select {
	case <-acked:
	case <-time.After(10 * time.Second):
		t.Fatal("the envelope sent after the disconnect was not acked on its connection")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
