package slacksocket_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/slackfake"
	"github.com/compromised-responder/bot/internal/slacksocket"
	"github.com/compromised-responder/bot/internal/slackui"
)

// BenchmarkBurstAck is the floor under cmd/bot's BenchmarkBurstHelp: 200 slash commands sent at
// once by slackfake to this client, in one process, each acked at once with a ~1 KiB ephemeral
// payload (the size of the help answer) by a handler that does nothing else. One op = one burst.
// ack-p99-ms is slackfake's figure (its frame written → its ack read), as in BurstHelp. The
// client holds 1 or 2 connections (Options.Connections); with 2 the fake spreads the burst over
// both at random, as Slack does, and each half is read and acked by its own goroutine. The
// client reports to the app's series (Options.Metrics), as in production.
func BenchmarkBurstAck(b *testing.B) {
	for _, conns := range []int{1, 2} {
		b.Run(fmt.Sprintf("connections=%d", conns), func(b *testing.B) { benchBurstAck(b, conns) })
	}
}

func benchBurstAck(b *testing.B, conns int) {
	const n = 200
	fake := slackfake.Start(b, slackfake.Options{PingInterval: fakePing})
	fake.AddUser("U1", "alice")
	fake.AddChannel("C1", "incident", true)
	payload, _ := json.Marshal(map[string]string{"response_type": "ephemeral", "text": strings.Repeat("help • text ", 90)})
	// The app's series, as in production (the client observes each ack's latency).
	m := slackui.NewMetrics(nil)
	r := startOpts(b, fake, "xapp-1-test", slacksocket.Options{Connections: conns,
		Metrics: slacksocket.Metrics{Connections: m.SocketConnections, Wanted: m.SocketsWanted, AckLatency: m.AckLatency}})
	r.rec.ack = func(*slacksocket.Envelope) any { return json.RawMessage(payload) }
	r.waitFor("live sockets", func(s *slackfake.Server) bool { return s.LiveSockets() == conns })
	burst := make([]slackfake.SlashCommand, n)
	for i := range burst {
		burst[i] = slackfake.SlashCommand{UserID: "U1", ChannelID: "C1", Text: "help"}
	}
	var lat []time.Duration
	for b.Loop() {
		// Collected first, with the timer stopped, as BurstHelp does for its test process. Here
		// the client shares the heap, so its garbage goes too: this is the floor, without
		// either side's GC in a burst.
		b.StopTimer()
		runtime.GC()
		b.StartTimer()
		before := fake.AckCount()
		// Written back to back from one goroutine, as BurstHelp sends its burst (slackfake's
		// SlashCommands): 200 goroutines each building an envelope made the fake's own work part
		// of every ack's latency.
		if _, err := fake.SlashCommands(context.Background(), burst); err != nil {
			b.Fatal(err)
		}
		// Woken once, at the burst's last ack: a WaitFor here ran (and copied every ack so far)
		// after each ack, in the same process as the client being measured.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := fake.WaitAcks(ctx, before+n)
		cancel()
		if err != nil {
			b.Fatalf("waiting for the burst's acks: %v", err)
		}
		for _, a := range fake.AcksSince(before) {
			lat = append(lat, a.Latency)
		}
		for range n {
			<-r.rec.got
		}
	}
	slices.Sort(lat)
	ms := func(p int) float64 { return float64(lat[(len(lat)-1)*p/100].Microseconds()) / 1000 }
	b.ReportMetric(ms(50), "ack-p50-ms")
	b.ReportMetric(ms(99), "ack-p99-ms")
	b.ReportMetric(ms(100), "ack-max-ms")
}
