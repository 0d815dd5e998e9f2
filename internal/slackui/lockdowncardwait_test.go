package slackui

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
)

// TestLockdownCardFailureKeptOrDiscarded: a lockdown whose card Slack did not take in time (a
// 5xx here; a wave's backlog or a shutdown alike) stays open with its members, its opener is
// told once that its card follows (not "try again"), and the maintenance pass posts the card
// once; a card Slack refuses for good (not_in_channel) still discards the lockdown.
func TestLockdownCardFailureKeptOrDiscarded(t *testing.T) {
	cases := []struct {
		name string
		fail func(*slackfake.Server)
		kept bool
		want string // in the one answer; for a kept lockdown, why its card waits
	}{
		{"HTTP 503", func(f *slackfake.Server) { f.FailHTTP("chat.postMessage", 503, 1) }, true,
			"Slack did not take its card just now (http_503)"},
		{"not_in_channel", func(f *slackfake.Server) { f.FailMethod("chat.postMessage", "not_in_channel", 1) }, false,
			"I could not post the lockdown card (not_in_channel), so nothing was opened"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			c.fail(h.fake)
			h.apps[0].command(h.ctx, &slack.SlashCommand{UserID: hAlice, ChannelID: hChan, Text: "users 1001@acme.example",
				ResponseURL: h.fake.CommandResponseURL(hChan, hAlice)})
			h.apps[0].cards.wg.Wait() // the card is posted off the worker
			answers := h.fake.Ephemerals(hAlice)
			if len(answers) != 1 || !strings.Contains(answers[0].Text, c.want) {
				t.Fatalf("the opener's answers %+v, want one saying %q", answers, c.want)
			}
			open, err := h.store.ListOpenLockdowns(h.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !c.kept {
				if len(open) != 0 {
					t.Fatalf("after Slack refused the card for good the lockdown is still open: %+v", open)
				}
				if _, err := h.store.FindOpen(h.ctx, "1001", "acme.example"); !errors.Is(err, session.ErrNotFound) {
					t.Fatalf("its member is still open (%v)", err)
				}
				return
			}
			l := h.keptLockdown()
			checkKeptLockdownAnswer(t, answers, l, c.want)
			h.checkLockdownCardFollows(l)
		})
	}
}

// lockdownCards counts the cards of lockdown id in its channel (as posted, or updated since).
func (h *harness) lockdownCards(id string) int {
	n := 0
	for _, m := range h.fake.Channel(hChan) {
		// A message of the channel as posted or updated since, not an answer to someone.
		if m.User == "" && m.ThreadTS == "" && m.Method != "response_url" && strings.Contains(m.Text, " "+id+":") {
			n++
		}
	}
	return n
}

// checkLockdownCardFollows checks that the maintenance pass posts the card of l, kept without
// one, exactly once, however many passes of how many replicas run.
func (h *harness) checkLockdownCardFollows(l session.Lockdown) {
	h.t.Helper()
	if l.MessageTS != "" || h.lockdownCards(l.ID) != 0 {
		h.t.Fatalf("the card of %s was posted (ts %q): the test does not test a card that did not get through", l.ID, l.MessageTS)
	}
	h.clock.Advance(orphanCardAfter + time.Second)
	h.passesUntil("post the kept lockdown's card", func() bool {
		got, err := h.store.GetLockdown(h.ctx, l.ID)
		return err == nil && got.MessageTS != ""
	})
	if n := h.lockdownCards(l.ID); n != 1 {
		h.t.Errorf("%d cards posted for %s, want 1", n, l.ID)
	}
}

// keptLockdown is the one open lockdown, with its member open and no card (fatal otherwise).
func (h *harness) keptLockdown() session.Lockdown {
	h.t.Helper()
	open, err := h.store.ListOpenLockdowns(h.ctx)
	if err != nil || len(open) != 1 || open[0].MessageTS != "" || len(open[0].Members) != 1 {
		h.t.Fatalf("open lockdowns: %+v, %v; want one, with its member and no card", open, err)
	}
	if m := open[0].Members[0]; !h.memberOpen(m) {
		h.t.Fatalf("its member %+v is not open", m)
	}
	return open[0]
}

// memberOpen reports whether m's incident is the open one of its user.
func (h *harness) memberOpen(m session.Member) bool {
	inc, err := h.store.FindOpen(h.ctx, m.User, m.Domain)
	return err == nil && inc.ID == m.IncidentID
}

// cardsWaiting is how many card posts wait for ch's slot in a's pacer (or are being sent).
func cardsWaiting(a *App, ch string) int {
	p := a.api.p
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.channel(ch).cards
}

// checkKeptLockdownAnswer checks that answers are one, saying lockdown l is open, why its card
// waits (why, as cardDelay reads the failure), that it follows and about when, not to try again.
func checkKeptLockdownAnswer(t *testing.T, answers []slackfake.Message, l session.Lockdown, why string) {
	t.Helper()
	if len(answers) != 1 {
		t.Fatalf("the opener got %d answers, want 1: %+v", len(answers), answers)
	}
	for _, s := range []string{"Lockdown " + l.ID + " is open. " + why + ", so its card follows in this channel",
		"(in about ", "/compromised status " + l.ID} {
		if !strings.Contains(answers[0].Text, s) {
			t.Errorf("the answer lacks %q: %s", s, answers[0].Text)
		}
	}
	if strings.Contains(answers[0].Text, "try again") || strings.Contains(answers[0].Text, "nothing was opened") {
		t.Errorf("the opener of a kept lockdown was told to try again: %s", answers[0].Text)
	}
}

// TestLockdownCardWaitLeavesWorker (issue 9, "queue, never drop"): with one queue worker, a new
// lockdown's card waiting for its channel's slot (a wave's cards ahead of it) does not hold the
// worker: an incident opened after it in the same channel gets its notice, and the notice's
// Deny, sent through the queue too, runs to done while the lockdown's card still waits.
func TestLockdownCardWaitLeavesWorker(t *testing.T) {
	h := newHarness(t)
	a := h.apps[0]
	drain := holdSlots(a, hChan, 60) // ≈ 1 min of cards ahead, well within the post's bound (jobTimeout)
	defer drain()
	a.queue.start(h.ctx, 1, a.work)
	defer a.cards.stop()
	submit := func(id string, j job) {
		t.Helper()
		j.envelopeID = id
		if !a.queue.submit(j.lane(), j) {
			t.Fatalf("the queue refused %s", id)
		}
	}
	submit("lockdown", job{command: &slack.SlashCommand{UserID: hBob, ChannelID: hChan, Text: "users 1001@acme.example",
		ResponseURL: h.fake.CommandResponseURL(hChan, hBob)}})
	submit("open", job{command: &slack.SlashCommand{UserID: hAlice, ChannelID: hChan, Text: "1002@acme.example",
		ResponseURL: h.fake.CommandResponseURL(hChan, hAlice)}})
	h.waitFor("the incident's notice (its card waits behind the lockdown's)", func() bool { return len(h.fake.Ephemerals(hAlice)) == 1 })
	inc, err := h.store.FindOpen(h.ctx, "1002", "acme.example")
	if err != nil {
		t.Fatalf("the incident is not open: %v", err)
	}
	submit("deny", job{callback: noticeDeny(h.fake.Ephemerals(hAlice)[0], inc.ID, hAlice)})
	h.waitFor("the notice's deny done", func() bool { cur := h.get(inc.ID); return cur.Step(session.StepDeny).Status == session.StatusDone })

	l := h.keptLockdown()
	// Both posts reach the channel's pacer in the background: on a loaded machine the lockdown's
	// may still be on its way there.
	h.waitFor("both card posts waiting for the channel (the lockdown's, the incident's)", func() bool { return cardsWaiting(a, hChan) == 2 })
	if len(h.fake.Ephemerals(hBob)) != 0 || h.lockdownCards(l.ID) != 0 {
		t.Fatalf("the lockdown's opener got %+v, its card was posted %d times; want no answer and no card yet",
			h.fake.Ephemerals(hBob), h.lockdownCards(l.ID))
	}
	a.queue.close()
	if !a.queue.wait(h.ctx) {
		t.Fatal("the queue did not drain")
	}
	if h.lockdownCards(l.ID) != 0 {
		t.Fatal("the lockdown's card was posted before its slot")
	}
}

// TestLockdownCardPostCancelledByShutdownKept: a lockdown's card post still waiting for its slot
// when the shutdown's grace ends (cardPosts.stop) is cancelled: the lockdown stays open with its
// members, its opener is told once that its card follows, and the next replica's maintenance
// pass posts the card once.
func TestLockdownCardPostCancelledByShutdownKept(t *testing.T) {
	h := newHarness(t)
	a := h.apps[0]
	drain := holdSlots(a, hChan, 30) // its post waits ≈ 30 s, well within its bound
	defer drain()
	a.command(h.ctx, &slack.SlashCommand{UserID: hAlice, ChannelID: hChan, Text: "users 1001@acme.example",
		ResponseURL: h.fake.CommandResponseURL(hChan, hAlice)})
	h.waitFor("the card's post waiting for its slot", func() bool { return cardsWaiting(a, hChan) == 1 })
	a.cards.stop() // the grace is over

	l := h.keptLockdown()
	checkKeptLockdownAnswer(t, h.fake.Ephemerals(hAlice), l, restartingWhy)
	h.apps = h.apps[1:] // the next replica
	h.checkLockdownCardFollows(l)
	if n := len(h.fake.Ephemerals(hAlice)); n != 1 {
		t.Errorf("the opener got %d answers in all, want 1", n)
	}
}

// TestLockdownCardSlotBeyondBoundKept: in a wave, a new lockdown's slot in its channel is
// further away than its card's post may wait (cardPosts.timeout); the post fails at once. The
// lockdown stays open, its opener is told once that its card follows, and once the backlog
// drains the maintenance pass posts the card once.
func TestLockdownCardSlotBeyondBoundKept(t *testing.T) {
	h := newHarness(t)
	a := h.apps[0]
	a.cards.timeout = 5 * time.Second // jobTimeout, 5 min in production
	drain := holdSlots(a, hChan, 30)  // ≈ 30 s of cards ahead of this one
	a.command(h.ctx, &slack.SlashCommand{UserID: hAlice, ChannelID: hChan, Text: "users 1001@acme.example",
		ResponseURL: h.fake.CommandResponseURL(hChan, hAlice)})
	a.cards.wg.Wait()

	l := h.keptLockdown()
	checkKeptLockdownAnswer(t, h.fake.Ephemerals(hAlice), l, limitedWhy)
	drain()
	h.checkLockdownCardFollows(l)
	if n := len(h.fake.Ephemerals(hAlice)); n != 1 {
		t.Errorf("the opener got %d answers in all, want 1", n)
	}
}
