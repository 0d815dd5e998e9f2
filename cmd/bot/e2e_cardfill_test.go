package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
)

// TestCardFillsInDevicesAndCalls: the card is posted after the open's user read, while the
// user's devices and live calls are still held at the PBX (a gate in front of the simulator), and
// shows them as being read; once the PBX answers, the card sync fills them in, and the thread
// records them (live.read). Burst order, issue 9 items 4–5.
func TestCardFillsInDevicesAndCalls(t *testing.T) {
	w := newWorld(t)
	w.pbx.AddActiveCall("acme.example", "1001", "call-1", "+88212345678")
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; r.Method == http.MethodGet && (strings.HasSuffix(p, "/users/1001/devices") || strings.HasSuffix(p, "/users/1001/calls")) {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		w.pbx.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(release) // before the server closes (cleanups run last first)
	w.env["NS_API_URL"] = srv.URL + nstest.BasePath
	w.start()

	w.command(alice, incChan, target)
	ts, inc := w.card("1001", "acme.example")
	first, ok := w.slack.Message(incChan, ts)
	if !ok || !strings.Contains(string(first.Blocks), "reading…") {
		t.Fatalf("the card posted before the devices and calls were read does not say so:\n%s", first.Blocks)
	}
	if l := w.incident(inc.ID).Live; l == nil || !l.Pending {
		t.Fatalf("live state while the reads are held = %+v, want Pending", l)
	}
	release()
	w.cardShows(ts, "*Active calls*  1")
	w.cardShows(ts, "*Devices* (")
	if m, _ := w.slack.Message(incChan, ts); strings.Contains(string(m.Blocks), "reading…") {
		t.Errorf("the card still says reading…:\n%s", m.Blocks)
	}
	w.waitFor("the open's devices and calls in the thread", func() bool {
		for _, m := range w.slack.Thread(incChan, ts) {
			if strings.Contains(m.Text, "1 live call(s)") {
				return true
			}
		}
		return false
	})
}
