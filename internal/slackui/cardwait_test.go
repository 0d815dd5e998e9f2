package slackui

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
)

// A card post that does not get through in time keeps its incident (issue 9, "queue, never
// drop"): the opener is told once that it is open and its card follows, with the notice's Deny
// button, and the maintenance pass posts the card once. Only Slack refusing the card for good
// discards the incident.

// holdSlots takes n of ch's chat.postMessage slots in a's pacer, as the cards of a wave queued
// there before this one do, once Slack has answered a 429 (the pacer then paces the method at
// Slack's rate: countedRetry). drain ends the wait as time would: the wave's backlog has drained
// (a new bucket, full: giving each slot back with Reservation.Cancel restores only the last few).
func holdSlots(a *App, ch string, n int) (drain func()) {
	p := a.api.p
	p.saw429("chat.postMessage")
	p.mu.Lock()
	lim := p.channel(ch).lim
	p.mu.Unlock()
	for range n {
		lim.Reserve()
	}
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.channel(ch).lim = rate.NewLimiter(rate.Limit(postPerSecond), postBurst)
	}
}

// openAsAlice runs `/compromised 1001@acme.example` through app a, answered through its own
// response_url, as Slack sends it.
func (h *harness) openAsAlice(a *App) {
	h.t.Helper()
	a.command(h.ctx, &slack.SlashCommand{UserID: hAlice, ChannelID: hChan, Text: "1001@acme.example",
		ResponseURL: h.fake.CommandResponseURL(hChan, hAlice)})
}

// openIncident is the open incident of 1001@acme.example.
func (h *harness) openIncident() session.Incident {
	h.t.Helper()
	inc, err := h.store.FindOpen(h.ctx, "1001", "acme.example")
	if err != nil {
		h.t.Fatalf("the incident is not open: %v", err)
	}
	return inc
}

// cardsPosted counts the cards of inc in its channel (as posted, or updated since).
func (h *harness) cardsPosted(inc session.Incident) int {
	n := 0
	for _, m := range h.fake.Channel(hChan) {
		if m.User == "" && m.ThreadTS == "" && m.Method != "response_url" && strings.Contains(m.Text, "Compromised: "+inc.Key()+" (") {
			n++
		}
	}
	return n
}

// maintainAll runs a maintenance pass on every app at once (the replicas), and waits for the
// card posts they started.
func (h *harness) maintainAll() {
	var wg sync.WaitGroup
	for _, a := range h.apps {
		wg.Go(func() { a.maintainOnce(h.ctx) })
	}
	wg.Wait()
	for _, a := range h.apps {
		a.cards.wg.Wait()
	}
}

// maxPasses bounds passesUntil.
const maxPasses = 30

// passesUntil runs every replica's maintenance pass until done, at most maxPasses times, then
// three more, so that "exactly once" is checked against passes that come after the post. A pass
// may find the card's sync lock held at that instant (another replica's pass, which starts at
// the same moment here, or a sync) and leaves the card to the next pass, as in production: on a
// loaded machine three passes in a row could all collide.
func (h *harness) passesUntil(what string, done func() bool) {
	h.t.Helper()
	for i := 0; !done(); i++ {
		if i == maxPasses {
			h.t.Fatalf("%d maintenance passes did not %s", maxPasses, what)
		}
		h.maintainAll()
	}
	for range 3 {
		h.maintainAll()
	}
}

// checkCardFollows checks that the maintenance pass posts the card of inc, kept without one,
// exactly once, however many passes of how many replicas run.
func (h *harness) checkCardFollows(inc session.Incident) {
	h.t.Helper()
	if inc.MessageTS != "" || h.cardsPosted(inc) != 0 {
		h.t.Fatalf("the card was posted (ts %q): the test does not test a card that did not get through", inc.MessageTS)
	}
	h.clock.Advance(orphanCardAfter + time.Second)
	h.passesUntil("post the kept incident's card", func() bool { return h.get(inc.ID).MessageTS != "" })
	if n := h.cardsPosted(inc); n != 1 {
		h.t.Errorf("%d cards posted for the kept incident, want 1", n)
	}
}

// openerAnswers are the n answers alice got (fatal when she got another number).
func (h *harness) openerAnswers(n int) []slackfake.Message {
	h.t.Helper()
	answers := h.fake.Ephemerals(hAlice)
	if len(answers) != n {
		h.t.Fatalf("the opener got %d answers, want %d: %+v", len(answers), n, answers)
	}
	return answers
}

// checkKeptAnswer checks that answer, the opener's one answer, came by the command's
// response_url and says the incident is open and its card follows, with why and the Deny
// button (deny true) or not.
func checkKeptAnswer(t *testing.T, answer slackfake.Message, inc session.Incident, why string, deny bool) {
	t.Helper()
	all := answer.Text + string(answer.Blocks)
	for _, s := range []string{inc.ID, "is open", why, "card follows in", "when Slack allows (in about "} {
		if !strings.Contains(all, s) {
			t.Errorf("the opener's answer lacks %q:\n%s\n%s", s, answer.Text, answer.Blocks)
		}
	}
	if strings.Contains(all, "nothing was opened") || strings.Contains(all, "try again") {
		t.Errorf("the opener of a kept incident was told to try again: %s", all)
	}
	if got := strings.Contains(all, `"step:deny"`) && strings.Contains(all, `"value":"`+inc.ID+`"`); got != deny {
		t.Errorf("the answer has the Deny button: %v, want %v:\n%s", got, deny, answer.Blocks)
	}
	if answer.Method != "response_url" {
		t.Errorf("the answer came by %s, want the command's response_url", answer.Method)
	}
}

// TestCardSlotBeyondDeadlineKept: in a wave, a new card's slot in its channel is further away
// than its post may wait; the pacer fails the post at once. The incident stays open, its opener
// gets exactly one answer (the notice: open, the card follows, the Deny button), and once the
// backlog drains the maintenance pass posts the card once.
func TestCardSlotBeyondDeadlineKept(t *testing.T) {
	h := newHarness(t)
	h.fake.SetRateLimits(slackfake.SlackLimits())
	a := h.apps[0]
	a.cards.timeout = 5 * time.Second // jobTimeout, 5 min in production
	drain := holdSlots(a, hChan, 30)  // ≈ 30 s of cards ahead of this one
	h.openAsAlice(a)
	a.cards.wg.Wait()

	inc := h.openIncident()
	answers := h.openerAnswers(1)
	checkKeptAnswer(t, answers[0], inc, limitedWhy, true)

	// The notice's Deny works before the card exists, and the card shows what it did.
	h.noticeClick(a, answers[0], inc.ID)
	if cur := h.get(inc.ID); cur.Step(session.StepDeny).Status != session.StatusDone {
		t.Fatalf("after the notice's Deny, deny is %s", cur.Step(session.StepDeny).Status)
	}
	drain()
	h.checkCardFollows(h.get(inc.ID))
	if m, _ := h.fake.Message(hChan, h.get(inc.ID).MessageTS); !strings.Contains(m.Text, "deny done") {
		t.Errorf("the card posted later shows %q, not the deny done before it", m.Text)
	}
	if n := len(h.fake.Ephemerals(hAlice)); n != 1 {
		t.Errorf("the opener got %d answers in all, want 1", n)
	}
}

// noticeClick delivers alice's click on the Deny button of notice (an ephemeral message in
// hChan, which Slack names by its container) to app a.
func (h *harness) noticeClick(a *App, notice slackfake.Message, id string) {
	h.t.Helper()
	a.action(h.ctx, noticeDeny(notice, id, hAlice), false)
}

// noticeDeny is user's click on the Deny button of notice, for incident id, as Slack sends it.
func noticeDeny(notice slackfake.Message, id, user string) *slack.InteractionCallback {
	cb := &slack.InteractionCallback{Type: slack.InteractionTypeBlockActions, User: slack.User{ID: user},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: "step:deny", Value: id,
			BlockID: "s:deny:v1", ActionTs: "1700000000.000100"}}}}
	cb.Container.Type, cb.Container.IsEphemeral, cb.Container.ChannelID, cb.Container.MessageTs = "message", true, hChan, notice.TS
	return cb
}

// TestCardDeadlinePassesIn429s: the card's post waits out 429 after 429 until its bound
// passes. The opener got the notice at the first 429; now they are told once more that the
// incident is still open and its card follows, and the maintenance pass posts the card once
// Slack takes posts again.
func TestCardDeadlinePassesIn429s(t *testing.T) {
	h := newHarness(t)
	a := h.apps[0]
	a.cards.timeout = 2 * time.Second
	h.fake.RateLimit("chat.postMessage", 1_000_000, 1)
	h.openAsAlice(a)
	a.cards.wg.Wait()

	inc := h.openIncident()
	answers := h.openerAnswers(2) // the notice and one more
	checkKeptAnswer(t, answers[0], inc, limitedWhy, true)
	checkKeptAnswer(t, answers[1], inc, limitedWhy, false)
	h.fake.RateLimit("chat.postMessage", 0, 0)
	h.checkCardFollows(inc)
}

// TestCardPostCancelledByShutdownKept: a card post still waiting for its slot when the
// shutdown's grace ends is cancelled; the incident stays open, its opener (who has the notice)
// is told the card follows, and the next replica's maintenance pass posts it once.
func TestCardPostCancelledByShutdownKept(t *testing.T) {
	h := newHarness(t)
	a := h.apps[0]
	drain := holdSlots(a, hChan, 30) // its post waits ≈ 30 s, well within its bound
	defer drain()
	h.openAsAlice(a)
	h.waitFor("the notice", func() bool { return len(h.fake.Ephemerals(hAlice)) == 1 })
	a.cards.stop() // the grace is over

	inc := h.openIncident()
	answers := h.openerAnswers(2) // the notice and one more
	checkKeptAnswer(t, answers[0], inc, limitedWhy, true)
	checkKeptAnswer(t, answers[1], inc, restartingWhy, false)
	h.apps = h.apps[1:] // the next replica
	h.checkCardFollows(inc)
}

// TestCardFailureKeptOrDiscarded: how Slack's answer to a card post decides the incident's
// fate. Refused for good (the bot is not in the channel, a card Slack will never take): the
// incident is discarded and the opener told so, as before. Slack failing (a 5xx): the
// incident stays open, and the card follows once.
func TestCardFailureKeptOrDiscarded(t *testing.T) {
	cases := []struct {
		name string
		fail func(*slackfake.Server)
		kept bool
		want string // in the one answer
	}{
		{"not_in_channel", func(f *slackfake.Server) { f.FailMethod("chat.postMessage", "not_in_channel", 1) }, false, NotInChannelText("U0BOT")},
		{"msg_too_long", func(f *slackfake.Server) { f.FailMethod("chat.postMessage", "msg_too_long", 1) }, false,
			"I could not post the incident card (msg_too_long), so nothing was opened"},
		{"HTTP 503", func(f *slackfake.Server) { f.FailHTTP("chat.postMessage", 503, 1) }, true,
			"Slack did not take its card just now (http_503)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			c.fail(h.fake)
			h.openAsAlice(h.apps[0])
			h.apps[0].cards.wg.Wait()
			answers := h.fake.Ephemerals(hAlice)
			if len(answers) != 1 || !strings.Contains(answers[0].Text+string(answers[0].Blocks), c.want) {
				t.Fatalf("the opener's answers %+v, want one saying %q", answers, c.want)
			}
			if !c.kept {
				if _, err := h.store.FindOpen(h.ctx, "1001", "acme.example"); !errors.Is(err, session.ErrNotFound) {
					t.Fatalf("after Slack refused the card for good the incident is still open (%v)", err)
				}
				return
			}
			inc := h.openIncident()
			checkKeptAnswer(t, answers[0], inc, c.want, true)
			h.checkCardFollows(inc)
		})
	}
}

// TestMaintenancePassLeavesCardsWaiting: the maintenance pass hands a kept incident's card to
// a post of its own and goes on (resuming interrupted steps must not wait for a channel's
// backlog), one post per incident however many passes run; at a shutdown (the pass's context
// ends) the post stops waiting at once, without holding the grace, and the next replica's pass
// posts the card once.
func TestMaintenancePassLeavesCardsWaiting(t *testing.T) {
	h := newHarness(t)
	a := h.apps[0]
	a.cards.timeout = 5 * time.Second
	drain := holdSlots(a, hChan, 30)
	defer drain()
	h.openAsAlice(a)
	a.cards.wg.Wait()
	inc := h.openIncident()

	h.clock.Advance(orphanCardAfter + time.Second)
	serving, shutdown := context.WithCancel(h.ctx)
	for range 3 {
		a.maintainOnce(serving) // each returns while the card waits ≈ 30 s for its slot
	}
	a.cards.mu.Lock()
	busy := a.cards.busy[inc.ID]
	a.cards.mu.Unlock()
	if !busy || h.get(inc.ID).MessageTS != "" {
		t.Fatalf("after the passes the card post is waiting: %v, posted: %v; want waiting, not posted", busy, h.get(inc.ID).MessageTS != "")
	}
	shutdown()
	a.cards.wg.Wait() // without stop: the post ends with the pass's context
	h.apps = h.apps[1:]
	h.checkCardFollows(h.get(inc.ID))
	if n := len(h.fake.Ephemerals(hAlice)); n != 1 {
		t.Errorf("the opener got %d answers, want the notice only (the pass's posts answer nobody)", n)
	}
}

// TestFailingCardLeftAlone: a card the maintenance pass could not post (Slack failing) is not
// posted again by the next passes until cardRetry has passed: an outage does not become a
// post and a warning per incident every few seconds. Then it is posted, once.
func TestFailingCardLeftAlone(t *testing.T) {
	h := newHarness(t)
	h.apps = h.apps[:1]
	a := h.apps[0]
	h.fake.FailHTTP("chat.postMessage", 503, 2) // the opener's post, then the pass's first
	h.openAsAlice(a)
	a.cards.wg.Wait()
	inc := h.openIncident()
	h.clock.Advance(orphanCardAfter + time.Second)
	h.maintainAll()
	posts := len(h.fake.Calls("chat.postMessage"))
	if posts != 2 {
		t.Fatalf("%d chat.postMessage calls, want the opener's and the pass's", posts)
	}
	h.clock.Advance(cardRetry - 2*time.Second)
	h.maintainAll()
	if n := len(h.fake.Calls("chat.postMessage")); n != posts {
		t.Fatalf("the passes within cardRetry posted the failing card again (%d calls)", n-posts)
	}
	h.checkCardFollows(h.get(inc.ID)) // advances past cardRetry
}
