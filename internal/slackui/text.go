package slackui

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// This file holds the text helpers every message uses: escaping, mentions, trimming, times and
// Block Kit text objects.

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
