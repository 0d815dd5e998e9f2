package slackui

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// The pacer keeps this process's Web API calls at Slack's published limits
// (https://api.slack.com/apis/rate-limits) once Slack shows it enforces them, so calls wait here
// instead of drawing 429 after 429:
//
//   - chat.postMessage: "one message per second per channel" with short bursts; thread replies
//     count against their channel.
//   - chat.update: Tier 3 (50+ per minute, workspace-wide for the app).
//   - chat.postEphemeral: Tier 4 (100+ per minute).
//
// A method is paced for pacedFor after its last 429 (countedRetry reports each): Slack's limits
// are "N+ per minute", often more in practice, so the bot runs at whatever Slack accepts until
// Slack says no, then at the documented rate. Each rate is a token bucket
// (golang.org/x/time/rate) refilled 5 % below Slack's figure, so jitter between two calls does
// not turn into a 429. The 429s themselves are waited out by slack-go's own Retry-After retry
// (retryOption).
//
// In a channel, card posts go first: a thread reply is sent only when no card waits for the
// channel and, when paced, a token is free right now (tryReply); otherwise the thread sync
// leaves its lines for later, when they are posted together (syncThread), and while cards wait a
// sync with only lines to post holds them for about the channel's backlog (syncIncident). So a
// burst of incidents gets its cards at the channel's full rate and the audit lines follow,
// batched. A card whose slot is far off (or that draws a 429) tells its opener at once, with the
// card's Deny button (postWatch, openernotice.go): containing the user does not wait for the card.
type pacer struct {
	mu       sync.Mutex
	channels map[string]*channelPace
	update   *rate.Limiter
	eph      *rate.Limiter
	until    map[string]time.Time // method → paced until
}

// pacedFor is how long a method stays paced after its last 429.
const pacedFor = time.Minute

// saw429 paces method from now on, for pacedFor.
func (p *pacer) saw429(method string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.until[method] = time.Now().Add(pacedFor)
}

// paced reports whether method is paced now; p.mu must be held.
func (p *pacer) pacedLocked(method string) bool {
	return time.Now().Before(p.until[method])
}

func (p *pacer) paced(method string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pacedLocked(method)
}

type channelPace struct {
	lim   *rate.Limiter
	cards int // card posts waiting for this channel or being sent
}

// errPaced says a low-priority call was not sent now, to keep the channel's rate for cards.
var errPaced = errors.New("slack channel busy: posted later")

const (
	postPerSecond   = 0.95 // chat.postMessage per channel
	postBurst       = 3    // slackfake's reading of Slack's "short bursts" (the stricter one)
	updatePerMinute = 47.5 // Tier 3 less 5 %
	updateBurst     = 10
	ephPerMinute    = 95 // Tier 4 less 5 %
	ephBurst        = 20
)

func newPacer() *pacer {
	return &pacer{
		channels: map[string]*channelPace{},
		update:   rate.NewLimiter(rate.Limit(updatePerMinute/60), updateBurst),
		eph:      rate.NewLimiter(rate.Limit(ephPerMinute/60), ephBurst),
		until:    map[string]time.Time{},
	}
}

func (p *pacer) channel(ch string) *channelPace {
	c := p.channels[ch]
	if c == nil {
		c = &channelPace{lim: rate.NewLimiter(rate.Limit(postPerSecond), postBurst)}
		p.channels[ch] = c
	}
	return c
}

// post waits for a chat.postMessage slot in ch (cards, replies to a user, approval requests:
// what someone waits for). done must be called when the call has been sent.
func (p *pacer) post(ctx context.Context, ch string) (done func(), err error) {
	if p == nil {
		return func() {}, nil
	}
	p.mu.Lock()
	c := p.channel(ch)
	c.cards++
	paced := p.pacedLocked("chat.postMessage")
	p.mu.Unlock()
	done = func() {
		p.mu.Lock()
		c.cards--
		p.mu.Unlock()
	}
	if !paced {
		return done, nil
	}
	if err := waitSlot(ctx, c.lim); err != nil {
		done()
		return nil, err
	}
	return done, nil
}

// waitSlot is lim.Wait(ctx), with the wait told to the post's watch (postWatch) first: a card
// that waits here long can be answered for at once (openernotice.go).
func waitSlot(ctx context.Context, lim *rate.Limiter) error {
	r := lim.Reserve()
	d := r.Delay()
	if d <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		r.Cancel()
		return slotTooFar{d}
	}
	watched(ctx, d, false)
	if err := sleepCtx(ctx, d); err != nil {
		r.Cancel()
		return err
	}
	return nil
}

// slotTooFar is waitSlot's error when the channel's next slot is beyond the post's deadline:
// the post fails at once rather than wait for nothing. It is the context's deadline (Unwrap),
// and says how far the slot was, which the card post tells the opener (cardpost.go).
type slotTooFar struct{ wait time.Duration }

func (e slotTooFar) Error() string {
	return fmt.Sprintf("%v: the next chat.postMessage slot is in %s", context.DeadlineExceeded, e.wait.Round(time.Millisecond))
}

func (e slotTooFar) Unwrap() error { return context.DeadlineExceeded }

// sleepCtx waits d, or until ctx ends (its error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backlog is about how long a card post asked for now in ch waits for its slot: the card posts
// waiting there, at the channel's rate once paced.
func (p *pacer) backlog(ch string) time.Duration {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.pacedLocked("chat.postMessage") {
		return 0
	}
	return time.Duration(float64(p.channel(ch).cards) / postPerSecond * float64(time.Second))
}

// postWatch is told, through a post's context (withPostWatch), how the post fares with
// Slack's limits: each wait for a paced slot (refused false), and each 429 (refused true,
// wait the Retry-After). A watched post is not retried by the client on a 429 (countedRetry):
// its caller renders it again and sends it itself, so what is posted is what is newest then.
type postWatch func(wait time.Duration, refused bool)

type postWatchKey struct{}

func withPostWatch(ctx context.Context, w postWatch) context.Context {
	return context.WithValue(ctx, postWatchKey{}, w)
}

// watched tells ctx's postWatch, if any, of a wait; it reports whether there was one.
func watched(ctx context.Context, wait time.Duration, refused bool) bool {
	w, ok := ctx.Value(postWatchKey{}).(postWatch)
	if ok && w != nil {
		w(wait, refused)
	}
	return ok && w != nil
}

// tryReply takes a chat.postMessage slot in ch for a thread line only if no card waits for the
// channel and a slot is free now; errPaced otherwise.
func (p *pacer) tryReply(ch string) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.channel(ch)
	if c.cards > 0 || (p.pacedLocked("chat.postMessage") && !c.lim.Allow()) {
		return errPaced
	}
	return nil
}

// cardsWaiting reports whether card posts wait for ch (or are being sent): tryReply refuses a
// thread line there now.
func (p *pacer) cardsWaiting(ch string) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.channels[ch]
	return c != nil && c.cards > 0
}

// waitUpdate waits for a chat.update slot.
func (p *pacer) waitUpdate(ctx context.Context) error {
	if p == nil {
		return nil
	}
	if !p.paced("chat.update") {
		return nil
	}
	return paceErr(ctx, p.update.Wait(ctx))
}

// waitEphemeral waits for a chat.postEphemeral slot.
func (p *pacer) waitEphemeral(ctx context.Context) error {
	if p == nil {
		return nil
	}
	if !p.paced("chat.postEphemeral") {
		return nil
	}
	return paceErr(ctx, p.eph.Wait(ctx))
}

// pacedRetry is how soon a thread sync that yielded its channel to cards tries again, and
// maxPacedHold the longest a sync waits for a channel's cards before looking again (backlog is
// an estimate).
const (
	pacedRetry   = time.Second
	maxPacedHold = 10 * time.Second
)

// paceErr classifies a failed wait as the context's: it ended, or waiting would pass its
// deadline (rate.Limiter.Wait says so at once, in an error of its own).
func paceErr(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
}
