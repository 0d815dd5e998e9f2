package slackui

import (
	"context"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// channelInfoTTL is how long a channel the bot was found a member of is taken as such without
// asking Slack again. conversations.info is Tier 3 (50+ per minute): a burst of opens in one
// channel would otherwise spend that on one answer. A stale "member" costs nothing: the card
// post then fails with not_in_channel and the open is undone and answered as before.
const channelInfoTTL = time.Minute

// channelInfos caches conversations.info for the open path, and shares one call among the opens
// that ask for one channel at once. Hand-written (a map, a mutex, a channel per call in flight)
// as the module has no singleflight/cache dependency and this is all it needs. Only answers
// that let an open go on (a member, not a DM) are kept; refusals and errors are asked again.
type channelInfos struct {
	mu sync.Mutex
	m  map[string]*channelEntry
}

type channelEntry struct {
	done chan struct{} // closed when ch/err are set
	ch   *slack.Channel
	err  error
	at   time.Time
}

func newChannelInfos() *channelInfos { return &channelInfos{m: map[string]*channelEntry{}} }

// get returns the channel's info, from the cache when fresh, else from fetch (one call for all
// who ask meanwhile).
func (c *channelInfos) get(ctx context.Context, id string, now time.Time, fetch func(context.Context) (*slack.Channel, error)) (*slack.Channel, error) {
	c.mu.Lock()
	e := c.m[id]
	if e != nil {
		select {
		case <-e.done:
			if now.Sub(e.at) >= channelInfoTTL {
				e = nil // stale: ask again
			}
		default: // in flight: wait for it below
		}
	}
	if e == nil {
		e = &channelEntry{done: make(chan struct{}), at: now}
		c.m[id] = e
		c.mu.Unlock()
		e.ch, e.err = fetch(ctx)
		keep := e.err == nil && e.ch != nil && e.ch.IsMember && !e.ch.IsIM && !e.ch.IsMpIM
		c.mu.Lock()
		if !keep && c.m[id] == e {
			delete(c.m, id)
		}
		c.mu.Unlock()
		close(e.done)
		return e.ch, e.err
	}
	c.mu.Unlock()
	select {
	case <-e.done:
		return e.ch, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// channelForOpen is conversations.info of the channel an incident is opened in, cached.
func (a *App) channelForOpen(ctx context.Context, id string) (*slack.Channel, error) {
	return a.channels.get(ctx, id, a.now(), func(ctx context.Context) (*slack.Channel, error) {
		return a.api.channelInfo(ctx, id)
	})
}
