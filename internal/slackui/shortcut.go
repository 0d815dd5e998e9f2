package slackui

import (
	"context"
	"regexp"
	"strings"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// This file holds the message shortcut "Contain this user" (callback_id
// compromised_from_message, declared in the app manifest): on any message (a PBX fraud
// notification, a monitoring alert) it takes the first <user>@<domain> of the message's text and
// opens the incident in that channel, exactly as /compromised <user>@<domain> would, with the
// message's permalink as the reason. Refusals go to the person through the response_url.

// ShortcutContain is the callback_id of the "Contain this user" message shortcut.
const ShortcutContain = "compromised_from_message"

// addressRE finds a user@domain: the user 1–16 and the domain 1–64 of [A-Za-z0-9._-] (what
// netsapiens.ValidateUser and ValidateDomain accept), not inside a longer word.
var addressRE = regexp.MustCompile(`(?:^|[^A-Za-z0-9._@-])([A-Za-z0-9._-]{1,16})@([A-Za-z0-9._-]{1,64})`)

// FirstAddress returns the first <user>@<domain> in a message's text as Slack stores it
// (<mailto:a@b|a@b> links and entities undone), the domain lower-cased; ok is false when
// there is none. A domain's trailing dots, dashes and underscores are sentence punctuation.
func FirstAddress(text string) (user, domain string, ok bool) {
	for _, m := range addressRE.FindAllStringSubmatch(unslack(text), -1) {
		u, d := m[1], strings.TrimRight(m[2], "._-")
		if netsapiens.ValidateUser(u) == nil && netsapiens.ValidateDomain(d) == nil {
			return u, strings.ToLower(d), true
		}
	}
	return "", "", false
}

// NoAddressText answers a shortcut on a message that names no user.
func NoAddressText() string {
	return "⚠️ I found no `user@domain` in that message, so nothing was opened. Use `/compromised <user>@<domain> [reason…]`."
}

// messageShortcut handles a message_action envelope (routed from action).
func (a *App) messageShortcut(ctx context.Context, cb *slack.InteractionCallback) {
	channel := cb.Channel.ID
	answer := func(text string) { a.reply(ctx, cb.ResponseURL, channel, cb.User.ID, text, nil) }
	if cb.CallbackID != ShortcutContain {
		answer("⚠️ Unknown shortcut: nothing was done.")
		return
	}
	if cb.TriggerID != "" {
		if first, err := a.store.FirstDelivery(ctx, "sc:"+cb.TriggerID+":"+cb.User.ID); err != nil {
			a.logger(ctx).Warn().Err(err).Msg("dedupe shortcut")
		} else if !first {
			a.m.Duplicates.WithLabelValues("shortcut").Inc()
			return
		}
	}
	allowed, err := a.auth.allowed(ctx, a.cfg.Responders, cb.User.ID)
	if err != nil {
		a.logger(ctx).Warn().Err(err).Msg("authorize shortcut")
	}
	if !allowed {
		a.auditGlobal(ctx, session.AuditEntry{Actor: cb.User.ID, Action: "refused.unauthorized",
			Detail: "shortcut " + ShortcutContain})
		answer(RefusalText("open incidents"))
		return
	}
	user, domain, ok := FirstAddress(cb.Message.Text)
	if !ok {
		answer(NoAddressText())
		return
	}
	reason := "from a message in channel " + channel
	if link, err := a.api.permalink(ctx, channel, cb.Message.Timestamp); err == nil && link != "" {
		reason = link
	} else if err != nil {
		a.logger(ctx).Info().Str("code", slackCode(err)).Msg("no permalink for the shortcut's message")
	}
	// The same path as the slash command, so the channel checks and the answers are the same.
	sc := &slack.SlashCommand{ChannelID: channel, UserID: cb.User.ID, ResponseURL: cb.ResponseURL}
	a.cmdOpen(ctx, sc, Command{Kind: KindOpen, User: user, Domain: domain, Reason: reason})
}
