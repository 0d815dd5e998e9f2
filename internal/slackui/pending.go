package slackui

import (
	"context"
	"errors"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// PendingCards is the part of the store that remembers the cards of incidents opened without
// Slack (`bot respond open … --channel C…`), for the app to post once Slack answers.
type PendingCards interface {
	PendingCards(ctx context.Context) ([]string, error)
	ClearCardPending(ctx context.Context, id string) error
}

// postPendingCards posts the card of every incident opened from the CLI with a channel, as
// soon as this replica talks to Slack (the maintenance pass runs right after auth.test). The
// card shows the incident as it stands, with the steps the CLI ran; recording its ts makes the
// next sync post the whole audit chain, the CLI's events included, into its thread. The posts
// run in the background (cardPosts.later): the pass does not wait for the channels' slots.
func (a *App) postPendingCards(ctx context.Context) {
	ids, err := a.store.PendingCards(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("list pending cards")
		}
		return
	}
	for _, id := range ids {
		a.cards.later(ctx, id, a.now(), a.postPendingCard)
	}
}

// How long this replica leaves a card the maintenance pass could not post before it tries
// again: after a failure it waits out (Slack failing, the network, the shutdown), and after
// Slack refused the card for good (each refusal is audited; the channel may be fixed later).
const (
	cardRetry        = 30 * time.Second
	cardRefusedRetry = 30 * time.Minute
)

// postPendingCard posts one pending card under the incident's sync lock, held (and renewed by
// holdSyncLock) while the post waits for its channel's slot, so two replicas never both post
// it. Only a shutdown (slotCtx, cardPosts.later) bounds the wait: in a long wave of incidents
// in one channel the card takes its turn and posts when the backlog drains, instead of failing
// at a deadline and trying again on every pass. It is rendered after the wait, from the
// incident as stored then. A crash between the post and recording its ts posts it again on the
// next pass (a second card rather than none). A card Slack refuses for good (refusedForGood:
// the bot is not in the channel, it does not exist or is archived…) ends the attempt with an
// audit entry saying so. It returns until when to leave the incident alone (zero: not at all).
func (a *App) postPendingCard(ctx, slotCtx context.Context, id string) (notBefore time.Time) {
	l, release := a.holdSyncLock(ctx, id)
	if l == nil {
		return time.Time{} // Redis failed or another replica is at it: the next pass tries again
	}
	defer release()
	inc, ok := a.pendingIncident(ctx, id)
	if !ok {
		return time.Time{}
	}
	done, err := a.api.p.post(slotCtx, inc.Channel)
	if err != nil {
		return a.pendingCardFailed(slotCtx, inc, a.api.fail("chat.postMessage", err))
	}
	defer done()
	if inc, ok = a.pendingIncident(ctx, id); !ok { // as it is after the wait
		return time.Time{}
	}
	text, blocks := Card(inc, a.cardOptions(a.now()))
	ts, err := a.api.send(ctx, inc.Channel, "", text, blocks)
	if err != nil {
		return a.pendingCardFailed(ctx, inc, err)
	}
	a.m.CardUpdates.Inc()
	for attempt := 0; ; attempt++ {
		_, err = a.eng.SetCard(ctx, id, inc.Channel, ts)
		if err == nil || attempt == 2 || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		a.log.Error().Err(err).Str("incident", id).Msg("record the ts of a pending card: it is posted again on the next pass")
		return time.Time{}
	}
	a.clearPending(ctx, id)
	a.log.Info().Str("incident", id).Str("channel", inc.Channel).Msg("posted the pending card of an incident")
	release() // before the sync, which takes the lock
	a.changes.Changed(ctx, id)
	return time.Time{}
}

// pendingIncident reads the incident of a pending card; false when there is no card to post
// (discarded, expired, posted already, nowhere to post: its pending mark is cleared) or Redis
// failed.
func (a *App) pendingIncident(ctx context.Context, id string) (session.Incident, bool) {
	inc, err := a.store.Get(ctx, id)
	switch {
	case errors.Is(err, session.ErrNotFound):
		a.clearPending(ctx, id) // discarded or expired
		return inc, false
	case err != nil:
		a.log.Warn().Err(err).Str("incident", id).Msg("read incident of a pending card")
		return inc, false
	case inc.MessageTS != "" || inc.Channel == "":
		a.clearPending(ctx, id) // posted already (or nowhere to post)
		return inc, false
	}
	return inc, true
}

// pendingCardFailed handles a failed post of inc's pending card (err) and returns until when
// to leave it alone.
func (a *App) pendingCardFailed(ctx context.Context, inc session.Incident, err error) time.Time {
	code := slackCode(err)
	switch {
	case refusedForGood(err):
		a.log.Warn().Str("incident", inc.ID).Str("channel", inc.Channel).Str("code", code).Msg("pending card refused by Slack")
		a.auditIncident(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: "bot", Action: "card.refused",
			After: inc.Channel, Detail: "Slack refused the card (" + code + "); invite the bot to the channel and use bot respond status"})
		a.clearPending(ctx, inc.ID)
		return a.now().Add(cardRefusedRetry)
	case ctx.Err() != nil:
		a.log.Info().Str("incident", inc.ID).Str("code", code).Msg("pending card not posted before the shutdown: a replica's maintenance pass posts it")
	default:
		a.log.Warn().Err(err).Str("incident", inc.ID).Dur("retry_in", cardRetry).Msg("post pending card")
	}
	return a.now().Add(cardRetry)
}

// orphanCardAfter is how old an open incident without a card must be before the maintenance pass
// posts its card: as long as the sync lock a live opener holds (and renews) while it posts.
const orphanCardAfter = session.SyncLockTTL

// postOrphanCards posts the card of every open incident opened in a channel that still has none:
// its opener's post did not get through in time and the incident was kept (cardNotPosted: the
// channel's backlog in a wave, Slack failing, a shutdown), the replica that opened it died
// (SIGKILL, a lost node) between storing the incident and recording its card, or Redis failed
// when the ts was recorded. The posts run in the background (cardPosts.later), one per incident
// at a time, each waiting its turn in the channel. Without this, nothing in Slack
// shows the incident and a second /compromised only links to a card that does not exist. A live
// opener holds the incident's sync lock while it posts, so postPendingCard leaves it alone; a
// crash after the post and before its ts was recorded gives a second card rather than none.
func (a *App) postOrphanCards(ctx context.Context, open []session.Incident) {
	now := a.now()
	a.cards.sweep(now)
	for _, inc := range open {
		// A lockdown's member has no card of its own by design: the lockdown's card shows it.
		if inc.MessageTS == "" && inc.Channel != "" && inc.Lockdown == "" && now.Sub(inc.CreatedAt) > orphanCardAfter {
			a.cards.later(ctx, inc.ID, now, a.postPendingCard)
		}
	}
}

func (a *App) clearPending(ctx context.Context, id string) {
	if err := a.store.ClearCardPending(ctx, id); err != nil {
		a.log.Warn().Err(err).Str("incident", id).Msg("clear pending card")
	}
}
