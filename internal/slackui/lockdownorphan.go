package slackui

import (
	"context"
	"errors"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/session"
)

// This file posts a lockdown's card, the one way there is: its opener posts it after the open
// (cmdLockdown, off the queue worker: postOpenLockdownCard), and every replica's maintenance
// pass posts the card of an open lockdown that has none (its opener was killed between storing
// the lockdown and recording the card: the post may wait for a 429's Retry-After; or its post
// did not get through in time and the lockdown was kept). Without the second, nothing in Slack
// shows the lockdown, and its members, which have no cards of their own, could not be acted on
// (TestLockdownKilledBeforeTheCard; the chaos run found it). Both post under the lockdown's sync
// lock and read the lockdown again under it, so whichever comes first posts and the other finds
// the card there.

// errCardBusy: another holder of the lockdown's sync lock (a post, a sync) did not let go in time.
var errCardBusy = errors.New("the lockdown's card is being posted or synced elsewhere")

// lockWaits bounds how often the opener tries the sync lock again, Config.SyncRetry apart
// (15 s by default): a holder renews it while it posts, and a dead one's lock expires after
// session.SyncLockTTL.
const lockWaits = 60

// postLockdownCard posts lockdown id's card unless it has one, and records its ts. wait: retry
// for the sync lock (the opener); else one try (the maintenance pass, which comes again).
// posted false with no error: the card was already there.
func (a *App) postLockdownCard(ctx context.Context, id string, wait bool) (l session.Lockdown, posted bool, err error) {
	lock, release := a.holdSyncLock(ctx, id)
	for attempt := 0; lock == nil && wait && attempt < lockWaits; attempt++ {
		t := time.NewTimer(a.cfg.syncRetry())
		select {
		case <-ctx.Done():
			t.Stop()
			return l, false, ctx.Err()
		case <-t.C:
		}
		lock, release = a.holdSyncLock(ctx, id)
	}
	defer release()
	if lock == nil {
		return l, false, errCardBusy
	}
	if l, err = a.cfg.Lockdowns.Get(ctx, id); err != nil || l.MessageTS != "" {
		return l, false, err
	}
	text, blocks, err := a.renderLockdown(ctx, l)
	if err != nil {
		return l, false, err
	}
	ts, err := a.api.post(ctx, l.Channel, "", text, blocks)
	// Still rate limited after the client's own retries: Slack posted nothing, so post again.
	for slackCode(err) == "ratelimited" && ctx.Err() == nil {
		ts, err = a.api.post(ctx, l.Channel, "", text, blocks)
	}
	if err != nil {
		return l, false, err
	}
	for attempt := 0; ; attempt++ {
		var rec session.Lockdown
		rec, err = a.cfg.Lockdowns.SetCard(ctx, id, l.Channel, ts)
		if err == nil {
			l = rec
			break
		}
		if attempt == 2 || ctx.Err() != nil {
			// The card is in Slack but not on record: the next maintenance pass posts another.
			a.logger(ctx).Error().Err(err).Str("lockdown", id).Msg("record the lockdown card's ts")
			break
		}
	}
	a.lockdownCards.posted(id, a.now(), hashCard(text, blocks))
	return l, true, nil
}

// postOpenLockdownCard posts the card of lockdown l, just opened by c (in the background:
// postLater), and answers c when it was not posted; the card, when posted, is the answer. Only
// Slack refusing the card for good discards the lockdown; anything else keeps it open, and a
// replica's maintenance pass posts its card (postOrphanLockdownCards), as for an incident's
// (cardNotPosted).
func (a *App) postOpenLockdownCard(ctx context.Context, c *slack.SlashCommand, l session.Lockdown) {
	id := l.ID
	_, _, err := a.postLockdownCard(ctx, id, true)
	if err == nil {
		a.changes.Changed(ctx, id)
		return
	}
	rctx, cancel := answerCtx(ctx)
	defer cancel()
	switch {
	case errors.Is(err, errCardBusy):
		// Another replica's maintenance pass holds the lock to post it (this open was slow): the
		// lockdown is open and its card on the way, which the command's answer says.
		a.logger(ctx).Warn().Str("lockdown", id).Msg("the lockdown card is posted by another replica")
		a.replyCommand(rctx, c, "⏳ Lockdown "+esc(id)+" is open; its card is being posted in this channel by another "+
			"replica of the bot. `/compromised status "+esc(id)+"` shows its progress meanwhile.", nil)
	case !refusedForGood(err):
		// Slack did not take the card in time (a wave's backlog in the channel, 429s outlasting
		// the post's bound, a 5xx, the network, a shutdown), not for good: discarding would send
		// the engineer back into the same backlog.
		why, wait := a.cardDelay(err, l.Channel, l.CreatedAt)
		delayLog(a.logger(ctx), why).Err(err).Str("lockdown", id).Dur("wait", wait).
			Msg("lockdown card not posted: the lockdown stays open and the maintenance pass posts its card")
		a.replyCommand(rctx, c, LockdownCardDelayedText(id, wait, why), nil)
	default:
		// Slack refused the card for good (cardRefusals). Nothing may stay open without a card:
		// the members this lockdown opened go too.
		if derr := a.cfg.Lockdowns.Discard(rctx, id); derr != nil {
			a.logger(ctx).Warn().Err(derr).Str("lockdown", id).Msg("discard lockdown after a failed card post")
		}
		a.logger(ctx).Warn().Err(err).Str("lockdown", id).Msg("post lockdown card")
		a.replyCommand(rctx, c, "⚠️ I could not post the lockdown card ("+esc(slackCode(err))+"), so nothing was opened. Please try again.", nil)
	}
}

// postOrphanLockdownCards posts the card of every open lockdown that has none and is older than
// the sync lock a live opener holds while it posts: its opener died first, or Slack did not take
// the card in time and the lockdown was kept (postOpenLockdownCard).
func (a *App) postOrphanLockdownCards(ctx context.Context) {
	if a.cfg.Lockdowns == nil {
		return
	}
	open, err := a.store.ListOpenLockdowns(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("list open lockdowns")
		}
		return
	}
	now := a.now()
	for _, l := range open {
		if l.MessageTS != "" || l.Channel == "" || now.Sub(l.CreatedAt) <= orphanCardAfter {
			continue
		}
		// In the background, as an incident's (cardPosts.later): in a wave the card waits its
		// turn in the channel, and the pass must not wait with it.
		a.cards.later(ctx, l.ID, now, a.postOrphanLockdownCard)
	}
}

// postOrphanLockdownCard posts the card of lockdown id, which has none, waiting for its
// channel's slot under slotCtx; it returns until when to leave the lockdown alone after a
// failure (zero: not at all).
func (a *App) postOrphanLockdownCard(ctx, slotCtx context.Context, id string) (notBefore time.Time) {
	l, posted, err := a.postLockdownCard(slotCtx, id, false)
	switch {
	case errors.Is(err, errCardBusy):
	case err != nil:
		a.log.Warn().Err(err).Str("lockdown", id).Dur("retry_in", cardRetry).Msg("post the card of a lockdown that has none")
		return a.now().Add(cardRetry)
	case posted:
		a.log.Info().Str("lockdown", id).Str("channel", l.Channel).Msg("posted the card of a lockdown that had none")
		a.changes.Changed(ctx, id)
	}
	return time.Time{}
}
