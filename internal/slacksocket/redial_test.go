package slacksocket_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/slacksocket"
)

// A refresh of the only connection (Connections 1): the client connects the replacement as soon
// as Slack asks the old one to go, while the old one drains.

// refresher is a Slack that refreshes the first connection under load: after its hello it asks
// it to go (disconnect, refresh_requested) and writes an envelope every sendEvery until the
// client's close frame, so it is never quiet before the read cap. At the close frame it waits
// for the second connection's hello and then writes late-1 there (Slack sent it before it had
// the close frame: it can only be acked on another connection), and, when release is set, waits
// for it and writes late-2 before it closes back. Later connections say hello and only read
// (closing back at the client's close frame). It is also the client's Opener.
type refresher struct {
	url     string
	release chan struct{} // nil: the first connection closes back right after late-1
	refuse  bool          // apps.connections.open refuses the token after the first call

	mu     sync.Mutex
	opens  int              // calls of apps.connections.open
	dials  int              // WebSockets dialled
	sent   []string         // envelope IDs written, in order (all on the first connection)
	acks   map[string][]int // envelope ID → the connections its acks came on
	closed map[int]bool     // the client's close frame came on connection n
	hello2 chan struct{}    // closed once the second connection's hello is written
	gone   chan int         // n, once the client's close frame came on connection n
}

func newRefresher(t *testing.T, release chan struct{}) *refresher {
	s := &refresher{release: release, acks: map[string][]int{}, closed: map[int]bool{},
		hello2: make(chan struct{}), gone: make(chan int, 8)}
	s.url = wsServer(t, s.serve)
	return s
}

func (s *refresher) StartSocketModeContext(context.Context) (*slack.SocketModeConnection, string, error) {
	s.mu.Lock()
	s.opens++
	refused := s.refuse && s.opens > 1
	s.mu.Unlock()
	if refused {
		return nil, "", slack.SlackErrorResponse{Err: "invalid_auth"}
	}
	return &slack.SocketModeConnection{URL: s.url}, s.url, nil
}

func (s *refresher) serve(ws *websocket.Conn) {
	s.mu.Lock()
	s.dials++
	n := s.dials
	s.mu.Unlock()
	closed := make(chan struct{})
	ws.SetCloseHandler(func(code int, _ string) error {
		s.mu.Lock()
		s.closed[n] = true
		s.mu.Unlock()
		close(closed)
		s.gone <- n
		if n == 1 {
			return nil // closed back below, after the late envelopes
		}
		return ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
	})
	read := make(chan struct{})
	go func() {
		defer close(read)
		readAcks(ws, func(id string) {
			s.mu.Lock()
			s.acks[id] = append(s.acks[id], n)
			s.mu.Unlock()
		})
	}()
	defer func() { <-read }()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","num_connections":1}`)); err != nil || n != 1 {
		if n == 2 && err == nil {
			close(s.hello2)
		}
		return
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"disconnect","reason":"refresh_requested"}`))
	tick := time.NewTicker(sendEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-closed:
		case <-tick.C:
			if i < maxSends && s.write(ws, fmt.Sprintf("e-%d", i)) {
				continue
			}
		}
		break
	}
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		return // the client never said goodbye (the test fails on what it lacks)
	}
	select {
	case <-s.hello2:
	case <-time.After(20 * time.Second):
		return // no replacement while this connection drained: late-1 is never sent
	}
	if !s.write(ws, "late-1") {
		return
	}
	if s.release != nil {
		select {
		case <-s.release:
		case <-time.After(20 * time.Second):
			return
		}
		s.write(ws, "late-2")
	}
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
}

// write sends the slash command id, and records it when it was written.
func (s *refresher) write(ws *websocket.Conn, id string) bool {
	if err := ws.WriteMessage(websocket.TextMessage, slashFrame(id, "c")); err != nil {
		return false
	}
	s.mu.Lock()
	s.sent = append(s.sent, id)
	s.mu.Unlock()
	return true
}

// ackedOn is the connections the acks of id came on.
func (s *refresher) ackedOn(id string) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acks[id])
}

// waitGone waits for the client's close frame on connection n.
func (s *refresher) waitGone(t *testing.T, n int) {
	t.Helper()
	for deadline := time.After(20 * time.Second); ; {
		select {
		case g := <-s.gone:
			if g == n {
				return
			}
		case <-deadline:
			t.Fatalf("the client never said goodbye on connection %d", n)
		}
	}
}

// startRefresh runs a client of one connection against s, with the read cap capRead and the
// goodbye cap goodbye (generous: the drain must not end by it), until the first connection's
// late-1 was handed on and acked on the second. It returns the client, its handler and Run's
// result.
func startRefresh(t *testing.T, s *refresher, goodbye time.Duration) (*slacksocket.Client, *ackLog, context.CancelFunc, chan error) {
	t.Helper()
	c := slacksocket.New(s, slacksocket.Options{Connections: 1, PingInterval: 30 * time.Second,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
	slacksocket.SetQuiesceCaps(c, capQuiet, capRead, goodbye)
	h := &ackLog{wait: 5 * time.Second, link: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, h)
		close(done) // the cleanup's receive returns once a test took Run's result
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	for deadline := time.Now().Add(20 * time.Second); len(s.ackedOn("late-1")) == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("late-1 (sent on the refreshed connection after the client's goodbye) was never acked: acks on %v, %d opens",
				s.ackedOn("late-1"), s.openCount())
		}
		time.Sleep(time.Millisecond) // the client reads and acks on its own goroutines
	}
	return c, h, cancel, done
}

func (s *refresher) openCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens
}

// checkAcks: every envelope handed on was acked exactly once (and told so) or told its ack
// failed (and not acked), and nothing was acked that was not handed on.
func checkAcks(t *testing.T, s *refresher, h *ackLog) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	handed := map[string]bool{}
	for i, id := range h.handed {
		handed[id] = true
		switch on := s.acks[id]; {
		case h.failed[i] && len(on) != 0:
			t.Errorf("%s: told its ack failed, yet acked on %v", id, on)
		case !h.failed[i] && len(on) != 1:
			t.Errorf("%s: told it was acked, acked on %v, want once", id, on)
		}
	}
	for id, on := range s.acks {
		if !handed[id] {
			t.Errorf("%s acked on %v but never handed on", id, on)
		}
	}
}

// TestRefreshRedialsAtOnce: with one connection, Slack asks it to go and keeps it busy (an
// envelope every 2 ms, never quiet before the read cap). The client opens the replacement at
// once, while the old one drains: late-1, which Slack wrote on the old connection after it had
// the client's close frame (and only once the new connection had said hello), is handed on from
// the old connection's reading and acked on the new one, so the new one was opened and said
// hello before the old one's reading ended. The link is never reported down (the old connection
// is live until its reading ends, the new one before that); the old one's end does not open a
// third; every envelope handed on was acked once or told its ack failed. Before, the
// replacement was dialled only once the old reading had ended: late-1 was never written (the
// old connection was closed by the goodbye cap first).
func TestRefreshRedialsAtOnce(t *testing.T) {
	s := newRefresher(t, nil)
	c, h, _, done := startRefresh(t, s, 5*time.Second)
	if on := s.ackedOn("late-1"); !slices.Equal(on, []int{2}) {
		t.Errorf("late-1 acked on connections %v, want once, on the new one (2)", on)
	}
	for deadline := time.Now().Add(20 * time.Second); c.Live() != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("%d live connections, want the new one alone once the old one's reading ended", c.Live())
		}
		time.Sleep(time.Millisecond) // the client reads Slack's close on its own goroutine
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned %v after a refresh", err)
	default:
	}
	if n := s.openCount(); n != 2 {
		t.Errorf("%d calls of apps.connections.open, want 2: the refreshed connection replaced once", n)
	}
	h.mu.Lock()
	links := slices.Clone(h.links)
	h.mu.Unlock()
	if i := slices.Index(links, "up"); i < 0 || slices.ContainsFunc(links[i+1:], func(l string) bool { return strings.HasPrefix(l, "down") }) {
		t.Errorf("links %v: want up, and never down during the refresh", links)
	}
	checkAcks(t, s, h)
}

// TestShutdownDuringDrain: Run's ctx ends while the refreshed connection still drains (it said
// goodbye; Slack has not closed back) and its replacement serves. The replacement leaves as at
// any shutdown; Run does not return while the draining connection's serve goes on (Slack holds
// its close back until told): then late-2 arrives there, is handed on and told its ack failed
// (no connection is left to take it), Slack closes, and Run returns with no connection live,
// every envelope handed on acked once or told its ack failed.
func TestShutdownDuringDrain(t *testing.T) {
	release := make(chan struct{})
	s := newRefresher(t, release)
	c, h, cancel, done := startRefresh(t, s, 20*time.Second) // the drain ends by Slack's close, not the cap
	s.waitGone(t, 1)
	cancel()
	s.waitGone(t, 2) // the replacement's goodbye: it left
	for deadline := time.Now().Add(20 * time.Second); c.Live() != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("%d live connections, want the draining one alone once the replacement left", c.Live())
		}
		time.Sleep(time.Millisecond) // the replacement's reading ends at Slack's close, on its own goroutine
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned %v while a connection drained", err)
	default:
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the draining connection's close")
	}
	if n := c.Live(); n != 0 {
		t.Errorf("%d connections live after Run returned: a serve was left behind", n)
	}
	h.mu.Lock()
	i := slices.Index(h.handed, "late-2")
	late2Failed := i >= 0 && h.failed[i]
	h.mu.Unlock()
	if !late2Failed {
		t.Error("late-2, sent on the draining connection after the shutdown, was not handed on and told its ack failed")
	}
	checkAcks(t, s, h)
}

// TestRefusedTokenWhileDraining: the replacement's apps.connections.open is refused
// (invalid_auth) while the refreshed connection drains: Run returns ErrAuth, and only once the
// draining connection's serve has ended (it said goodbye; no connection is live).
func TestRefusedTokenWhileDraining(t *testing.T) {
	s := newRefresher(t, nil)
	s.refuse = true
	c := slacksocket.New(s, slacksocket.Options{Connections: 1, PingInterval: 30 * time.Second,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
	slacksocket.SetQuiesceCaps(c, capQuiet, capRead, capGoodbye)
	h := &ackLog{link: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background(), h) }()
	select {
	case err := <-done:
		if !errors.Is(err, slacksocket.ErrAuth) {
			t.Errorf("Run = %v, want ErrAuth", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the token was refused")
	}
	if n := c.Live(); n != 0 {
		t.Errorf("%d connections live after Run returned: the draining one was left behind", n)
	}
	s.mu.Lock()
	said := s.closed[1]
	s.mu.Unlock()
	if !said {
		t.Error("the refreshed connection never said goodbye")
	}
	checkAcks(t, s, h)
}
