package slackui

import (
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/session"
)

// TestLockdownCardFollowsMembers: a member's change outside any fan-out (here its evidence
// arriving) re-renders the lockdown card (no reconciler runs in the harness); once the
// lockdown closes, neither app keeps anything of its card in memory.
func TestLockdownCardFollowsMembers(t *testing.T) {
	h := newHarness(t)
	app := h.apps[0]
	app.command(h.ctx, &slack.SlashCommand{UserID: hAlice, ChannelID: hChan, Text: "users 1001@acme.example"})
	open, err := h.store.ListOpenLockdowns(h.ctx)
	if err != nil || len(open) != 1 || open[0].MessageTS == "" {
		t.Fatalf("lockdowns after the command: %+v, %v", open, err)
	}
	l := open[0]
	cardShows := func(what string) {
		t.Helper()
		h.waitFor("the lockdown card to show "+what, func() bool {
			h.clock.Advance(LockdownCardEvery) // the cards' coalescing runs on the harness clock
			m, ok := h.fake.Message(hChan, l.MessageTS)
			return ok && strings.Contains(string(m.Blocks), what)
		})
	}
	// Let the open's own updates settle (none scheduled), so only the member's change can
	// bring the evidence to the card.
	h.waitFor("the open's card updates to settle", func() bool {
		h.clock.Advance(LockdownCardEvery)
		_, sa := remembered(h.apps[0].lockdownCards)
		_, sb := remembered(h.apps[1].lockdownCards)
		return sa+sb == 0
	})
	id := l.Members[0].IncidentID
	if _, err := h.store.Update(h.ctx, id, func(inc *session.Incident) error {
		inc.Evidence = &session.Evidence{Phase: "containment", ReadAt: h.clock.Now(), Calls24h: 7, International: 2,
			Cost: 3.5, Currency: "USD"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	app.changes.Changed(h.ctx, id) // as the engine's evidence read notifies the member's incident
	cardShows("(last 24 h, 1 of 1 users read) · 7 calls")

	h.click(0, hAlice, "lockdown:abort", l.ID)
	cardShows("Closed lockdown (aborted)")
	h.waitFor("both apps to forget the closed lockdown's card", func() bool {
		h.clock.Advance(time.Second)
		la, sa := remembered(h.apps[0].lockdownCards)
		lb, sb := remembered(h.apps[1].lockdownCards)
		return la+sa+lb+sb == 0
	})
}

// remembered is how many lockdown cards c keeps a last render of, and how many have an update
// scheduled.
func remembered(c *lockdownCards) (last, scheduled int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.last), len(c.scheduled)
}
