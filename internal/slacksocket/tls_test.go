package slacksocket_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/slacksocket"
)

// opener hands out a fixed URL, as apps.connections.open would.
type opener struct{ url string }

func (o opener) StartSocketModeContext(context.Context) (*slack.SocketModeConnection, string, error) {
	return &slack.SocketModeConnection{URL: o.url}, o.url, nil
}

// TestOverTLS: Slack's link is wss://, where the corked writes go through crypto/tls: a burst
// written at once over TLS is acked once each (slackfake speaks plain ws://, so this is a
// minimal Socket Mode server of its own).
func TestOverTLS(t *testing.T) {
	const n = 100
	got := make(chan map[string]int, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","num_connections":1}`))
		var frames []byte
		for i := range n {
			frames = fmt.Appendf(frames[:0], `{"envelope_id":"e%d","type":"slash_commands","accepts_response_payload":true,`+
				`"payload":{"command":"/compromised","text":"help","user_id":"U1"}}`, i)
			if err := ws.WriteMessage(websocket.TextMessage, frames); err != nil {
				return
			}
		}
		acks := map[string]int{}
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		for len(acks) < n {
			_, data, err := ws.ReadMessage()
			if err != nil {
				break
			}
			var a struct {
				EnvelopeID string `json:"envelope_id"`
			}
			if json.Unmarshal(data, &a) == nil {
				acks[a.EnvelopeID]++
			}
		}
		got <- acks
		// Keep the socket until the client goes.
		_, _, _ = ws.ReadMessage()
	}))
	defer srv.Close()
	tlsConf := srv.Client().Transport.(*http.Transport).TLSClientConfig
	c := slacksocket.New(opener{strings.Replace(srv.URL, "https://", "wss://", 1)},
		slacksocket.Options{PingInterval: time.Minute, TLSConfig: tlsConf, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	rec := newRecorder()
	rec.ack = func(*slacksocket.Envelope) any { return json.RawMessage(`{"text":"ok"}`) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, rec) }()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case acks := <-got:
		for i := range n {
			if id := fmt.Sprintf("e%d", i); acks[id] != 1 {
				t.Errorf("%s acked %d times over TLS", id, acks[id])
			}
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the acks never arrived over TLS")
	}
}
