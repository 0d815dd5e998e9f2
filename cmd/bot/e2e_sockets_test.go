package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/slackfake"
)

// socketsPerBot is how many Socket Mode connections one `bot serve` keeps up by default
// (SOCKET_CONNECTIONS).
const socketsPerBot = 2

// TestServeSocketRefresh: Slack refreshing one of the bot's two Socket Mode connections (a
// `disconnect` on it) while a burst of commands arrives: the other connection serves meanwhile,
// so every command finds a live socket (with one connection, some would have failed with
// dispatch_failed), is acked and answered exactly once, an open gets one card, /readyz stays
// ready, and the refreshed connection comes back.
func TestServeSocketRefresh(t *testing.T) {
	const n = 100
	w := newWorld(t)
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("U0R%03d", i)
		w.slack.AddUser(users[i], strings.ToLower(users[i]))
	}
	b := w.start()
	w.waitFor("both connections", func() bool { return w.slack.LiveSockets() == socketsPerBot })
	// The client's gauges are the app's (slacksocket.Options.Metrics, wired by slackui.New).
	w.waitFor("/metrics to count both connections", func() bool {
		return metric(t, b.url, "compromised_slack_socket_connections") == socketsPerBot
	})
	if got := metric(t, b.url, "compromised_slack_socket_connections_wanted"); got != socketsPerBot {
		t.Errorf("compromised_slack_socket_connections_wanted = %v, want %d", got, socketsPerBot)
	}
	connects := w.slack.Connects()

	// The refreshed connection cannot come back for a second (apps.connections.open answers
	// 429), so the burst below is served by the other one alone.
	w.slack.RateLimit("apps.connections.open", 1, 1)
	if !w.slack.DisconnectOldest("refresh_requested") {
		t.Fatal("no socket to refresh")
	}
	cmds := make([]slackfake.SlashCommand, n, n+1)
	for i, u := range users {
		cmds[i] = slackfake.SlashCommand{UserID: u, ChannelID: incChan, Text: "help"}
	}
	cmds = append(cmds, slackfake.SlashCommand{UserID: alice, ChannelID: incChan, Text: target})
	ctx := w.ctx()
	ids, err := w.slack.SlashCommands(ctx, cmds)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids[:n] {
		a, err := w.slack.WaitAck(ctx, id)
		if err != nil {
			t.Fatalf("help of %s not acked: %v", users[i], err)
		}
		var p struct{ Text string }
		if err := json.Unmarshal(a.Payload, &p); err != nil || !strings.Contains(p.Text, "/compromised help") {
			t.Errorf("the ack of %s's help carries %s, want the help", users[i], a.Payload)
		}
	}
	if _, err := w.slack.WaitAck(ctx, ids[n]); err != nil {
		t.Fatalf("the open was not acked: %v", err)
	}
	// Still within the refreshed connection's second away (else it is back, and this holds anyway).
	if code, r, err := readyz(b.url); err != nil || code != http.StatusOK {
		t.Errorf("readyz during the refresh: %d %+v %v", code, r, err)
	}
	if s := w.slack.NoSocketSends(); s != 0 {
		t.Errorf("%d envelopes found no live socket during the refresh (Slack: dispatch_failed)", s)
	}
	acks := map[string]int{}
	for _, a := range w.slack.Acks() {
		acks[a.EnvelopeID]++
	}
	for _, id := range ids {
		if acks[id] != 1 {
			t.Errorf("envelope %s acked %d times, want once", id, acks[id])
		}
	}
	for _, u := range users {
		if got := w.slack.Ephemerals(u); len(got) != 1 || !strings.Contains(got[0].Text, "/compromised help") {
			t.Errorf("%s got %d answers (%+v), want the help once", u, len(got), got)
		}
	}
	ts, _ := w.card("1001", "acme.example")
	w.waitFor("the refreshed connection back", func() bool {
		return w.slack.Connects() > connects && w.slack.LiveSockets() == socketsPerBot
	})
	w.waitFor("/metrics to count both connections again", func() bool {
		return metric(t, b.url, "compromised_slack_socket_connections") == socketsPerBot
	})
	cards := 0
	for _, m := range topLevel(w.slack.Messages()) {
		if m.Method == "chat.postMessage" && m.Channel == incChan && strings.Contains(m.Text+string(m.Blocks), "1001@acme.example") {
			cards++
		}
	}
	if cards != 1 {
		t.Errorf("%d cards for the one open (card %s)", cards, ts)
	}
}
