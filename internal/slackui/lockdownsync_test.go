package slackui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/lockdown"
	"github.com/compromised-responder/bot/internal/session"
)

// TestLockdownCardFollowsMembers: a member's change outside any fan-out (here its evidence
// arriving) re-renders the lockdown card (no reconciler runs in the harness); once the
// lockdown closes, neither app keeps anything of its card in memory.
func TestLockdownCardFollowsMembers(t *testing.T) {
	h := newHarness(t)
	app := h.apps[0]
	app.command(h.ctx, &slack.SlashCommand{UserID: hAlice, ChannelID: hChan, Text: "users 1001@acme.example"})
	app.cards.wg.Wait() // the card is posted off the worker
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

// heldOnOpen is the harness's Lockdowns, except that each Open hands the new lockdown's sync
// lock to held, as another replica's maintenance pass posting its card would hold it.
type heldOnOpen struct {
	Lockdowns
	store *session.Store
	held  chan *session.SyncLock
}

func (w *heldOnOpen) Open(ctx context.Context, r lockdown.OpenRequest) (session.Lockdown, error) {
	l, err := w.Lockdowns.Open(ctx, r)
	if err != nil {
		return l, err
	}
	// This app's own sync of the new lockdown may hold the lock for a moment: try again.
	for range 500 {
		lock, ok, err := w.store.TrySyncLock(ctx, l.ID)
		if err != nil {
			return l, fmt.Errorf("hold the sync lock of %s: %w", l.ID, err)
		}
		if ok {
			w.held <- lock
			return l, nil
		}
		<-time.After(10 * time.Millisecond)
	}
	return l, fmt.Errorf("the sync lock of %s stayed taken", l.ID)
}

// TestLockdownCardPostedElsewhere: when another replica holds the new lockdown's card lock
// for the opener's whole wait (its maintenance pass posts the card), the command still gets an
// answer, saying the lockdown is open and its card on the way; the lockdown stays open.
func TestLockdownCardPostedElsewhere(t *testing.T) {
	w := &heldOnOpen{held: make(chan *session.SyncLock, 1)}
	h := newHarnessCfg(t, func(c *Config) { w.Lockdowns = c.Lockdowns; c.Lockdowns = w })
	w.store = h.store
	h.apps[0].command(h.ctx, &slack.SlashCommand{UserID: hAlice, ChannelID: hChan, Text: "users 1001@acme.example"})
	h.apps[0].cards.wg.Wait() // the card's post, which waits for the lock and then answers
	var lock *session.SyncLock
	select {
	case lock = <-w.held:
	default:
		t.Fatalf("the sync lock was not held: alice's answers %+v", h.fake.Ephemerals(hAlice))
	}
	defer lock.Release(h.ctx)
	open, err := h.store.ListOpenLockdowns(h.ctx)
	if err != nil || len(open) != 1 || open[0].MessageTS != "" {
		t.Fatalf("lockdowns after the command: %+v, %v; want one, open, its card not posted here", open, err)
	}
	answers := h.fake.Ephemerals(hAlice)
	if len(answers) != 1 || !strings.Contains(answers[0].Text, "Lockdown "+open[0].ID+" is open; its card is being posted in this channel") {
		t.Errorf("alice's answers = %+v, want one: the lockdown open and its card on its way", answers)
	}
}
