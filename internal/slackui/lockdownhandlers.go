package slackui

import (
	"context"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/lockdown"
	"github.com/compromised-responder/bot/internal/session"
)

// This file holds the lockdown command and button handlers: `domain …`, `users …`, their plan,
// and the lockdown card's buttons.

// Lockdowns is the part of the lockdown engine (*lockdown.Engine) the app calls.
type Lockdowns interface {
	Open(ctx context.Context, r lockdown.OpenRequest) (session.Lockdown, error)
	Plan(ctx context.Context, t lockdown.Target) (lockdown.Plan, error)
	Get(ctx context.Context, id string) (session.Lockdown, error)
	Summary(ctx context.Context, l session.Lockdown) (lockdown.Summary, error)
	SetCard(ctx context.Context, id, channel, ts string) (session.Lockdown, error)
	Discard(ctx context.Context, id string) error
	Start(ctx context.Context, id string, a lockdown.Ask) (session.Lockdown, error)
	Status(ctx context.Context, id string) (session.Lockdown, lockdown.Summary, []lockdown.MemberStatus, error)
	SetDeliver(fn lockdown.DeliverFunc)
}

// notAvailable answers a lockdown command or click when the app runs without lockdowns.
const notAvailable = "⚠️ Lockdowns are not available in this process. Nothing was changed."

func targetOf(cmd Command) lockdown.Target {
	return lockdown.Target{Scope: cmd.Scope, Domain: cmd.Domain, Users: cmd.Users}
}

func (a *App) cmdLockdownPlan(ctx context.Context, c *slack.SlashCommand, cmd Command) {
	if a.cfg.Lockdowns == nil {
		a.replyCommand(ctx, c, notAvailable, nil)
		return
	}
	p, err := a.cfg.Lockdowns.Plan(ctx, targetOf(cmd))
	if err != nil {
		a.logErr(ctx, err, "", "plan lockdown")
		a.replyCommand(ctx, c, "⚠️ "+esc(lockdown.UserMessage(err))+".", nil)
		return
	}
	a.replyCommand(ctx, c, "Dry run of a lockdown: nothing was changed", LockdownPlanBlocks(p))
}

// cmdLockdown opens a lockdown: every member's incident, then the one card in the channel,
// posted in the background (postOpenLockdownCard; the maintenance pass posts it when this
// replica dies first).
func (a *App) cmdLockdown(ctx context.Context, c *slack.SlashCommand, cmd Command) {
	lk := a.cfg.Lockdowns
	if lk == nil {
		a.replyCommand(ctx, c, notAvailable, nil)
		return
	}
	if !a.channelOK(ctx, c) {
		return
	}
	l, err := lk.Open(ctx, lockdown.OpenRequest{Target: targetOf(cmd), Reason: cmd.Reason, Actor: c.UserID, Channel: c.ChannelID})
	if err != nil {
		a.logErr(ctx, err, "", "open lockdown")
		a.replyCommand(ctx, c, "⚠️ "+esc(lockdown.UserMessage(err))+". Nothing was opened.", nil)
		return
	}
	// Its card waits for the lockdown's sync lock and its channel's slot (a wave's backlog, 429s):
	// off this queue worker, as an incident's, so that other incidents' work (their Deny clicks)
	// runs meanwhile.
	a.postLater(ctx, func(ctx context.Context) { a.postOpenLockdownCard(ctx, c, l) })
}

// renderLockdown renders l's card from its members as stored now.
func (a *App) renderLockdown(ctx context.Context, l session.Lockdown) (string, []slack.Block, error) {
	sum, err := a.cfg.Lockdowns.Summary(ctx, l)
	if err != nil {
		return "", nil, err
	}
	text, blocks := LockdownCard(l, sum, a.cardOptions(a.now()))
	return text, blocks, nil
}

// lockdownClick answers a lockdown card's button: who may, then one fan-out over the members.
func (a *App) lockdownClick(ctx context.Context, cb *slack.InteractionCallback, act Action) {
	lk := a.cfg.Lockdowns
	if lk == nil {
		a.replyAction(ctx, cb, notAvailable, nil)
		return
	}
	l, err := lk.Get(ctx, act.Lockdown)
	if err != nil {
		a.logErr(ctx, err, "", "read lockdown for a click")
		a.replyAction(ctx, cb, "⚠️ "+esc(lockdown.UserMessage(err)), nil)
		return
	}
	ask := lockdown.Ask{Step: act.Step, Actor: cb.User.ID, Confirm: act.ConfirmMissing}
	who, what := responders, "run lockdown steps"
	switch {
	case act.Kind == ActionApprove:
		ask.Kind, who, what = lockdown.KindApprove, approvers, "approve steps"
	case act.Kind == ActionReject:
		ask.Kind, who, what = lockdown.KindReject, approversOrRequester, "reject approval requests"
	case act.Op == OpRetry:
		ask.Kind = lockdown.KindRetry
	case act.Op == OpAbort:
		ask.Kind, what = lockdown.KindAbort, "abort lockdowns"
	case act.Op == OpGateRestore:
		// The same rules as lockdown:restore (a responder; APPROVAL_STEPS in the engine).
		ask.Kind, ask.Step, what = lockdown.KindOverGate, session.StepRestore, "restore over the gate"
	default:
		ask.Kind = lockdown.KindStep
	}
	requester := ""
	if act.Kind == ActionApprove || act.Kind == ActionReject {
		if sum, err := lk.Summary(ctx, l); err == nil {
			requester = sum.Awaiting[act.Step].RequestedBy
		}
	}
	if !a.mayClick(ctx, who, click{cb: cb, act: act, user: cb.User.ID,
		inc: session.Incident{Steps: map[session.Step]*session.StepState{act.Step: {RequestedBy: requester}}}}) {
		a.auditGlobal(ctx, session.AuditEntry{Actor: cb.User.ID, Action: "refused.unauthorized", Step: act.Step,
			Detail: l.ID + ": button " + act.ActionID()})
		a.replyAction(ctx, cb, RefusalText(what), nil)
		return
	}
	if !fromMessage(cb, l.Channel, l.MessageTS) {
		a.auditGlobal(ctx, session.AuditEntry{Actor: cb.User.ID, Action: "refused.forged", Step: act.Step,
			Detail: l.ID + ": button " + act.ActionID() + " clicked on a message that is not this lockdown's card"})
		a.replyAction(ctx, cb, "⚠️ That button does not belong to this lockdown's card: nothing was done.", nil)
		return
	}
	if act.Kind == ActionApprove && requester == cb.User.ID {
		a.auditGlobal(ctx, session.AuditEntry{Actor: cb.User.ID, Action: "refused.self_approval", Step: act.Step,
			Detail: l.ID + ": the requester may not approve their own request"})
		a.replyAction(ctx, cb, RefusalText("approve your own request"), nil)
		return
	}
	if _, err := lk.Start(ctx, l.ID, ask); err != nil {
		a.logErr(ctx, err, "", "lockdown button "+act.ActionID())
		a.replyAction(ctx, cb, "⚠️ "+esc(upperFirst(lockdown.UserMessage(err)))+".", nil)
		return
	}
	a.changes.Changed(ctx, l.ID)
}

// compile-time check that the engine fits.
var _ Lockdowns = (*lockdown.Engine)(nil)
