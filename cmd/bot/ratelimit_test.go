package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/slackfake"
)

// stormLimits are stricter than Slack's (and than the bot's own pacer), so calls draw 429s
// that the bot has to wait out: a 429 storm.
func stormLimits() map[string]slackfake.Limit {
	l := slackfake.SlackLimits()
	l["chat.postMessage"] = slackfake.Limit{PerMinute: 60, Burst: 1, PerChannel: true}
	l["chat.update"] = slackfake.Limit{PerMinute: 30, Burst: 1}
	return l
}

// TestRateLimitStorm: a burst of incidents in one channel under a 429 storm gets every card and
// every update posted, none lost, and makes exactly the PBX writes of the same burst without
// limits: Slack's limits delay cards, never PBX work.
func TestRateLimitStorm(t *testing.T) {
	free := newRig(t, 8, nil)
	free.start()
	if base := free.incidentBurst(free.targets[:4], burstDeadline); base.contained != 4 {
		t.Fatalf("without limits only %d of 4 contained", base.contained)
	} else if base.notices != 0 || base.viaCard != 4 {
		t.Errorf("without limits: %d notices, %d Deny clicks on the card; want 0 and 4", base.notices, base.viaCard)
	}

	r := newRig(t, 8, stormLimits())
	r.start()
	got := r.incidentBurst(r.targets[:4], burstDeadline)

	if got.slack429 == 0 {
		t.Fatal("no 429 in the storm: the test does not test it")
	}
	if got.cards != 4 || got.contained != 4 || got.pbxDenied != 4 || got.extraCards != 0 {
		t.Errorf("under the storm: %d cards (%d extra), %d contained, %d denied on the PBX; want 4 each, none extra",
			got.cards, got.extraCards, got.contained, got.pbxDenied)
	}
	if got.viaNotice+got.viaCard != 4 {
		t.Errorf("under the storm: %d Deny clicks on notices and %d on cards, want 4 in all", got.viaNotice, got.viaCard)
	}
	if w, g := pbxWrites(free), pbxWrites(r); !slices.Equal(w, g) {
		t.Errorf("PBX writes differ under the storm:\n got %q\nwant %q", g, w)
	}
	for _, inc := range got.incidents {
		i, err := r.store.FindOpen(context.Background(), inc.user, inc.domain)
		if err != nil {
			t.Fatalf("%s: %v", inc.target, err)
		}
		// The newest version of every incident reaches its card, and its whole audit its thread.
		r.cardNewest(inc.ts, i.ID)
		lines := r.threadComplete(i.ID)
		entries, err := r.store.Audit(context.Background(), i.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !slices.ContainsFunc(lines, func(m slackfake.Message) bool { return strings.Contains(m.Text, actionWords(e.Action)) }) {
				t.Errorf("%s: audit %q missing from the thread", i.ID, e.Action)
			}
		}
		if posts := len(r.slack.Thread(i.Channel, i.MessageTS)); posts > len(entries) {
			t.Errorf("%s: %d thread posts for %d audit lines", i.ID, posts, len(entries))
		}
	}
}

// actionWords is how AuditLine spells an action ("step.deny.done" → "step deny done").
func actionWords(action string) string {
	return strings.Join(strings.Fields(strings.NewReplacer(".", " ", "_", " ").Replace(action)), " ")
}

// pbxWrites are a rig's PBX writes as method, path and body, sorted (the incidents of a burst
// run in any order).
func pbxWrites(r *rig) []string {
	var out []string
	for _, c := range r.sim.Writes() {
		out = append(out, c.Method+" "+c.Path+" "+string(c.Body))
	}
	slices.Sort(out)
	return out
}

// cardNewest waits until the card at ts shows the newest version of incident id: its block_ids
// carry that version, or the card is still the one posted (never updated) and carries the
// version just before, when recording the card's ts was the only change since it was rendered
// (a card posted late shows everything before it, and the bot does not update it for its own ts).
func (w *world) cardNewest(ts, id string) {
	w.t.Helper()
	w.waitFor("card "+ts+" to show the newest version of "+id, func() bool {
		v := w.incident(id).Version
		m, ok := w.slack.Message(incChan, ts)
		switch {
		case !ok:
			return false
		case strings.Contains(string(m.Blocks), fmt.Sprintf(`"x:v%d"`, v)):
			return true
		}
		return m.Method == "chat.postMessage" && strings.Contains(string(m.Blocks), fmt.Sprintf(`"x:v%d"`, v-1))
	})
}
