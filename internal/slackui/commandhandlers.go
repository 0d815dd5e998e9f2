package slackui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// This file holds the slash command handlers (routes.go says who may run which) and the
// ephemeral answer to the person who ran one.

func (a *App) command(ctx context.Context, c *slack.SlashCommand) {
	// A slash command redelivered under a new envelope (reported after a socket drop) still
	// carries its trigger_id.
	if c.TriggerID != "" {
		if first, err := a.store.FirstDelivery(ctx, "cmd:"+c.TriggerID+":"+c.UserID); err != nil {
			a.logger(ctx).Warn().Err(err).Msg("dedupe command")
		} else if !first {
			a.m.Duplicates.WithLabelValues("command").Inc()
			return
		}
	}
	cmd, route := routeCommand(c.Text)
	allowed := true
	if route.who != anyone {
		var err error
		if allowed, err = a.auth.allowed(ctx, a.cfg.Responders, c.UserID); err != nil {
			a.logger(ctx).Warn().Err(err).Msg("authorize command")
		}
	}
	if text, refusal, ok := immediate(c, cmd, route, allowed); ok {
		if refusal != nil {
			a.auditGlobal(ctx, *refusal)
		}
		a.replyCommand(ctx, c, text, nil)
		return
	}
	route.handle(a, ctx, c, cmd)
}

// ackAnswer is the answer to a slash command that the Socket Mode ack itself can carry: help,
// usage and validation errors, and refusals, decided from the command and the cached
// authorization only (no Redis, no Web API), so the dispatcher can give it at once. ok false:
// the command needs a worker. refusal, when set, is the audit entry a worker must still record.
func (a *App) ackAnswer(c *slack.SlashCommand) (text string, refusal *session.AuditEntry, ok bool) {
	cmd, route := routeCommand(c.Text)
	allowed := true
	if route.who != anyone {
		var known bool
		if allowed, known = a.auth.decided(a.cfg.Responders, c.UserID); !known {
			return "", nil, false // a user group to resolve: the worker asks Slack
		}
	}
	return immediate(c, cmd, route, allowed)
}

// immediate is the answer a command gets without running its handler: a refusal (and the audit
// entry to record) when the user is not allowed, else the route's instant answer. ok false: run
// route.handle.
func immediate(c *slack.SlashCommand, cmd Command, route commandRoute, allowed bool) (text string, refusal *session.AuditEntry, ok bool) {
	if !allowed {
		e := refusedCommand(c, cmd)
		return RefusalText(route.what), &e, true
	}
	if route.instant == nil {
		return "", nil, false
	}
	text, ok = route.instant(c, cmd)
	return text, nil, ok
}

// refusedCommand is the audit entry of a command refused to someone not in RESPONDERS.
func refusedCommand(c *slack.SlashCommand, cmd Command) session.AuditEntry {
	detail := "/compromised " + string(cmd.Kind)
	if cmd.User != "" {
		detail += " " + cmd.User + "@" + cmd.Domain
	}
	return session.AuditEntry{Actor: c.UserID, Action: "refused.unauthorized", Detail: detail}
}

func helpAnswer(*slack.SlashCommand, Command) (string, bool) { return HelpText(), true }

func usageAnswer(_ *slack.SlashCommand, cmd Command) (string, bool) {
	return UsageText(cmd.Problem), true
}

// dmRefusal refuses to open an incident from a DM, when the command itself shows it came from
// one (cmdOpen also asks Slack, for the cases it does not show).
func dmRefusal(c *slack.SlashCommand, _ Command) (string, bool) {
	if strings.HasPrefix(c.ChannelID, "D") || c.ChannelName == "directmessage" {
		return DMRefusalText(), true
	}
	return "", false
}

// channelOK checks that a card can be posted where c was run (a channel the bot is in, not a
// DM), and answers the person when it cannot.
func (a *App) channelOK(ctx context.Context, c *slack.SlashCommand) bool {
	ch, err := a.channelForOpen(ctx, c.ChannelID)
	switch code := slackCode(err); {
	case err == nil && (ch.IsIM || ch.IsMpIM):
		a.replyCommand(ctx, c, DMRefusalText(), nil)
		return false
	case err == nil && !ch.IsMember, code == "channel_not_found", code == "not_in_channel":
		a.replyCommand(ctx, c, NotInChannelText(a.botUserID), nil)
		return false
	case err != nil:
		a.logger(ctx).Warn().Err(err).Msg("conversations.info")
		a.replyCommand(ctx, c, "⚠️ I could not check this channel with Slack ("+esc(code)+"). Nothing was opened; please try again.", nil)
		return false
	}
	return true
}

func (a *App) cmdOpen(ctx context.Context, c *slack.SlashCommand, cmd Command) {
	if !a.channelOK(ctx, c) {
		return
	}
	inc, created, err := a.eng.Open(ctx, remediate.OpenRequest{User: cmd.User, Domain: cmd.Domain, Reason: cmd.Reason,
		Actor: c.UserID, Channel: c.ChannelID, CardFirst: true}) // the devices and calls fill the card in later
	if err != nil {
		a.logErr(ctx, err, "", "open incident")
		a.replyCommand(ctx, c, "⚠️ "+esc(remediate.UserMessage(err))+". Nothing was opened.", nil)
		return
	}
	if !created {
		a.replyCommand(ctx, c, AlreadyOpenText(inc, a.cardLink(ctx, inc)), nil)
		return
	}
	a.postCardLater(ctx, c, inc)
}

// cardLink is the permalink of an incident's card, or its channel when Slack cannot give one
// (the card is still being posted, or was deleted): the answer must not wait on it.
func (a *App) cardLink(ctx context.Context, inc session.Incident) string {
	if inc.MessageTS == "" {
		return inc.Channel
	}
	link, err := a.api.permalink(ctx, inc.Channel, inc.MessageTS)
	if err != nil {
		a.logger(ctx).Info().Str("incident", inc.ID).Str("code", slackCode(err)).Msg("no permalink for the card; naming its channel")
		return inc.Channel
	}
	return link
}

func (a *App) cmdPlan(ctx context.Context, c *slack.SlashCommand, cmd Command) {
	if cmd.Scope != "" {
		a.cmdLockdownPlan(ctx, c, cmd) // lockdownhandlers.go
		return
	}
	p, err := a.eng.Plan(ctx, cmd.User, cmd.Domain)
	if err != nil {
		a.logErr(ctx, err, "", "plan")
		a.replyCommand(ctx, c, "⚠️ "+esc(remediate.UserMessage(err)), nil)
		return
	}
	a.replyCommand(ctx, c, "Dry run for "+esc(p.User+"@"+p.Domain)+": nothing was changed", PlanBlocks(p))
}

func (a *App) cmdStatus(ctx context.Context, c *slack.SlashCommand, cmd Command) {
	var inc session.Incident
	var err error
	switch {
	case cmd.LockdownID != "":
		a.cmdLockdownStatus(ctx, c, cmd.LockdownID) // lockdownstatus.go
		return
	case cmd.IncidentID != "":
		inc, err = a.store.Get(ctx, cmd.IncidentID)
	case cmd.User != "":
		inc, err = a.store.FindOpen(ctx, cmd.User, cmd.Domain)
	default:
		a.cmdList(ctx, c, cmd)
		return
	}
	if errors.Is(err, session.ErrNotFound) {
		what := cmd.IncidentID
		if what == "" {
			what = "an open incident for " + cmd.User + "@" + cmd.Domain
		}
		a.replyCommand(ctx, c, "I found no "+esc(what)+".", nil)
		return
	}
	if err != nil {
		a.logErr(ctx, err, "", "status")
		a.replyCommand(ctx, c, "⚠️ "+esc(remediate.UserMessage(err)), nil)
		return
	}
	if inc.Open() {
		// status refreshes the live state (a read), so the card is honestly dated too.
		if fresh, err := a.eng.Refresh(ctx, inc.ID); err == nil {
			inc = fresh
		} else {
			a.logErr(ctx, err, inc.ID, "refresh")
		}
	}
	a.replyCommand(ctx, c, inc.ID+" "+inc.Key(), StatusBlocks(inc, a.now()))
}

func (a *App) cmdList(ctx context.Context, c *slack.SlashCommand, _ Command) {
	incs, err := a.store.ListOpen(ctx)
	if err != nil {
		a.logErr(ctx, err, "", "list")
		a.replyCommand(ctx, c, "⚠️ I could not read the open incidents; please try again.", nil)
		return
	}
	a.replyCommand(ctx, c, fmt.Sprintf("%d open incident(s)", len(incs)), ListBlocks(incs, a.now()))
}

// replyCommand answers the person who ran a command, ephemerally (reply).
func (a *App) replyCommand(ctx context.Context, c *slack.SlashCommand, text string, blocks []slack.Block) {
	a.reply(ctx, c.ResponseURL, c.ChannelID, c.UserID, text, blocks)
}
