package slackui

import (
	"context"
	"errors"

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
// next sync post the whole audit chain, the CLI's events included, into its thread.
func (a *App) postPendingCards(ctx context.Context) {
	ids, err := a.store.PendingCards(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("list pending cards")
		}
		return
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		a.postPendingCard(ctx, id)
	}
}

// postPendingCard posts one pending card under the incident's sync lock, so two replicas never
// both post it. A crash between the post and recording its ts posts it again on the next pass
// (a second card rather than none). A channel Slack refuses for good (the bot is not in it, it
// does not exist or is archived) ends the attempt with an audit entry saying so.
func (a *App) postPendingCard(ctx context.Context, id string) {
	l, ok, err := a.store.TrySyncLock(ctx, id)
	if err != nil || !ok {
		return // Redis failed or another replica is at it: the next pass tries again
	}
	defer l.Release(context.WithoutCancel(ctx))
	inc, err := a.store.Get(ctx, id)
	switch {
	case errors.Is(err, session.ErrNotFound):
		a.clearPending(ctx, id) // discarded or expired
		return
	case err != nil:
		a.log.Warn().Err(err).Str("incident", id).Msg("read incident of a pending card")
		return
	case inc.MessageTS != "" || inc.Channel == "":
		a.clearPending(ctx, id) // posted already (or nowhere to post)
		return
	}
	if err := l.Extend(ctx); err != nil {
		return
	}
	text, blocks := Card(inc, a.cardOptions(a.now()))
	ts, err := a.api.post(ctx, inc.Channel, "", text, blocks)
	if err != nil {
		code := slackCode(err)
		switch code {
		case "not_in_channel", "channel_not_found", "is_archived", "restricted_action":
			a.log.Warn().Str("incident", id).Str("channel", inc.Channel).Str("code", code).Msg("pending card refused by Slack; not retried")
			a.auditIncident(ctx, session.AuditEntry{IncidentID: id, Actor: "bot", Action: "card.refused",
				After: inc.Channel, Detail: "Slack refused the card (" + code + "); invite the bot to the channel and use bot respond status"})
			a.clearPending(ctx, id)
		default:
			a.log.Warn().Err(err).Str("incident", id).Msg("post pending card; retried on the next pass")
		}
		return
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
		return
	}
	a.clearPending(ctx, id)
	a.log.Info().Str("incident", id).Str("channel", inc.Channel).Msg("posted the pending card of an incident")
	a.changes.Changed(ctx, id)
}

// orphanCardAfter is how old an open incident without a card must be before the maintenance pass
// posts its card: as long as the sync lock a live opener holds (and renews) while it posts.
const orphanCardAfter = session.SyncLockTTL

// postOrphanCards posts the card of every open incident opened in a channel that still has none:
// the replica that opened it died (SIGKILL, a lost node) between storing the incident and
// recording its card, or Redis failed when the ts was recorded. Without this, nothing in Slack
// shows the incident and a second /compromised only links to a card that does not exist. A live
// opener holds the incident's sync lock while it posts, so postPendingCard leaves it alone; a
// crash after the post and before its ts was recorded gives a second card rather than none.
func (a *App) postOrphanCards(ctx context.Context, open []session.Incident) {
	for _, inc := range open {
		if ctx.Err() != nil {
			return
		}
		// A lockdown's member has no card of its own by design: the lockdown's card shows it.
		if inc.MessageTS == "" && inc.Channel != "" && inc.Lockdown == "" && a.now().Sub(inc.CreatedAt) > orphanCardAfter {
			a.postPendingCard(ctx, inc.ID)
		}
	}
}

func (a *App) clearPending(ctx context.Context, id string) {
	if err := a.store.ClearCardPending(ctx, id); err != nil {
		a.log.Warn().Err(err).Str("incident", id).Msg("clear pending card")
	}
}
