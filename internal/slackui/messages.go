package slackui

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/session"
)

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
	"• `/compromised status [INC-XXXXXX | <user>@<domain>]`\n" +
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

// BusyText answers a click when every worker is busy: nothing was started.
func BusyText() string {
	return "The bot is busy right now, so nothing was started. Please try again in a moment."
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
			l += " — " + esc(short(CleanReason(inc.Live.DisplayName), 80))
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

// AuditLine renders one audit entry as a thread reply: actor, what happened, step, before → after,
// detail. Audit entries never hold secrets; everything but the actor's mention is escaped.
func AuditLine(e session.AuditEntry) string {
	var b strings.Builder
	b.WriteString(userRef(e.Actor))
	b.WriteString(" · ")
	action := strings.Fields(strings.NewReplacer(".", " ", "_", " ").Replace(e.Action))
	if e.Step != "" && !strings.Contains(e.Action, string(e.Step)) {
		action = append([]string{string(e.Step)}, action...)
	}
	b.WriteString(esc(short(strings.Join(action, " "), 100)))
	if e.Before != "" || e.After != "" {
		fmt.Fprintf(&b, " · %s → %s", orDash(esc(short(e.Before, 200))), orDash(esc(short(e.After, 200))))
	}
	if e.Detail != "" {
		b.WriteString(" · " + esc(short(e.Detail, 500)))
	}
	if e.IncidentID != "" {
		b.WriteString(" · " + esc(short(e.IncidentID, 20)))
	}
	return b.String()
}

// ReminderText is the thread reminder for an incident whose user is still in the deny policy.
func ReminderText(inc session.Incident, now time.Time) string {
	since := inc.CreatedAt
	if d := inc.Step(session.StepDeny); !d.FinishedAt.IsZero() {
		since = d.FinishedAt
	}
	deny := inc.DenyPolicy
	if deny == "" {
		deny = "Deny All"
	}
	was := "the original is unknown, so restore will ask for it"
	if o := inc.Original; o != nil && o.Known {
		was = "it was " + esc(short(o.Policy, 100))
	}
	return fmt.Sprintf("⏰ %s %s has been in %s for %s (since %s). When the devices and credentials are safe, "+
		"restore the dial permission (%s), or abort the incident to keep the user blocked. (%s)",
		userRef(inc.OpenedBy), esc(inc.Key()), esc(short(deny, 100)), age(since, now), clockAt(since, now), was, esc(inc.ID))
}

// SecretLine is one credential for the requester's ephemeral message. Value may be empty for a
// line that only says what happens (a MAC-provisioned desk phone gets its credentials itself).
type SecretLine struct {
	Label        string // "softphone 1001a", "voicemail PIN of 1001@acme.example"
	Value        string // the secret; shown once, only here
	Instructions string // what to do with it, plain words
}

// MaxSecretsPerMessage is the most SecretLines one SecretsBlocks message holds within Block Kit's
// 50 blocks; the app sends more in several messages.
const MaxSecretsPerMessage = 45

// SecretsFallbackText is the notification text to send with SecretsBlocks: it holds no secret,
// because notification previews show it on lock screens.
const SecretsFallbackText = "New credentials (only visible to you)"

// SoftphoneSecret is the line for a re-created device that is not MAC-provisioned.
func SoftphoneSecret(device, password string) SecretLine {
	return SecretLine{Label: "SIP password of device " + device, Value: password,
		Instructions: "Enter this SIP password in the softphone (or on the phone) now; the old one no longer works."}
}

// DeskPhoneNotice is the line for a MAC-provisioned desk phone: no password is shown.
func DeskPhoneNotice(device string) SecretLine {
	return SecretLine{Label: "Desk phone " + device,
		Instructions: "It picks its new credentials up at its next provisioning check or reboot; reboot it to do that now."}
}

// PINSecret is the line for a new voicemail PIN.
func PINSecret(user, pin string) SecretLine {
	return SecretLine{Label: "Voicemail PIN of " + user, Value: pin,
		Instructions: "Give it to the user over a channel you have verified (not by e-mail to a possibly compromised mailbox)."}
}

// SecretsBlocks renders new credentials for the requester's ephemeral message: the only place a
// secret is ever rendered. Each value is a plain_text field, shown exactly as given; labels and
// instructions are escaped. Send at most MaxSecretsPerMessage lines per message.
func SecretsBlocks(secrets []SecretLine) []slack.Block {
	bs := []slack.Block{slack.NewSectionBlock(mrkdwn("🔐 *New credentials* — only you can see this message. "+
		"They are not stored anywhere readable, so use them now."), nil, nil)}
	for _, s := range secrets {
		text := "*" + esc(short(s.Label, 200)) + "*"
		if s.Instructions != "" {
			text += "\n" + esc(short(s.Instructions, 1000))
		}
		var fields []*slack.TextBlockObject
		if s.Value != "" {
			fields = []*slack.TextBlockObject{plainVerbatim(s.Value)}
		}
		bs = append(bs, slack.NewSectionBlock(mrkdwn(text), fields, nil))
	}
	return bs
}

// ---- confirm dialogs ------------------------------------------------------------------------

// confirm builds the dialog of a button: exactly what will change. kind "request" is a step button
// that only asks for approval.
func (r *renderer) confirm(kind ActionKind, s session.Step) *slack.ConfirmationBlockObject {
	inc := r.inc
	var title, text, yes string
	style := slack.StylePrimary
	switch kind {
	case ActionStep:
		title, yes = stepTitle(s)+"?", confirmWord(s)
		text = upperFirst(r.change(s)) + "?" + r.changeNote(s)
		if s == session.StepRecreate {
			style = slack.StyleDanger
		}
	case "request":
		title, yes = "Request approval?", "Request approval"
		text = "Ask for approval to " + r.change(s) + "? It runs as soon as someone approves." + r.changeNote(s)
	case ActionApprove:
		title, yes = "Approve "+string(s)+"?", "Approve and run"
		text = "Approve and run now: " + r.change(s) + "?" + r.changeNote(s)
	case ActionForceRestore:
		title, yes, style = "Force restore?", "Force restore", slack.StyleDanger
		live := "unknown"
		if inc.Live != nil {
			live = inc.Live.DialPolicy
		}
		text = fmt.Sprintf("%s's dial permission is now %s, not %s as the bot set it. Set it to the original %s anyway?",
			inc.Key(), live, r.denyPolicy(), r.original())
	case ActionCredentials:
		title, yes = "Re-send credentials?", "Re-send"
		text = "Rotate the SIP password of each re-created device that is not provisioned by MAC again, and send the new ones only to you? The passwords sent before stop working."
	case ActionAbort:
		title, yes, style = "Abort incident?", "Abort incident", slack.StyleDanger
		if inc.Step(session.StepDeny).Status.Finished() {
			text = fmt.Sprintf("Close %s without restoring? %s stays in %s; the original %s is kept for a later restore.",
				inc.ID, inc.Key(), r.denyPolicy(), r.original())
		} else {
			text = fmt.Sprintf("Close %s without running the remaining steps?", inc.ID)
		}
	}
	c := slack.NewConfirmationBlockObject(plain(short(title, 100)), plainVerbatim(short(text, 300)), plain(short(yes, 30)), plain("Cancel"))
	return c.WithStyle(style)
}

func confirmWord(s session.Step) string {
	switch s {
	case session.StepRecreate:
		return "Re-create"
	case session.StepReset:
		return "Reset"
	case session.StepRestore:
		return "Restore"
	}
	return "Deny all calls"
}

func (r *renderer) original() string {
	if o := r.inc.Original; o != nil && o.Known {
		return o.Policy
	}
	return "dial permission (unknown)"
}

// change says what a step will do, as a clause ("set 1001@acme.example's dial permission from …").
func (r *renderer) change(s session.Step) string {
	inc := r.inc
	switch s {
	case session.StepDeny:
		cur := "its current policy"
		if inc.Live != nil && inc.Live.DialPolicy != "" {
			cur = inc.Live.DialPolicy
		}
		return fmt.Sprintf("set %s's dial permission from %s to %s and end its live calls", inc.Key(), cur, r.denyPolicy())
	case session.StepRecreate:
		return fmt.Sprintf("delete and re-create %s's devices (%s) with the same settings", inc.Key(), r.deviceNames())
	case session.StepReset:
		return fmt.Sprintf("revoke %s's portal sessions and set a new voicemail PIN", inc.Key())
	}
	if o := inc.Original; o == nil || !o.Known {
		return fmt.Sprintf("restore %s's dial permission from %s (the original is unknown: you will be asked which policy to set)", inc.Key(), r.denyPolicy())
	}
	return fmt.Sprintf("set %s's dial permission from %s back to %s", inc.Key(), r.denyPolicy(), inc.Original.Policy)
}

// changeNote adds what else the engineer must know before confirming a step.
func (r *renderer) changeNote(s session.Step) string {
	inc := r.inc
	switch s {
	case session.StepRecreate:
		return " New SIP passwords will be generated; the old ones stop working."
	case session.StepReset:
		n := " The new PIN is shown only to you."
		if r.o.ResetEmail {
			to := "the user's address"
			if inc.Live != nil && inc.Live.EmailMasked != "" {
				to = inc.Live.EmailMasked
			}
			n += " A password-reset email goes to " + to + "."
		}
		return n
	case session.StepRestore:
		var missing []string
		for _, x := range []session.Step{session.StepRecreate, session.StepReset} {
			if !inc.Step(x).Status.Finished() {
				missing = append(missing, confirmWord(x))
			}
		}
		if len(missing) > 0 {
			return " Warning: " + strings.Join(missing, " and ") + " not done, so the stolen credentials still work; they will be recorded as skipped."
		}
	}
	return ""
}

func (r *renderer) deviceNames() string {
	var names []string
	for _, d := range r.inc.Devices {
		names = append(names, d.Device)
	}
	if len(names) == 0 && r.inc.Live != nil {
		for _, d := range r.inc.Live.Devices {
			names = append(names, d.Device)
		}
	}
	if len(names) == 0 {
		return "all of them"
	}
	const show = 5
	if len(names) > show {
		return strings.Join(trimAll(names[:show], 24), ", ") + fmt.Sprintf(" and %d more", len(names)-show)
	}
	return strings.Join(trimAll(names, 24), ", ")
}

// ---- text helpers ---------------------------------------------------------------------------

var (
	slackID   = regexp.MustCompile(`^[UWB][A-Z0-9]{2,20}$`)
	channelID = regexp.MustCompile(`^[CGD][A-Z0-9]{2,20}$`)
)

// userRef renders an actor: a Slack user ID as a mention, "cli:name" and anything else as text.
func userRef(id string) string {
	switch {
	case slackID.MatchString(id):
		return "<@" + id + ">"
	case id == "bot":
		return "the bot"
	case strings.HasPrefix(id, "cli:"):
		return esc(short(id[4:], 40)) + " (CLI)"
	case id == "":
		return "someone"
	}
	return esc(short(id, 40))
}

// esc makes text safe inside mrkdwn: with &, < and > escaped no mention (<!channel>, <@U…>) or
// link can form, and every mrkdwn object is sent verbatim so Slack does not auto-link either.
func esc(s string) string { return mrkdwnEscaper.Replace(s) }

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// short cleans text from outside (the PBX, the store) to one line of at most n characters.
func short(s string, n int) string {
	return truncate(strings.Join(strings.FieldsFunc(strings.ToValidUTF8(s, "\uFFFD"), isSpace), " "), n)
}

// codeSafe prepares text for a `code span`: escaped and without backticks.
func codeSafe(s string) string { return esc(strings.ReplaceAll(s, "`", "'")) }

func trimAll(ss []string, n int) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = short(s, n)
	}
	return out
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// age writes a duration for people: "45m", "2h 5m", "3d 4h".
func age(t, now time.Time) string {
	d := now.Sub(t)
	if t.IsZero() || now.IsZero() || d < 0 {
		return "?"
	}
	switch {
	case d < time.Minute:
		return "under 1m"
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}

// mrkdwn is a verbatim mrkdwn text object: Slack does not auto-link URLs, channels or mentions in it.
func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, true)
}

// plain is a plain_text object with emoji shortcodes on (for our own labels).
func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}

// plainVerbatim is plain_text shown exactly as given (user text, secrets, dialog text).
func plainVerbatim(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

// clock writes a time as "02:15 UTC", with the date when it is not on Now's (UTC) day.
func (r *renderer) clock(t time.Time) string { return clockAt(t, r.o.Now) }

func clockAt(t, now time.Time) string {
	if t.IsZero() {
		return "(time unknown)"
	}
	t = t.UTC()
	if !now.IsZero() {
		if y, m, d := now.UTC().Date(); t.Year() != y || t.Month() != m || t.Day() != d {
			return t.Format("2 Jan 15:04 UTC")
		}
	}
	return t.Format("15:04 UTC")
}

// joinCapped joins head and lines with newlines, keeping at most maxLines lines and maxRunes
// characters, and says how many were left out ("+12 more devices").
func joinCapped(head string, lines []string, maxLines, maxRunes int, noun string) string {
	var b strings.Builder
	b.WriteString(head)
	used := utf8.RuneCountInString(head)
	for i, l := range lines {
		n := utf8.RuneCountInString(l) + 1
		if i >= maxLines || used+n > maxRunes-40 {
			fmt.Fprintf(&b, "\n+%d more %s", len(lines)-i, noun)
			break
		}
		b.WriteString("\n")
		b.WriteString(l)
		used += n
	}
	return b.String()
}
