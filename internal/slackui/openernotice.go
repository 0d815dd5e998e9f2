package slackui

import (
	"context"
	"fmt"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// This file holds the opener's notice. When Slack limits the channel (pacer.go) so that a new
// incident's card cannot be posted at once, the person who typed the command gets, right away
// and only for them, the incident and the card's own Deny button: through the command's
// response_url, which costs no Web API tier. Without it, in a wave of incidents in one channel
// the hundredth card shows after about 100 s (one chat.postMessage per second per channel), and
// so does the only way to contain its user. A click on the notice runs exactly the card's path
// (buttonhandlers.go: authorization, APPROVAL_STEPS, "already done", the audit; everything read
// from Redis); the card follows when Slack allows and shows the incident as it is by then.

// noticeAfter is how long a card may wait for its channel before its opener gets the notice; a
// card that posts sooner gets none, so a single open, or a burst Slack does not limit, makes no
// extra call.
const noticeAfter = 2 * time.Second

// OpenerNotice renders the notice of inc: the fallback text and the blocks. wait is about how
// long the card still waits for its channel (0: not said). The deny step is rendered by the
// card's own builder (StepBlocks), with its button while deny can be run (ready, or failed: the
// Retry); once it runs or ran, the notice only shows how it stands.
func OpenerNotice(inc session.Incident, o CardOptions, wait time.Duration) (fallback string, blocks []slack.Block) {
	return openerNotice(inc, o, wait, limitedWhy)
}

// limitedWhy is why a card waits, said in the notice, when Slack limits the channel.
const limitedWhy = "Slack is limiting posts in this channel"

// openerNotice is OpenerNotice saying why (a sentence without its full stop) the card is not
// in the channel yet: Slack limits the channel, or the post failed and the maintenance pass
// posts it (cardNotPosted).
func openerNotice(inc session.Incident, o CardOptions, wait time.Duration, why string) (fallback string, blocks []slack.Block) {
	st := inc.Step(session.StepDeny)
	runnable := inc.Open() && (st.Status == session.StatusReady || st.Status == session.StatusFailed)
	word := statusWord(st.Status)
	if d, ok := remediate.Def(session.StepDeny); ok {
		if w := reached(d, st); w != "" {
			word = w // "contained": the user is held, the live calls are still being ended
		}
	}
	intro := fmt.Sprintf("*%s* · %s, opened by %s: %s.", esc(inc.ID), esc(inc.Key()), userRef(inc.OpenedBy), cardFollows(inc, noticeWhere(inc), wait))
	if inc.MessageTS == "" {
		intro = fmt.Sprintf("⏳ *%s* · %s, opened by %s, is open. %s, so %s.",
			esc(inc.ID), esc(inc.Key()), userRef(inc.OpenedBy), why, cardFollows(inc, noticeWhere(inc), wait))
	}
	if runnable {
		intro += " You can deny all calls now, with the card's own button:"
	}
	state := ""
	if inc.MessageTS == "" && inc.Open() {
		state = " is open"
	}
	fallback = esc(fmt.Sprintf("⏳ %s %s%s: deny %s · %s", inc.ID, inc.Key(), state, word, cardFollows(inc, "this channel", wait)))
	blocks = append([]slack.Block{slack.NewSectionBlock(mrkdwn(intro), nil, nil)},
		StepBlocks(inc, o, session.StepDeny, runnable)...)
	return fallback, blocks
}

// CardDelayedText tells the opener, who has the notice already, that the card of inc (open)
// is still not posted, why (as for openerNotice), and about how long it waits (wait).
func CardDelayedText(inc session.Incident, wait time.Duration, why string) string {
	s := fmt.Sprintf("⏳ *%s* · %s is open. %s, so %s.", esc(inc.ID), esc(inc.Key()), why, cardFollows(inc, noticeWhere(inc), wait))
	if st := inc.Step(session.StepDeny); inc.Open() && (st.Status == session.StatusReady || st.Status == session.StatusFailed) {
		s += " Meanwhile, the Deny all calls button I sent you works as the card's would."
	}
	return s
}

// cardFollows says where the card of inc is, or that it follows there when Slack allows, in
// about wait (0: not said).
func cardFollows(inc session.Incident, where string, wait time.Duration) string {
	if inc.MessageTS != "" {
		return "its card is in " + where
	}
	return "the incident card follows in " + where + " when Slack allows" + inAbout(wait)
}

// inAbout says " (in about N s)" for wait, rounded up (0: nothing said).
func inAbout(wait time.Duration) string {
	if wait <= 0 {
		return ""
	}
	return fmt.Sprintf(" (in about %d s)", max(int((wait+time.Second-1)/time.Second), 1))
}

// LockdownCardDelayedText answers the opener of lockdown id whose card Slack did not take in
// time (kept open: the maintenance pass posts it), saying why (cardDelay) and about when.
func LockdownCardDelayedText(id string, wait time.Duration, why string) string {
	return fmt.Sprintf("⏳ Lockdown %s is open. %s, so its card follows in this channel when Slack allows%s; "+
		"`/compromised status %s` shows its progress meanwhile.", esc(id), why, inAbout(wait), esc(id))
}

// noticeWhere names inc's channel in a message to its opener.
func noticeWhere(inc session.Incident) string {
	if channelID.MatchString(inc.Channel) {
		return "<#" + inc.Channel + ">"
	}
	return "this channel"
}

// noticeOpener sends the opener of inc, who ran c, the notice (once per card post: postOpenCard).
func (a *App) noticeOpener(ctx context.Context, c *slack.SlashCommand, inc session.Incident, wait time.Duration) {
	text, blocks := OpenerNotice(inc, a.cardOptions(a.now()), wait)
	a.replyCommand(unwatched(ctx), c, text, blocks)
	a.logger(ctx).Info().Str("incident", inc.ID).Dur("wait", wait).Msg("the card waits for Slack: its opener got the Deny button")
}

// unwatched is ctx without a post's watch: the notice is not the card post.
func unwatched(ctx context.Context) context.Context { return withPostWatch(ctx, nil) }

// fromNotice reports whether a click came from inc's opener notice: an ephemeral message (Slack
// sends no `message` for one, and its container says is_ephemeral) in the incident's channel,
// clicked by the opener, on the deny step's button, its only one. Only this app can show an
// ephemeral message with its buttons, and Slack sends a click on one only from the person it
// was shown to, so such a click is not a forgery of the card's (onCard).
func fromNotice(cb *slack.InteractionCallback, act Action, inc session.Incident) bool {
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	return cb.Container.IsEphemeral && act.Kind == ActionStep && act.Step == session.StepDeny &&
		cb.User.ID == inc.OpenedBy && channel != "" && channel == inc.Channel
}

// noticeOutcome replaces the notice a click came from with the deny step as it stands in inc
// (contained, done, awaiting approval…), through the click's response_url: the opener sees it
// take hold there while the card may still wait for the channel. A click on the card: nothing.
func (a *App) noticeOutcome(ctx context.Context, c click, inc session.Incident) {
	if !c.notice || inc.ID == "" || c.cb.ResponseURL == "" {
		return
	}
	text, blocks := OpenerNotice(inc, a.cardOptions(a.now()), 0)
	if err := a.api.replaceEphemeral(ctx, c.cb.ResponseURL, text, blocks); err != nil {
		a.logger(ctx).Info().Str("incident", inc.ID).Str("code", slackCode(err)).Msg("replace the opener's notice (the card shows the step)")
	}
}
