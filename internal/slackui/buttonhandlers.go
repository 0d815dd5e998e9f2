package slackui

import (
	"context"
	"errors"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// This file holds the button handlers (routes.go says who may click which): decode and dedupe a
// click, authorize it, run it through the engine, and answer the clicker when it did nothing.

// click is one decoded button press with the incident as stored now.
type click struct {
	cb   *slack.InteractionCallback
	act  Action
	user string
	inc  session.Incident
	// notice: the click came from the opener's notice (openernotice.go), not from the card.
	notice bool
}

// clickKey is a button click's delivery key (FirstDelivery): the same click delivered twice
// (a redelivered envelope, or the same press sent again) has the same one. "" for what is not a
// button click with an action of ours (a shortcut, an unknown button).
func clickKey(cb *slack.InteractionCallback) string {
	if cb == nil || cb.Type == slack.InteractionTypeMessageAction {
		return ""
	}
	acts := ActionsFrom(*cb)
	if len(acts) == 0 {
		return ""
	}
	act := acts[0]
	var actionTS string
	for _, ba := range cb.ActionCallback.BlockActions {
		if ba != nil && ba.ActionID == act.ActionID() {
			actionTS = ba.ActionTs
			break
		}
	}
	return "act:" + actionTS + ":" + cb.User.ID + ":" + act.ActionID() + ":" + act.IncidentID + act.Lockdown
}

// action runs a button click; again says the click was delivered before (clickKey), so it is
// counted and dropped.
func (a *App) action(ctx context.Context, cb *slack.InteractionCallback, again bool) {
	if cb.Type == slack.InteractionTypeMessageAction {
		a.messageShortcut(ctx, cb) // shortcut.go
		return
	}
	acts := ActionsFrom(*cb)
	if len(acts) == 0 {
		a.replyAction(ctx, cb, "⚠️ Unknown button: nothing was done.", nil)
		return
	}
	act := acts[0]
	if again {
		a.m.Duplicates.WithLabelValues("action").Inc()
		return
	}
	if act.Lockdown != "" {
		a.lockdownClick(ctx, cb, act) // lockdownhandlers.go
		return
	}
	route := actionRoutes[act.Kind]
	inc, err := a.store.Get(ctx, act.IncidentID)
	if err != nil {
		if errors.Is(err, session.ErrNotFound) {
			// A button naming no incident (expired, or a forged value) is a refusal: audited.
			a.auditGlobal(ctx, session.AuditEntry{Actor: cb.User.ID, Action: "refused.no_incident", Step: act.Step,
				Detail: "button " + act.ActionID() + " names " + act.IncidentID + ", which does not exist"})
		}
		a.logErr(ctx, err, act.IncidentID, "read incident for a click")
		a.replyAction(ctx, cb, "⚠️ "+esc(remediate.UserMessage(err)), nil)
		return
	}
	c := click{cb: cb, act: act, user: cb.User.ID, inc: inc, notice: fromNotice(cb, act, inc)}
	if !a.mayClick(ctx, route.who, c) {
		a.auditIncident(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: c.user, Action: "refused.unauthorized",
			Step: act.Step, Detail: "button " + act.ActionID()})
		if act.Step != "" && a.cfg.Observer != nil {
			a.cfg.Observer.StepEnded(ctx, inc, act.Step, remediate.ResultRefused, remediate.KindUnauthorized)
		}
		a.replyAction(ctx, cb, RefusalText(route.what), nil)
		return
	}
	if !c.notice && !onCard(cb, inc) {
		a.auditIncident(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: c.user, Action: "refused.forged", Step: act.Step,
			Detail: "button " + act.ActionID() + " clicked on a message that is not this incident's card"})
		a.replyAction(ctx, cb, "⚠️ That button does not belong to this incident's card: nothing was done.", nil)
		return
	}
	route.handle(a, ctx, c)
}

// onCard reports whether a click came from inc's card, as far as the click says: every button
// is on the card, so a click on another message whose value names inc is forged (Slack sends
// the value the message holds). A click that names no message or channel, or an incident whose
// card is not recorded yet, is not judged.
func onCard(cb *slack.InteractionCallback, inc session.Incident) bool {
	return fromMessage(cb, inc.Channel, inc.MessageTS)
}

// fromMessage reports whether a click may have come from the message (channel, ts) as far as
// the click says (onCard; a lockdown's card too).
func fromMessage(cb *slack.InteractionCallback, cardChannel, cardTS string) bool {
	ts := cb.Container.MessageTs
	if ts == "" {
		ts = cb.Message.Timestamp
	}
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	if ts != "" && cardTS != "" && ts != cardTS {
		return false
	}
	return channel == "" || cardChannel == "" || channel == cardChannel
}

func (a *App) mayClick(ctx context.Context, who role, c click) bool {
	check := func(list []string) bool {
		ok, err := a.auth.allowed(ctx, list, c.user)
		if err != nil {
			a.logger(ctx).Warn().Err(err).Msg("authorize click")
		}
		return ok
	}
	switch who {
	case anyone:
		return true
	case responders:
		return check(a.cfg.Responders)
	case approvers:
		return check(a.cfg.Approvers)
	case approversOrRequester:
		if check(a.cfg.Approvers) {
			return true
		}
		return c.user == c.inc.Step(c.act.Step).RequestedBy && check(a.cfg.Responders)
	}
	return false
}

func (a *App) actStep(ctx context.Context, c click) {
	// An expired request is not busy: the "Request again" button asks anew.
	if st := c.inc.Step(c.act.Step); c.inc.Open() && st.Busy(a.now()) {
		a.replyAction(ctx, c.cb, AlreadyText(*st), nil)
		return
	}
	// With no original to set, Restore asks which policy (restoreview.go); a restore that may not
	// run yet goes to the engine, which says why.
	if c.act.Step == session.StepRestore && c.inc.Open() && originalUnknown(&c.inc) && remediate.Waiting(&c.inc, c.act.Step) == "" {
		a.askRestorePolicy(ctx, c)
		return
	}
	o := remediate.RunOptions{ConfirmMissing: c.act.ConfirmMissing}
	if !inQueueJob(ctx) { // a caller that waits for the whole run
		res, err := a.eng.Request(ctx, c.inc.ID, c.act.Step, c.user, o)
		a.afterRun(ctx, c, c.act.Step, c.user, res, err)
		if err == nil {
			a.noticeOutcome(ctx, c, res.Incident)
		}
		return
	}
	// At deny's "contained" the job gives its worker back (detachJob): the live-call work that
	// follows must not hold up the next incident's click, and waits in the engine's follow-up
	// queue (RunOptions.Continue), which answers the click when it is done. The run goes on
	// after this job returns: its context keeps the job's deadline but not its end.
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(jobTimeout)
	}
	rctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), dl)
	var done func() // set at "contained", on this goroutine
	o.Contained = func() {
		if done == nil {
			done = detachJob(ctx)
		}
	}
	o.Continue = func(res remediate.Result, err error) {
		defer done() // Contained came first: a run continues only from there
		defer cancel()
		a.afterRun(ctx, c, c.act.Step, c.user, res, err)
	}
	res, err := a.eng.Request(rctx, c.inc.ID, c.act.Step, c.user, o)
	if res.Continuing {
		a.noticeOutcome(ctx, c, res.Incident) // contained
		return
	}
	cancel()
	if done != nil {
		defer done()
	}
	a.afterRun(ctx, c, c.act.Step, c.user, res, err)
	if err == nil {
		a.noticeOutcome(ctx, c, res.Incident)
	}
}

func (a *App) actForce(ctx context.Context, c click) {
	res, err := a.eng.Request(ctx, c.inc.ID, session.StepRestore, c.user, remediate.RunOptions{Force: true, ConfirmMissing: c.act.ConfirmMissing})
	a.afterRun(ctx, c, session.StepRestore, c.user, res, err)
}

func (a *App) actApprove(ctx context.Context, c click) {
	requester := c.inc.Step(c.act.Step).RequestedBy
	if st := c.inc.Step(c.act.Step); st.Status == session.StatusAwaiting && requester != "" && requester != c.user &&
		!a.stillResponder(ctx, requester) {
		a.refuseLapsedRequest(ctx, c, requester)
		return
	}
	res, err := a.eng.Approve(ctx, c.inc.ID, c.act.Step, c.user)
	if errors.Is(err, session.ErrNotAwaiting) {
		a.auditNotAwaiting(ctx, c)
	}
	if errors.Is(err, session.ErrSelfApproval) {
		a.auditIncident(ctx, session.AuditEntry{IncidentID: c.inc.ID, Actor: c.user, Action: "refused.self_approval",
			Step: c.act.Step, Detail: "the requester may not approve their own request"})
		a.replyAction(ctx, c.cb, RefusalText("approve your own request"), nil)
		return
	}
	if r := res.Incident.Step(c.act.Step).RequestedBy; r != "" && res.Incident.ID != "" {
		requester = r
	}
	a.afterRun(ctx, c, c.act.Step, requester, res, err)
}

func (a *App) actReject(ctx context.Context, c click) {
	if _, err := a.eng.Reject(ctx, c.inc.ID, c.act.Step, c.user); err != nil {
		if errors.Is(err, session.ErrNotAwaiting) {
			a.auditNotAwaiting(ctx, c)
		}
		a.answerErr(ctx, c, err)
	}
}

// auditNotAwaiting records an answer to an approval request that does not exist (the step
// awaits none): a refusal, audited like the others.
func (a *App) auditNotAwaiting(ctx context.Context, c click) {
	a.auditIncident(ctx, session.AuditEntry{IncidentID: c.inc.ID, Actor: c.user, Action: "refused.not_awaiting",
		Step: c.act.Step, Detail: "button " + c.act.ActionID() + ": the step awaits no approval"})
}

func (a *App) actCredentials(ctx context.Context, c click) {
	res, err := a.eng.Credentials(ctx, c.inc.ID, c.user)
	if len(res.Secrets) > 0 {
		inc := res.Incident
		if inc.ID == "" {
			inc = c.inc
		}
		a.deliverSecrets(ctx, inc, c.user, "", res.Secrets)
	}
	if err != nil {
		a.answerErr(ctx, c, err)
	}
}

func (a *App) actAbort(ctx context.Context, c click) {
	if _, err := a.eng.Abort(ctx, c.inc.ID, c.user, "", c.act.ConfirmMissing); err != nil {
		a.answerErr(ctx, c, err)
	}
}

// afterRun delivers the secrets of a run to the requester and tells the clicker what went
// wrong, if anything (the card shows the result either way; the engine's Observer counts it).
func (a *App) afterRun(ctx context.Context, c click, step session.Step, requester string, res remediate.Result, err error) {
	// A step may end after the job's deadline (it finishes or stops at a recorded boundary):
	// what it made is still delivered, and the clicker still told, under a context of their own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliverTimeout)
	defer cancel()
	if len(res.Secrets) > 0 {
		inc := res.Incident
		if inc.ID == "" {
			inc = c.inc
		}
		a.deliverSecrets(ctx, inc, requester, step, res.Secrets)
	}
	if err != nil {
		a.answerErr(ctx, c, err)
	}
}

// answerErr tells the clicker, ephemerally, why their click did nothing (or failed).
func (a *App) answerErr(ctx context.Context, c click, err error) {
	switch {
	case errors.Is(err, session.ErrFenced):
		return // another runner continues; the card follows
	case errors.Is(err, session.ErrAlreadyRunning), errors.Is(err, session.ErrAlreadyDone),
		errors.Is(err, session.ErrAwaitingApproval):
		if inc, gerr := a.store.Get(ctx, c.inc.ID); gerr == nil && c.act.Step != "" {
			a.replyAction(ctx, c.cb, AlreadyText(*inc.Step(c.act.Step)), nil)
			return
		}
	}
	a.logErr(ctx, err, c.inc.ID, "button "+c.act.ActionID())
	a.replyAction(ctx, c.cb, "⚠️ "+esc(upperFirst(remediate.UserMessage(err)))+".", nil)
}

// replyAction answers the person who clicked, ephemerally (reply), in the card's channel.
func (a *App) replyAction(ctx context.Context, cb *slack.InteractionCallback, text string, blocks []slack.Block) {
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	a.reply(ctx, cb.ResponseURL, channel, cb.User.ID, text, blocks)
}
