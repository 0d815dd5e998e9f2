package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/compromised-responder/bot/internal/slackfake"
)

// The load tests of issue 9, through run with slackfake, the simulator and redis: every command
// of a burst is answered exactly once. They assert counts, never speed (the burst benchmarks
// measure that).

// TestBurstHelpAnsweredInAck: 200 /compromised help at once, each from its own user: every one
// is answered exactly once, in its Socket Mode ack, with no Web API call and no response_url.
func TestBurstHelpAnsweredInAck(t *testing.T) {
	const n = 200
	w := newWorld(t)
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("U0H%03d", i)
		w.slack.AddUser(users[i], strings.ToLower(users[i]))
	}
	w.start()
	before := w.slack.Stats()
	ctx := w.ctx()
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			id, err := w.slack.SlashCommand(ctx, slackfake.SlashCommand{UserID: u, ChannelID: incChan, Text: "help"})
			if err != nil {
				t.Errorf("send help as %s: %v", u, err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	for i, id := range ids {
		a, err := w.slack.WaitAck(ctx, id)
		if err != nil {
			t.Fatalf("help of %s not acked: %v", users[i], err)
		}
		var p struct{ ResponseType, Text string }
		if err := json.Unmarshal(a.Payload, &p); err != nil || !strings.Contains(p.Text, "/compromised help") {
			t.Errorf("the ack of %s's help carries %s, want the help", users[i], a.Payload)
		}
	}
	for _, u := range users {
		got := w.slack.Ephemerals(u)
		if len(got) != 1 || got[0].Method != "ack" || !strings.Contains(got[0].Text, "/compromised help") {
			t.Errorf("%s got %d answers (%+v), want one: the help, in the ack", u, len(got), got)
		}
	}
	for method, st := range w.slack.Stats() {
		if st.Calls != before[method].Calls && method != "usergroups.users.list" {
			t.Errorf("the help burst called %s %d times", method, st.Calls-before[method].Calls)
		}
	}
	for _, m := range w.slack.Messages() {
		if m.Method == "response_url" {
			t.Errorf("a response_url was used: %q", m.Text)
		}
	}
}
