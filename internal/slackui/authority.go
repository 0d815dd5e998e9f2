package slackui

import (
	"context"
	"strings"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// This file re-checks authority where it can have lapsed since the click that asked: an approved
// step runs for its requester, and a step resumed after a crash delivers secrets to its
// requester, possibly long after they were allowed (within APPROVAL_TTL, or a takeover later).
// Someone removed from RESPONDERS since gets no step run and no secret.

// stillResponder reports whether the actor of record may still use the bot. A CLI actor
// ("cli:<name>") is not a Slack user: its authority is the terminal it runs on, checked there.
func (a *App) stillResponder(ctx context.Context, actor string) bool {
	if strings.HasPrefix(actor, "cli:") {
		return true
	}
	ok, err := a.auth.allowed(ctx, a.cfg.Responders, actor)
	if err != nil {
		a.logger(ctx).Warn().Err(err).Msg("re-check the requester's authority")
	}
	return ok
}

// refuseLapsedRequest answers an approval whose requester is no longer allowed: nothing runs,
// the request is withdrawn (by the bot) and the refusal is audited with the requester as actor.
func (a *App) refuseLapsedRequest(ctx context.Context, c click, requester string) {
	a.auditIncident(ctx, session.AuditEntry{IncidentID: c.inc.ID, Actor: requester, Action: "refused.unauthorized",
		Step: c.act.Step, Detail: "approved by " + userRef(c.user) + ", but the requester is no longer in RESPONDERS: not run"})
	if a.cfg.Observer != nil {
		a.cfg.Observer.StepEnded(ctx, c.inc, c.act.Step, remediate.ResultRefused, remediate.KindUnauthorized)
	}
	if _, err := a.eng.Reject(ctx, c.inc.ID, c.act.Step, "bot"); err != nil {
		a.logErr(ctx, err, c.inc.ID, "withdraw a request whose requester lost authority")
	}
	a.replyAction(ctx, c.cb, "🚫 "+userRef(requester)+" is no longer allowed to run steps (RESPONDERS), so their request was "+
		"withdrawn and nothing was run. Ask again yourself if it is still needed.", nil)
}

// withholdSecrets records, instead of delivering, the secrets of a run whose requester lost
// authority: the card shows them as not delivered, and a responder's Re-send credentials (or a
// Retry) makes new ones.
func (a *App) withholdSecrets(ctx context.Context, inc session.Incident, to string, step session.Step, keys []string) {
	a.auditIncident(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: to, Action: "refused.unauthorized", Step: step,
		Detail: "new credentials withheld: the requester is no longer in RESPONDERS"})
	states := map[string]session.DeliveryState{}
	for _, k := range keys {
		states[k] = session.DeliveryState{At: a.now().UTC(),
			Error: "withheld: the requester is no longer in RESPONDERS (a responder can make new ones)"}
	}
	a.recordDelivery(ctx, inc.ID, states)
}
