package slacksocket

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// opens paces the client's calls of apps.connections.open (and the dials that follow), which all
// its connections share: Slack rate limits the app, not a connection, and a refusal (a 429, a
// Slack outage) is the same for each. So the connections open one at a time (turn), and a failure
// puts every connection's next open off by one backoff (failed), which a connection that worked
// resets. With one backoff per connection, N connections would call apps.connections.open N
// times as often after a 429 as one does.
type opens struct {
	slot chan struct{} // holds a token while a connection opens

	mu        sync.Mutex
	b         backoff
	notBefore time.Time // no open before this
}

func newOpens(b backoff) *opens { return &opens{slot: make(chan struct{}, 1), b: b} }

// turn waits until this connection may open (no other is opening, and the backoff is over), or
// ctx ends (its error); release ends the turn.
func (o *opens) turn(ctx context.Context) (release func(), err error) {
	select {
	case o.slot <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	release = func() { <-o.slot }
	for {
		o.mu.Lock()
		wait := time.Until(o.notBefore)
		o.mu.Unlock()
		if wait <= 0 {
			return release, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			release()
			return nil, ctx.Err()
		}
	}
}

// failed puts the next open off by the backoff's next step, or by err's Retry-After (a 429)
// when longer, and returns that wait. err may be nil (a connection that never worked).
func (o *opens) failed(err error) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	wait := o.b.next()
	if rl, ok := errors.AsType[*slack.RateLimitedError](err); ok {
		wait = max(wait, rl.RetryAfter)
	}
	if at := time.Now().Add(wait); at.After(o.notBefore) {
		o.notBefore = at
	}
	return wait
}

// worked resets the backoff: a connection said hello.
func (o *opens) worked() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b.reset()
}

// backoff is an exponential wait (slack-go's: from initial, doubling, at most max), with a
// little jitter so replicas that lost Slack together do not all come back in the same instant.
type backoff struct {
	initial, max time.Duration
	attempts     int
}

func (b *backoff) next() time.Duration {
	d := b.max
	if b.attempts < 30 {
		d = min(b.initial<<b.attempts, b.max)
	}
	b.attempts++
	return d + rand.N(d/10+1)
}

func (b *backoff) reset() { b.attempts = 0 }
