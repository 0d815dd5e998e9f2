package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
	"github.com/compromised-responder/bot/internal/slackui"
)

// slackFault is one way Slack misbehaves during a whole incident (issue 11 item 5).
type slackFault struct {
	name string
	// before runs before each command and click (inject).
	before func(w *world)
	// deliver sends one command or click envelope (made by send) and waits for its ack; nil =
	// once, as Slack does on a good day.
	deliver func(w *world, send func() (string, error))
}

func slackFaults() []slackFault {
	redeliverAfterAck := func(w *world, send func() (string, error)) {
		w.t.Helper()
		id := w.deliverOnce(send)
		for range 2 { // the ack was lost: Slack sends the envelope again, twice
			if err := w.slack.Redeliver(w.ctx(), id, "timeout"); err != nil {
				w.t.Fatal(err)
			}
		}
	}
	redeliverBeforeAck := func(w *world, send func() (string, error)) {
		w.t.Helper()
		id, err := send()
		if err != nil {
			w.t.Fatal(err)
		}
		// The ack was slow: Slack sent it again before it arrived.
		if err := w.slack.Redeliver(w.ctx(), id, "timeout"); err != nil {
			w.t.Fatal(err)
		}
		if _, err := w.slack.WaitAck(w.ctx(), id); err != nil {
			w.t.Fatal(err)
		}
	}
	return []slackFault{
		{name: "none"},
		{name: "429 storm on chat methods", before: func(w *world) {
			w.slack.RateLimit("chat.update", 3, 1)
			w.slack.RateLimit("chat.postMessage", 2, 1)
			w.slack.RateLimit("chat.postEphemeral", 2, 1)
		}},
		{name: "chat.update failing", before: func(w *world) {
			w.slack.FailHTTP("chat.update", 500, 2)
			w.slack.FailMethod("chat.update", "internal_error", 2)
		}},
		{name: "acks lost", deliver: redeliverAfterAck},
		{name: "redelivered before the ack", deliver: redeliverBeforeAck},
		{name: "slow Web API", before: func(w *world) { w.slack.SetLatency("*", 250*time.Millisecond) }},
	}
}

// TestServeSlackFaults runs a whole incident under each Slack fault: the PBX writes are exactly
// those of a run without faults (each once), there is one card whose final rendering is the
// store's, the thread holds each audit line once and the credentials reach the requester once.
func TestServeSlackFaults(t *testing.T) {
	var want map[string]int // the PBX writes of the run without faults
	for _, f := range slackFaults() {
		t.Run(strings.ReplaceAll(f.name, " ", "_"), func(t *testing.T) {
			w := newWorld(t)
			w.start()
			act := func(send func() (string, error)) {
				t.Helper()
				if f.before != nil {
					f.before(w)
				}
				if f.deliver != nil {
					f.deliver(w, send)
				} else {
					w.deliverOnce(send)
				}
			}
			clickOn := func(user, ts, action string) {
				t.Helper()
				w.cardShows(ts, `"action_id":"`+action+`"`)
				act(func() (string, error) {
					return w.slack.Click(w.ctx(), slackfake.Click{UserID: user, ChannelID: incChan, MessageTS: ts, ActionID: action})
				})
			}
			act(func() (string, error) {
				return w.slack.SlashCommand(w.ctx(), slackfake.SlashCommand{UserID: alice, ChannelID: incChan, Text: target})
			})
			ts, inc := w.card("1001", "acme.example")
			for _, s := range session.Steps {
				clickOn(alice, ts, "step:"+string(s))
				if s == session.StepRestore {
					clickOn(bob, ts, "approve:restore")
				}
				w.waitFor(string(s)+" finished", func() bool { return w.step(inc.ID, s).Status.Finished() })
			}
			w.slack.SetLatency("*", 0)

			got := pbxWriteCounts(w)
			switch {
			case f.name == "none":
				want = got
			case want == nil: // run alone (-run …/acks_lost): there is no run without faults to compare with
				t.Errorf("no baseline: the subtest %q must run first", "none")
			default:
				if d := cmp.Diff(got, want); d != "" {
					t.Errorf("PBX writes under %s differ from a run without faults (-got +want):\n%s", f.name, d)
				}
			}
			w.cardConverges(ts, inc.ID)
			if n := len(topLevel(w.slack.Channel(incChan))); n != 1 {
				t.Errorf("%d top-level messages in the channel, want the one card", n)
			}
			replies := w.threadComplete(inc.ID)
			seen := map[string]int{}
			for _, r := range replies {
				seen[r.Text]++
				if seen[r.Text] == 2 {
					t.Errorf("thread line posted twice: %s", r.Text)
				}
			}
			final := w.incident(inc.ID)
			for k, d := range final.Delivery {
				if !d.Delivered {
					t.Errorf("secret %s not delivered: %s", k, d.Error)
				}
			}
			creds := 0
			for _, m := range w.slack.Ephemerals(alice) {
				if strings.Contains(m.Text, "New credentials") {
					creds++
				}
			}
			if creds != 2 {
				t.Errorf("alice got %d credential messages, want 2 (recreate, reset)", creds)
			}
			w.scanSecrets(secretValues(w.slack.Ephemerals(alice)))
			var calls []string
			for _, m := range []string{"chat.update", "chat.postMessage", "chat.postEphemeral"} {
				failed := 0
				for _, c := range w.slack.Calls(m) {
					if c.Error != "" {
						failed++
					}
				}
				calls = append(calls, fmt.Sprintf("%s %d calls (%d failed)", m, len(w.slack.Calls(m)), failed))
			}
			t.Logf("%s: %d PBX writes; %s; %d acks", f.name, len(w.pbx.Writes()), strings.Join(calls, ", "), len(w.slack.Acks()))
		})
	}
}

// deliverOnce sends one envelope and waits for its ack; it returns the envelope's ID.
func (w *world) deliverOnce(send func() (string, error)) string {
	w.t.Helper()
	id, err := send()
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.slack.WaitAck(w.ctx(), id); err != nil {
		w.t.Fatal(err)
	}
	return id
}

// pbxWriteCounts counts the PBX's accepted writes by method and path.
func pbxWriteCounts(w *world) map[string]int {
	out := map[string]int{}
	for _, c := range w.pbx.Writes() {
		out[c.Method+" "+c.Path]++
	}
	return out
}

// cardConverges waits until the card shows the incident's stored version and checks that its
// step sections are what the store renders now.
func (w *world) cardConverges(ts, id string) {
	w.t.Helper()
	var inc session.Incident
	w.waitFor("the card at the stored version", func() bool {
		inc = w.incident(id)
		return w.cardVersion(ts) == inc.Version
	})
	_, blocks := slackui.Card(inc, slackui.CardOptions{Now: time.Now(), ApprovalSteps: map[session.Step]bool{session.StepRestore: true},
		DenyPolicy: "Deny All"})
	b, err := json.Marshal(blocks)
	if err != nil {
		w.t.Fatal(err)
	}
	m, _ := w.slack.Message(incChan, ts)
	if d := cmp.Diff(stepSections(w.t, m.Blocks), stepSections(w.t, b)); d != "" {
		w.t.Errorf("the card's step sections differ from the store's rendering (-card +store):\n%s", d)
	}
}

// stepSections picks the blocks whose block_id names a step section ("s:…").
func stepSections(t testing.TB, raw []byte) []map[string]any {
	t.Helper()
	var all []map[string]any
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, b := range all {
		if id, _ := b["block_id"].(string); strings.HasPrefix(id, "s:") {
			out = append(out, b)
		}
	}
	if len(out) != len(session.Steps) {
		t.Errorf("%d step sections, want %d", len(out), len(session.Steps))
	}
	return out
}
