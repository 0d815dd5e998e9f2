package slacksocket_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/slackfake"
	"github.com/compromised-responder/bot/internal/slacksocket"
	"github.com/compromised-responder/bot/internal/slackui"
)

// The client's series (Options.Metrics), defined by the app (slackui.NewMetrics) and read here
// as /metrics shows them: gathered from the registry they are registered with.

// scrape gathers reg: each gauge's value and each histogram's sum and count, by name
// (name_sum, name_count for a histogram).
func scrape(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				got[mf.GetName()+"_sum"] = h.GetSampleSum()
				got[mf.GetName()+"_count"] = float64(h.GetSampleCount())
			} else if g := m.GetGauge(); g != nil {
				got[mf.GetName()] = g.GetValue()
			}
		}
	}
	return got
}

// waitLive waits until the client has n live connections (it reads its hellos and disconnects
// on its own goroutines; the gauge is set with that count, under the same lock).
func (r *rig) waitLive(n int) {
	r.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); r.client.Live() != n; {
		if time.Now().After(deadline) {
			r.t.Fatalf("the client has %d live connections, want %d", r.client.Live(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestConnectionsGauge: compromised_slack_socket_connections follows the live connections:
// 2 of 2, 1 while Slack's refresh of one is followed by apps.connections.open failing (the
// link stays up: only this gauge shows the gap), 2 again once the client could reopen. Its
// _wanted companion says 2 throughout, so an alert can compare the two.
func TestConnectionsGauge(t *testing.T) {
	fake := newFake(t)
	reg := prometheus.NewRegistry()
	m := slackui.NewMetrics(reg)
	r := startOpts(t, fake, "xapp-1-test", slacksocket.Options{Connections: 2,
		Metrics: slacksocket.Metrics{Connections: m.SocketConnections, Wanted: m.SocketsWanted}})
	check := func(when string, want float64) {
		t.Helper()
		got := scrape(t, reg)
		if n := got["compromised_slack_socket_connections"]; n != want {
			t.Errorf("%s: compromised_slack_socket_connections = %v, want %v", when, n, want)
		}
		if n := got["compromised_slack_socket_connections_wanted"]; n != 2 {
			t.Errorf("%s: compromised_slack_socket_connections_wanted = %v, want 2", when, n)
		}
	}
	r.liveN(2)
	check("both up", 2)

	// The refreshed connection cannot come back until the test lets apps.connections.open work.
	fake.FailMethod("apps.connections.open", "internal_error", 1000)
	fake.DisconnectOldest("refresh_requested")
	r.waitLive(1)
	r.waitFor("a refused reopen", func(s *slackfake.Server) bool {
		for _, c := range s.Calls("apps.connections.open") {
			if c.Error == "internal_error" {
				return true
			}
		}
		return false
	})
	check("one refreshed and not reopened", 1)
	if !r.rec.sawLink("up") || r.rec.sawLink("down: slack asked to reconnect") {
		t.Errorf("link reports %v: the link should have stayed up", r.rec.links)
	}

	fake.FailMethod("apps.connections.open", "", 0)
	r.liveN(2)
	check("reopened", 2)
}

// TestAckLatencyFromRead: compromised_slack_ack_latency_seconds counts from when an envelope's
// frame came off the socket, not from when the reader got to it (after the frames read ahead of
// it and its own parse). Three envelopes come in one write, so one Read brings them in; the
// handler moves the client's clock 1 s on each before acking it. Counted from the Read they
// took 1, 2 and 3 s (the second waited for the first's handling, the third for both): 6 s in
// all. Counted from the reader's arrival at each, as before, it was 1 s each, 3 s in all.
func TestAckLatencyFromRead(t *testing.T) {
	envs := make([][]byte, 3)
	for i := range envs {
		envs[i] = fmt.Appendf(nil, `{"envelope_id":"e-%d","type":"slash_commands","accepts_response_payload":true,"payload":{`+
			`"token":"t","team_id":"T1","team_domain":"fake","channel_id":"C1","channel_name":"incident","user_id":"U1",`+
			`"user_name":"alice","command":"/compromised","text":"c%d","api_app_id":"A1","is_enterprise_install":"false",`+
			`"response_url":"http://127.0.0.1:1/r","trigger_id":"1.2.3"}}`, i, i)
	}
	send := make(chan struct{})
	acked := make(chan string, len(envs))
	url := wsServer(t, func(ws *websocket.Conn) {
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","num_connections":1}`))
		go func() {
			<-send
			// The three frames in one write (a server's frames are not masked): one segment
			// on loopback, which the client's next Read takes in whole.
			var all []byte
			for _, e := range envs {
				all = appendServerFrame(all, e)
			}
			_, _ = ws.NetConn().Write(all)
		}()
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			for i := range envs {
				if strings.Contains(string(data), fmt.Sprintf(`"envelope_id":"e-%d"`, i)) {
					acked <- fmt.Sprintf("e-%d", i)
				}
			}
		}
	})

	reg := prometheus.NewRegistry()
	m := slackui.NewMetrics(reg)
	c := slacksocket.New(opener{url: url}, slacksocket.Options{PingInterval: 30 * time.Second,
		Logger: zerolog.New(zerolog.NewTestWriter(t)), Metrics: slacksocket.Metrics{AckLatency: m.AckLatency}})
	base := time.Unix(1_800_000_000, 0)
	var offset atomic.Int64 // the clock: base + offset, moved by the handler only
	slacksocket.SetClock(c, func() time.Time { return base.Add(time.Duration(offset.Load())) })
	h := &clockedAcks{step: func() { offset.Add(int64(time.Second)) }, link: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, h) }()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case <-h.link:
	case <-time.After(10 * time.Second):
		t.Fatal("the link never came up")
	}
	close(send)
	for range envs {
		select {
		case <-acked:
		case <-time.After(10 * time.Second):
			t.Fatal("an envelope was not acked")
		}
	}
	got := scrape(t, reg)
	if n := got["compromised_slack_ack_latency_seconds_count"]; n != 3 {
		t.Errorf("%v acks observed, want 3", n)
	}
	if s := got["compromised_slack_ack_latency_seconds_sum"]; s != 6 {
		t.Errorf("the acks' latencies add up to %v s, want 6 (1, 2 and 3 s from the Read that brought them in)", s)
	}
	if h.errs.Load() != 0 {
		t.Errorf("%d acks failed", h.errs.Load())
	}
}

// clockedAcks is a Handler that moves the test's clock (step) on each envelope, then acks it.
type clockedAcks struct {
	step func()
	link chan struct{}
	once sync.Once
	errs atomic.Int32
}

func (h *clockedAcks) Envelope(ctx context.Context, e *slacksocket.Envelope) {
	h.step()
	if err := e.Ack(ctx, nil); err != nil {
		h.errs.Add(1)
	}
}

func (h *clockedAcks) Link(up bool, _ string) {
	if up {
		h.once.Do(func() { close(h.link) })
	}
}

// appendServerFrame appends payload as one unmasked WebSocket text frame (RFC 6455 5.2), as a
// server sends it.
func appendServerFrame(b, payload []byte) []byte {
	b = append(b, 0x81) // FIN, text
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n < 1<<16:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, payload...)
}
