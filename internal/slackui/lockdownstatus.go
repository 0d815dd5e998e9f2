package slackui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/lockdown"
	"github.com/compromised-responder/bot/internal/session"
)

// This file answers `/compromised status LCK-…`: the lockdown's progress (the card's head) and
// its members' states, those that need attention first, in an ephemeral answer.

// maxStatusMembers caps the members `status LCK-…` lists (each user's own: status <user>@<domain>).
const maxStatusMembers = 40

// LockdownStatus renders lockdown l for the ephemeral answer to `status LCK-…`.
func LockdownStatus(l session.Lockdown, s lockdown.Summary, members []lockdown.MemberStatus, o CardOptions) (fallback string, blocks []slack.Block) {
	r := &lockdownRenderer{l: &l, s: &s, o: o}
	bs := r.top()
	bs = append(bs, r.evidence()...)
	lines := make([]string, 0, len(members))
	for _, m := range members {
		lines = append(lines, memberLine(m))
	}
	head := fmt.Sprintf("*Members* — %d open · %d restored · %d aborted", s.Open, s.Restored, s.Aborted)
	if n := s.Total - s.Opened; n > 0 {
		head += fmt.Sprintf(" · %d not opened yet", n)
	}
	head += " (those that need attention first):"
	bs = append(bs, slack.NewSectionBlock(mrkdwn(joinCapped(head, lines, maxStatusMembers, maxSectionText, "users")), nil, nil))
	foot := "as of " + clockAt(o.Now, o.Now) + " · each user's detail: `status <user>@<domain>`, `bot audit <INC-…>`"
	return r.fallback(), append(bs, slack.NewContextBlock("", mrkdwn(foot)))
}

// memberLine is one member: user@domain, incident, each step's status, and its note.
func memberLine(m lockdown.MemberStatus) string {
	l := "• " + esc(m.Member.Key())
	inc := m.Incident
	if inc == nil {
		return l + " · " + esc(m.Note)
	}
	l += " · " + esc(inc.ID)
	if !inc.Open() {
		l += " · " + esc(string(inc.State))
	}
	steps := make([]string, len(session.Steps))
	for i, s := range session.Steps {
		steps[i] = string(s) + " " + statusIcon(inc.Step(s).Status)
	}
	l += " · " + strings.Join(steps, " ")
	if m.Note != "" {
		l += " — " + esc(short(m.Note, 160))
	}
	if m.AskedBy != "" {
		l += " (asked by " + userRef(m.AskedBy) + ")" // a mention, as the card's approval line
	}
	return l
}

// cmdLockdownStatus answers `status LCK-…`.
func (a *App) cmdLockdownStatus(ctx context.Context, c *slack.SlashCommand, id string) {
	if a.cfg.Lockdowns == nil {
		a.replyCommand(ctx, c, notAvailable, nil)
		return
	}
	l, sum, members, err := a.cfg.Lockdowns.Status(ctx, id)
	if errors.Is(err, session.ErrNotFound) {
		a.replyCommand(ctx, c, "I found no lockdown "+esc(id)+".", nil)
		return
	}
	if err != nil {
		a.logErr(ctx, err, "", "lockdown status")
		a.replyCommand(ctx, c, "⚠️ "+esc(lockdown.UserMessage(err)), nil)
		return
	}
	text, blocks := LockdownStatus(l, sum, members, a.cardOptions(a.now()))
	a.replyCommand(ctx, c, text, blocks)
}
