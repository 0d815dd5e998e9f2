package slackui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/session"
)

// cardPosts runs the first post of each new incident's card off the queue worker that opened
// it: the post waits for its channel's chat.postMessage slot (one per second per channel, see
// pacer.go) or a 429, and a queue worker held by that wait could not run other incidents' PBX
// work (their Deny clicks). Their number is bounded by the incidents being opened, so a
// goroutine each is enough.
type cardPosts struct {
	wg     sync.WaitGroup
	ctx    context.Context // ended by stop, when the shutdown grace is over
	cancel context.CancelFunc
}

func newCardPosts() *cardPosts {
	ctx, cancel := context.WithCancel(context.Background())
	return &cardPosts{ctx: ctx, cancel: cancel}
}

// wait returns when every card post has ended, or false when ctx ends first.
func (p *cardPosts) wait(ctx context.Context) bool {
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// stop ends the posts still waiting and waits for them.
func (p *cardPosts) stop() {
	p.cancel()
	p.wg.Wait()
}

// postCardLater posts the card of the incident c just opened, in the background, logging
// with the job's logger (jobCtx's).
func (a *App) postCardLater(jobCtx context.Context, c *slack.SlashCommand, inc session.Incident) {
	log := a.logger(jobCtx)
	a.cards.wg.Go(func() {
		ctx, cancel := context.WithTimeout(log.WithContext(a.cards.ctx), jobTimeout)
		defer cancel()
		a.postOpenCard(ctx, c, inc)
	})
}

// postOpenCard posts the card, records its ts and starts its sync; when Slack refuses the card
// the incident is discarded again (nothing may stay open without a card) and the user told why.
//
// The post holds the incident's sync lock, so that the maintenance pass, which posts the card of an
// open incident that has none (its opener died between the open and the post, see
// postOrphanCards), leaves a live post alone.
func (a *App) postOpenCard(ctx context.Context, c *slack.SlashCommand, inc session.Incident) {
	lock, release := a.holdSyncLock(ctx, inc.ID)
	defer release()
	posted, text, blocks, ts, err := a.sendOpenCard(ctx, c, inc)
	if err != nil {
		a.cardRefused(ctx, c, inc, err)
		return
	}
	var rec session.Incident
	for attempt := 0; ; attempt++ {
		rec, err = a.eng.SetCard(ctx, inc.ID, c.ChannelID, ts)
		if err == nil || attempt == 2 || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		a.logger(ctx).Error().Err(err).Str("incident", inc.ID).Msg("record the card's ts: the maintenance pass posts it again")
	} else {
		a.cardShows(ctx, lock, posted, rec, text, blocks)
	}
	release() // before the sync, which takes the lock
	a.changes.Changed(ctx, inc.ID)
}

// sendOpenCard posts the card of inc, just opened by c, and returns the incident as posted, the
// card as sent and its ts. When Slack limits the channel, so the card waits noticeably for its
// slot (noticeAfter) or draws a 429, the opener gets the notice with the card's Deny button at
// once (openernotice.go), and the card is rendered again after every wait from the incident as
// stored then: it shows what a click on the notice did meanwhile (the deny, contained), and the
// devices read since the open. A 429 is waited out (its Retry-After) and the post sent again;
// Slack posted nothing, so this never makes a second card. The job's timeout bounds it.
func (a *App) sendOpenCard(ctx context.Context, c *slack.SlashCommand, inc session.Incident) (posted session.Incident, text string, blocks []slack.Block, ts string, err error) {
	var noticed, waited bool
	watch := func(wait time.Duration, refused bool) {
		waited = true
		if !noticed && (refused || wait >= noticeAfter) {
			noticed = true
			a.noticeOpener(ctx, c, inc, max(wait, a.api.p.backlog(c.ChannelID)))
		}
	}
	pctx := withPostWatch(ctx, watch) // the watch runs on this goroutine: the pacer's wait, the client's 429
	done, err := a.api.p.post(pctx, c.ChannelID)
	if err != nil {
		return inc, "", nil, "", a.api.fail("chat.postMessage", err)
	}
	defer done()
	posted = inc
	for {
		if waited {
			if cur, gerr := a.store.Get(ctx, inc.ID); gerr == nil {
				posted = cur
			} else {
				a.logger(ctx).Warn().Err(gerr).Str("incident", inc.ID).Msg("read the incident before its card post; posting it as opened")
			}
		}
		text, blocks = Card(posted, a.cardOptions(a.now()))
		ts, err = a.api.send(pctx, c.ChannelID, "", text, blocks)
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) || ctx.Err() != nil {
			return posted, text, blocks, ts, err
		}
		if err := sleepCtx(ctx, max(rl.RetryAfter, time.Second)); err != nil {
			return posted, text, blocks, "", a.api.fail("chat.postMessage", err)
		}
	}
}

// cardRefused ends an open whose card Slack did not take (err): the incident is discarded and
// the opener told that nothing was opened. An incident a click on the opener's notice already
// acted on is kept, not discarded (the store refuses: the deny's record must stay): the
// maintenance pass posts its card (postOrphanCards), and the opener is told so.
func (a *App) cardRefused(ctx context.Context, c *slack.SlashCommand, inc session.Incident, err error) {
	code := slackCode(err)
	derr := a.eng.Discard(context.WithoutCancel(ctx), inc.ID)
	if errors.Is(derr, session.ErrStarted) {
		a.logger(ctx).Warn().Err(err).Str("incident", inc.ID).Msg("post card of an incident already acted on: the maintenance pass posts it")
		a.replyCommand(ctx, c, "⚠️ Slack has not taken the card of "+esc(inc.ID)+" yet ("+esc(code)+"). The incident stays open as it is, and its card follows in this channel.", nil)
		return
	}
	if derr != nil {
		a.logger(ctx).Warn().Err(derr).Str("incident", inc.ID).Msg("discard incident after a failed card post")
	}
	switch code {
	case "not_in_channel", "channel_not_found":
		a.replyCommand(ctx, c, NotInChannelText(a.botUserID), nil)
	default:
		a.logger(ctx).Warn().Err(err).Str("incident", inc.ID).Msg("post card")
		a.replyCommand(ctx, c, "⚠️ I could not post the incident card ("+esc(code)+"), so nothing was opened. Please try again.", nil)
	}
}

// holdSyncLock takes the incident's sync lock and renews it until release is called (idempotent).
// Without the lock (another holder, Redis failing) l is nil and release does nothing: the lock
// only keeps the maintenance pass from posting a second card while this one is posted.
func (a *App) holdSyncLock(ctx context.Context, id string) (l *session.SyncLock, release func()) {
	l, ok, err := a.store.TrySyncLock(ctx, id)
	if err != nil || !ok {
		return nil, func() {}
	}
	stop := session.KeepAlive(ctx, session.SyncLockTTL/3, func(ctx context.Context) bool { return l.Extend(ctx) == nil })
	var once sync.Once
	return l, func() {
		once.Do(func() {
			stop()
			l.Release(context.WithoutCancel(ctx))
		})
	}
}

// cardShows records that the card just posted (text, blocks: posted rendered) shows rec, the
// incident with the card's ts recorded, when rec renders as that card: recording the ts makes a
// new version but changes nothing on the card, and without the record the first sync would send
// the same card again (one chat.update per incident, for nothing). The version only stamps the
// block_ids (card.go), so rec is compared as rendered at posted's version. l is the sync lock the
// post holds; without it, or when rec renders otherwise, the sync updates the card as usual.
func (a *App) cardShows(ctx context.Context, l *session.SyncLock, posted, rec session.Incident, text string, blocks []slack.Block) {
	now := a.now()
	probe := rec
	probe.Version = posted.Version
	if t, b := Card(probe, a.cardOptions(now)); t != text || !sameBlocks(b, blocks) {
		return
	}
	if l == nil {
		return
	}
	if err := l.RaiseCardStamp(ctx, cardStamp(rec, now)); err != nil {
		a.logger(ctx).Debug().Err(err).Str("incident", rec.ID).Msg("record the posted card's version")
	}
}

// sameBlocks reports whether two block lists encode alike (as chat.postMessage sends them).
func sameBlocks(a, b []slack.Block) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}
