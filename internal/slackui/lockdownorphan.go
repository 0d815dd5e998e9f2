package slackui

import (
	"context"
	"errors"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// This file posts a lockdown's card, the one way there is: its opener posts it after the open
// (cmdLockdown), and every replica's maintenance pass posts the card of an open lockdown that has
// none (its opener was killed between storing the lockdown and recording the card: the post may
// wait for a 429's Retry-After). Without the second, nothing in Slack shows the lockdown, and its
// members, which have no cards of their own, could not be acted on (TestLockdownKilledBeforeTheCard;
// the chaos run found it). Both post under the lockdown's sync lock and read the lockdown again
// under it, so whichever comes first posts and the other finds the card there.

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

// postOrphanLockdownCards posts the card of every open lockdown that has none and is older than
// the sync lock a live opener holds while it posts.
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
	for _, l := range open {
		if ctx.Err() != nil {
			return
		}
		if l.MessageTS != "" || l.Channel == "" || a.now().Sub(l.CreatedAt) <= orphanCardAfter {
			continue
		}
		_, posted, err := a.postLockdownCard(ctx, l.ID, false)
		switch {
		case errors.Is(err, errCardBusy):
		case err != nil:
			a.log.Warn().Err(err).Str("lockdown", l.ID).Msg("post the card of a lockdown that has none: the next pass tries again")
		case posted:
			a.log.Info().Str("lockdown", l.ID).Str("channel", l.Channel).Msg("posted the card of a lockdown whose opener stopped before it")
			a.changes.Changed(ctx, l.ID)
		}
	}
}
