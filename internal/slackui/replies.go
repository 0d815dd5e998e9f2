package slackui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// This file holds the texts of the ephemeral replies to commands and clicks (help, usage,
// refusals, "already …", busy), the `list` answer, and how a reply that is not in an ack is sent.

// HelpText is the ephemeral answer to `/compromised help` (and to an empty command).
func HelpText() string {
	return "*/compromised* — respond to a compromised NetSapiens user (toll-fraud runbook)\n" +
		usageLines +
		"\nThe card gets one button per step: deny all calls, re-create devices, reset password + PIN, restore. " +
		"Every action is written to the card's thread. New credentials are shown only to the person who asked."
}

const usageLines = "• `/compromised <user>@<domain> [reason…]` open an incident (or point to the open one)\n" +
	"• `/compromised <user> <domain> [reason…]` the same\n" +
	"• `/compromised plan <user>@<domain>` dry run: every change, before → after; no writes\n" +
	"• `/compromised domain <domain> [reason…]` lockdown: every user of the domain on one card\n" +
	"• `/compromised users <user>@<domain> … [reason…]` lockdown of up to 500 users (the reason follows the last address)\n" +
	"• `/compromised plan domain <domain>` / `plan users …` dry run of a lockdown: users, devices, every step; no writes\n" +
	"• `/compromised status [INC-XXXXXX | LCK-XXXXXX | <user>@<domain>]` an incident, a lockdown and its members, or everything open\n" +
	"• `/compromised list` open incidents\n" +
	"• `/compromised help`\n"

// UsageText is the ephemeral answer to a command that could not be understood; problem (from
// Command.Problem) is escaped, so it may quote what the user typed.
func UsageText(problem string) string {
	if problem == "" {
		problem = "I did not understand that"
	}
	return "⚠️ " + esc(short(problem, 300)) + "\n\nUsage:\n" + usageLines
}

// RefusalText is the ephemeral answer to someone who may not do what they tried; what says it in
// plain words ("open incidents", "approve your own request") and is escaped.
func RefusalText(what string) string {
	return "🚫 You are not allowed to " + esc(short(what, 200)) + ". Nothing was changed, and the attempt was recorded in the audit."
}

// NotInChannelText tells the user how to add the bot when it is not in the channel; nothing was opened.
func NotInChannelText(botUserID string) string {
	bot := "the bot"
	if slackID.MatchString(botUserID) {
		bot = "<@" + botUserID + ">"
	}
	return "I'm not in this channel, so I can't post the incident card here. Invite me with `/invite @bot` (" + bot +
		"), then run the command again. Nothing was opened."
}

// DMRefusalText answers a command to open an incident from a DM: incidents live in channels.
func DMRefusalText() string {
	return "Incidents are opened in channels only, so the team sees the card and its audit trail. " +
		"Run `/compromised` in your incident channel. Nothing was opened."
}

// AlreadyOpenText answers a second /compromised for a user with an open incident. permalinkOrChannel
// is the card's permalink (https://…) or, when that is unknown, its channel ID.
func AlreadyOpenText(inc session.Incident, permalinkOrChannel string) string {
	where := "its card"
	switch {
	case strings.HasPrefix(permalinkOrChannel, "https://") && !strings.ContainsAny(permalinkOrChannel, "<>|\n "):
		where = "<" + permalinkOrChannel + "|its card>"
	case channelID.MatchString(permalinkOrChannel):
		where = "its card in <#" + permalinkOrChannel + ">"
	}
	return fmt.Sprintf("%s already has an open incident, *%s*, opened by %s at %s: see %s. Nothing new was opened.",
		esc(inc.Key()), esc(inc.ID), userRef(inc.OpenedBy), clockAt(inc.CreatedAt, time.Time{}), where)
}

// AlreadyText answers a click on a step that is not ready: running, done, skipped or awaiting
// approval ("Deny all calls is already done by <@U1> at 02:15 UTC").
func AlreadyText(step session.StepState) string {
	title := stepTitle(step.Step)
	switch step.Status {
	case session.StatusRunning:
		return fmt.Sprintf("%s is already running (started by %s at %s).", title, userRef(step.RequestedBy), clockAt(step.StartedAt, time.Time{}))
	case session.StatusDone, session.StatusWarnings:
		return fmt.Sprintf("%s is already done by %s at %s.", title, userRef(step.RequestedBy), clockAt(step.FinishedAt, time.Time{}))
	case session.StatusAwaiting:
		return fmt.Sprintf("%s already awaits approval (asked by %s at %s).", title, userRef(step.RequestedBy), clockAt(step.RequestedAt, time.Time{}))
	case session.StatusSkipped:
		return fmt.Sprintf("%s was skipped: %s.", title, esc(short(step.SkipReason, 200)))
	}
	return fmt.Sprintf("%s is %s.", title, statusWord(step.Status))
}

// BusyText answers a command or click that found the queue full: nothing was started, and
// retry (rounded up to whole seconds) says when to try again.
func BusyText(retry time.Duration) string {
	secs := max(int((retry+time.Second-1)/time.Second), 1)
	return fmt.Sprintf("⏳ The bot is busy right now, so nothing was started. Please try again in %d s.", secs)
}

// RestartingText answers a request still queued when a shutdown's grace ended: nothing was started.
func RestartingText() string {
	return "⏳ The bot is restarting, so nothing was started. Please try again in a few seconds."
}

// ListBlocks renders the answer to `list`: one section per incident (newest state as given), within
// Block Kit's limits however many there are.
func ListBlocks(incs []session.Incident, now time.Time) []slack.Block {
	if len(incs) == 0 {
		return []slack.Block{slack.NewSectionBlock(mrkdwn("No open incidents."), nil, nil)}
	}
	bs := []slack.Block{slack.NewSectionBlock(mrkdwn(fmt.Sprintf("*Open incidents* (%d)", len(incs))), nil, nil)}
	const maxItems = 45
	for i, inc := range incs {
		if i == maxItems {
			bs = append(bs, slack.NewContextBlock("", mrkdwn(fmt.Sprintf("+%d more: use `/compromised status <user>@<domain>`", len(incs)-i))))
			break
		}
		l := fmt.Sprintf("*%s*  %s", esc(inc.ID), esc(inc.Key()))
		if inc.Live != nil && inc.Live.DisplayName != "" {
			l += " — " + esc(short(remediate.CleanReason(inc.Live.DisplayName), 80))
		}
		l += fmt.Sprintf(" · opened by %s %s (%s ago)", userRef(inc.OpenedBy), clockAt(inc.CreatedAt, now), age(inc.CreatedAt, now))
		if channelID.MatchString(inc.Channel) {
			l += " in <#" + inc.Channel + ">"
		}
		steps := make([]string, len(session.Steps))
		for j, s := range session.Steps {
			steps[j] = string(s) + " " + statusIcon(inc.Step(s).Status)
		}
		l += "\n" + strings.Join(steps, " · ")
		bs = append(bs, slack.NewSectionBlock(mrkdwn(l), nil, nil))
	}
	return bs
}

// reply answers one person ephemerally: through the command's or click's response_url, which
// works in channels the bot is not in and costs no Web API tier (Slack's rate limits are per
// method, and a burst of refusals or "busy" answers must not use up chat.postEphemeral), else
// chat.postEphemeral (the response_url expired or was used up).
func (a *App) reply(ctx context.Context, responseURL, channel, user, text string, blocks []slack.Block) {
	if responseURL != "" {
		err := a.api.respond(ctx, responseURL, text, blocks)
		if err == nil {
			return
		}
		a.log.Info().Str("code", slackCode(err)).Msg("response_url failed (expired?); using chat.postEphemeral")
	}
	if err := a.api.ephemeral(ctx, channel, user, text, blocks); err != nil {
		a.log.Warn().Err(err).Msg("ephemeral reply")
	}
}
