package slacksocket_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/slacksocket"
)

// The caps of a connection's leaving (quiesce) when Slack never goes quiet on it: a shutdown, or
// Slack's own disconnect, reads on until 100 ms pass without a frame, but at most 2 s, then says
// goodbye and reads until Slack's close, at most 1 s. Here Slack writes an envelope every 2 ms
// for ever; the caps are shortened (SetQuiesceCaps) so a run takes a fraction of a second.
const (
	capQuiet   = 50 * time.Millisecond
	capRead    = 300 * time.Millisecond
	capGoodbye = 200 * time.Millisecond
	sendEvery  = 2 * time.Millisecond
	maxSends   = 10_000 // the server's bound: 20 s of sending, far past every cap
)

// wsServer serves each WebSocket dialled with serve: a bare Socket Mode server for what
// slackfake does not do. It returns the URL apps.connections.open would give.
func wsServer(t *testing.T, serve func(ws *websocket.Conn)) string {
	t.Helper()
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		serve(ws)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// endless is a Slack that never goes quiet on a connection: after the hello (and, with
// disconnect, a disconnect request) it writes an envelope every sendEvery. With closeBack it
// behaves as Slack does at the client's close frame: it stops delivering there (the close is
// handled under the same lock as each write, so nothing is written after it) and closes back.
// Without, it ignores the close frame and writes on until the client drops the TCP connection.
type endless struct {
	closeBack, disconnect bool

	mu       sync.Mutex
	dials    int
	sent     []string // envelope IDs written, in order (the first connection)
	acks     []string // envelope IDs acked on the first connection, in order (before the client's close frame)
	later    []string // envelope IDs acked on a reconnection (after a disconnect), in order
	closed   bool     // the client's close frame came
	endedBy  string   // why the sender stopped: "close", "write error" or "bound"
	finished chan struct{}
}

func (s *endless) serve(ws *websocket.Conn) {
	s.mu.Lock()
	s.dials++
	first := s.dials == 1
	s.mu.Unlock()
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","num_connections":1}`))
	if !first { // a reconnection after the disconnect: an ordinary, idle connection
		s.readAcks(ws, &s.later)
		return
	}
	defer close(s.finished)
	if s.disconnect {
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"disconnect","reason":"refresh_requested"}`))
	}
	ws.SetCloseHandler(func(code int, _ string) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		if !s.closeBack {
			return nil
		}
		return ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
	})
	read := make(chan struct{})
	go func() {
		defer close(read)
		s.readAcks(ws, &s.acks)
	}()
	s.send(ws)
	<-read
}

// readAcks reads ws until it fails, appending the ID of each ack to *to (under mu).
func (s *endless) readAcks(ws *websocket.Conn, to *[]string) {
	readAcks(ws, func(id string) {
		s.mu.Lock()
		*to = append(*to, id)
		s.mu.Unlock()
	})
}

// readAcks reads ws until it fails, handing the envelope ID of each ack to got.
func readAcks(ws *websocket.Conn, got func(id string)) {
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var ack struct {
			ID string `json:"envelope_id"`
		}
		if json.Unmarshal(data, &ack) == nil && ack.ID != "" {
			got(ack.ID)
		}
	}
}

// slashFrame is a slash command envelope as Slack writes it, with id and text.
func slashFrame(id, text string) []byte {
	return fmt.Appendf(nil, `{"envelope_id":%q,"type":"slash_commands",`+
		`"accepts_response_payload":true,"payload":{"token":"t","team_id":"T1","team_domain":"fake","channel_id":"C1",`+
		`"channel_name":"incident","user_id":"U1","user_name":"alice","command":"/compromised","text":%q,`+
		`"api_app_id":"A1","is_enterprise_install":"false","response_url":"http://127.0.0.1:1/r","trigger_id":"1.2.3"}}`, id, text)
}

func (s *endless) dialled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dials
}

// send writes envelopes until the close (closeBack), a write error or maxSends.
func (s *endless) send(ws *websocket.Conn) {
	tick := time.NewTicker(sendEvery)
	defer tick.Stop()
	for i := range maxSends {
		<-tick.C
		s.mu.Lock()
		if s.closed && s.closeBack {
			s.endedBy = "close"
			s.mu.Unlock()
			return
		}
		id := fmt.Sprintf("e-%d", i)
		err := ws.WriteMessage(websocket.TextMessage, slashFrame(id, "c"))
		if err != nil {
			s.endedBy = "write error"
			s.mu.Unlock()
			return
		}
		s.sent = append(s.sent, id)
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.endedBy = "bound"
	s.mu.Unlock()
}

// ackLog is a Handler that acks every envelope and records, in order, what it was handed and
// whether its ack was written, and the link's reports. An ack whose connection has closed waits
// at most wait for another (0: 100 ms; the app waits 2 s): with one connection and no early
// replacement there is none until the reading ends.
type ackLog struct {
	wait time.Duration

	mu     sync.Mutex
	handed []string
	failed []bool   // the ack's error, per handed envelope
	links  []string // "up", or "down: why"
	link   chan struct{}
	once   sync.Once
}

func (h *ackLog) Envelope(ctx context.Context, e *slacksocket.Envelope) {
	wait := h.wait
	if wait == 0 {
		wait = 100 * time.Millisecond
	}
	err := e.AckWithin(ctx, nil, wait)
	h.mu.Lock()
	h.handed = append(h.handed, e.ID)
	h.failed = append(h.failed, err != nil)
	h.mu.Unlock()
}

func (h *ackLog) Link(up bool, why string) {
	h.mu.Lock()
	if up {
		h.links = append(h.links, "up")
	} else {
		h.links = append(h.links, "down: "+why)
	}
	h.mu.Unlock()
	if up {
		h.once.Do(func() { close(h.link) })
	}
}

func (h *ackLog) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.handed)
}

// TestQuiesceCapsNeverQuiet: Slack writes an envelope every 2 ms through the whole leaving of a
// connection, so it is never quiet. A shutdown still ends (Run returns): the reading stops at
// the read cap, the goodbye goes, and the reading ends at Slack's close, or at the goodbye cap
// when Slack never closes. Every envelope handed to the handler before the goodbye was acked
// on the connection; the ones handed after it (sent while the goodbye was on its way, or, by a
// Slack that ignores it, after it) were told their ack failed, none claimed as acked, but for
// those acked on the reconnection after a disconnect (each once); an envelope never handed on
// was never acked; and what was handed on is what Slack sent, in order, from the first, with
// no gap. With a disconnect request the connection is left in the same way and the client
// reconnects meanwhile, Run going on.
func TestQuiesceCapsNeverQuiet(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		closeBack, disconnect bool
		endedBy               string
	}{
		{name: "shutdown, Slack closes back", closeBack: true, endedBy: "close"},
		{name: "shutdown, Slack never closes", endedBy: "write error"},
		{name: "disconnect, Slack closes back", closeBack: true, disconnect: true, endedBy: "close"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &endless{closeBack: tc.closeBack, disconnect: tc.disconnect, finished: make(chan struct{})}
			c := slacksocket.New(opener{url: wsServer(t, s.serve)},
				slacksocket.Options{PingInterval: 30 * time.Second, Logger: zerolog.New(zerolog.NewTestWriter(t))})
			slacksocket.SetQuiesceCaps(c, capQuiet, capRead, capGoodbye)
			h := &ackLog{link: make(chan struct{})}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx, h) }()
			select {
			case <-h.link:
			case <-time.After(10 * time.Second):
				t.Fatal("the link never came up")
			}
			before := 0 // envelopes handed on before the leaving began (a shutdown's)
			if tc.disconnect {
				select {
				case <-s.finished: // the first connection's reading ended, Run going on
				case <-time.After(10 * time.Second):
					t.Fatal("the connection Slack asked to go never stopped reading")
				}
				for deadline := time.Now().Add(10 * time.Second); s.dialled() != 2 || c.Live() != 1; {
					if time.Now().After(deadline) {
						t.Fatalf("%d dials, %d live connections after the disconnect, want the new one live", s.dialled(), c.Live())
					}
					time.Sleep(time.Millisecond) // the client reads the new hello on its own goroutine
				}
				select {
				case err := <-done:
					t.Fatalf("Run returned %v after a disconnect", err)
				default:
				}
				cancel()
			} else {
				for deadline := time.Now().Add(10 * time.Second); h.count() < 20; {
					if time.Now().After(deadline) {
						t.Fatalf("%d envelopes handed on, want 20 before the shutdown", h.count())
					}
					time.Sleep(time.Millisecond)
				}
				before = h.count()
				cancel()
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return: the never quiet connection kept it reading")
			}
			if !tc.disconnect {
				<-s.finished // the server's own end (its write fails once the client dropped the TCP connection)
			}

			s.mu.Lock()
			defer s.mu.Unlock()
			h.mu.Lock()
			defer h.mu.Unlock()
			if s.endedBy != tc.endedBy {
				t.Errorf("the server stopped sending by %q, want %q (after %d envelopes)", s.endedBy, tc.endedBy, len(s.sent))
			}
			if !s.closed {
				t.Error("the client never sent its close frame")
			}
			if len(h.handed) > len(s.sent) || !slices.Equal(h.handed, s.sent[:len(h.handed)]) {
				t.Errorf("handed on %d envelopes, not the first of the %d sent in order", len(h.handed), len(s.sent))
			}
			acked := 0 // the handed envelopes whose ack was written on their own connection: those before the goodbye
			for acked < len(h.failed) && !h.failed[acked] && acked < len(s.acks) {
				acked++
			}
			if !slices.Equal(s.acks, h.handed[:acked]) {
				t.Errorf("Slack got %d acks on the connection, want the %d of the envelopes acked before the goodbye, each once, in order", len(s.acks), acked)
			}
			// After the goodbye an ack goes on another live connection (the one that replaces a
			// connection Slack asked to go: TestRefreshRedialsAtOnce) or fails: at a shutdown
			// there is none, so every one fails.
			var elsewhere []string
			for i := acked; i < len(h.handed); i++ {
				if !h.failed[i] {
					elsewhere = append(elsewhere, h.handed[i])
				}
			}
			if !slices.Equal(s.later, elsewhere) {
				t.Errorf("after the goodbye, %v acked on the reconnection, want %v (each told so, once, in order)", s.later, elsewhere)
			}
			if acked < before {
				t.Errorf("%d envelopes acked, fewer than the %d handed on before the shutdown", acked, before)
			}
			t.Logf("%d sent, %d handed on (%d before the shutdown), %d acked, %d handed after the goodbye (%d acked on the reconnection)",
				len(s.sent), len(h.handed), before, acked, len(h.handed)-acked, len(elsewhere))
		})
	}
}
