package slackui

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/lockdown"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// This file renders a lockdown (many users on one card): the card, its confirm dialogs, its
// thread lines and the dry run. Like Card, each is a pure function of what it is given, and
// stays inside Block Kit's limits (50 blocks, 3000 characters a text) for 500 members: lists of
// users are capped, with "+N more", and the full detail is in each member's audit.

// Caps of the lists a lockdown card shows.
const (
	maxLockdownFailures = 15
	maxLockdownUsers    = 20
	maxPlanUsers        = 40
)

// LockdownCard renders lockdown l with its members' summary s.
func LockdownCard(l session.Lockdown, s lockdown.Summary, o CardOptions) (fallback string, blocks []slack.Block) {
	r := &lockdownRenderer{l: &l, s: &s, o: o}
	return r.fallback(), r.blocks()
}

type lockdownRenderer struct {
	l *session.Lockdown
	s *lockdown.Summary
	o CardOptions
}

func (r *lockdownRenderer) target() string {
	if r.l.Scope == session.ScopeDomain {
		return "every user of " + r.l.Domain
	}
	return fmt.Sprintf("%d named users", len(r.l.Members))
}

func (r *lockdownRenderer) fallback() string {
	s := r.s
	word := "🔒 Lockdown"
	if !r.l.Open() {
		word = "Closed lockdown (" + string(r.l.State) + ")"
	}
	return esc(truncate(fmt.Sprintf("%s %s: %s — %d of %d contained, %d failed", word, r.l.ID, r.target(),
		s.Contained, s.Total, len(s.Failures)), 1000))
}

func (r *lockdownRenderer) blocks() []slack.Block {
	l, s := r.l, r.s
	bs := r.top()
	bs = append(bs, r.evidence()...) // lockdownevidence.go
	if len(s.Failures) > 0 {
		lines := make([]string, 0, len(s.Failures))
		for _, f := range s.Failures {
			lines = append(lines, fmt.Sprintf("• %s · %s failed: %s (%s)", esc(f.Key), esc(string(f.Step)),
				esc(short(orDash(f.Message), 160)), esc(f.IncidentID)))
		}
		bs = append(bs, slack.NewSectionBlock(mrkdwn(joinCapped(fmt.Sprintf("❌ *%d failed* — *Retry failed* runs each one's failed step again:",
			len(s.Failures)), lines, maxLockdownFailures, maxSectionText, "failures")), nil, nil))
	}
	bs = append(bs, r.held()...) // lockdowngate.go
	if len(s.Unknown) > 0 {
		bs = append(bs, slack.NewSectionBlock(mrkdwn(userLines(fmt.Sprintf(
			"❓ *%d with no known original* — restore cannot put one back, so they stay in %s (choose one on each user's incident: `status <user>@<domain>`):",
			len(s.Unknown), esc(r.denyPolicy())), s.Unknown)), nil, nil))
	}
	if len(s.Missing) > 0 {
		bs = append(bs, slack.NewSectionBlock(mrkdwn(userLines(fmt.Sprintf(
			"⚠️ *%d device(s) deleted and not re-created* (their snapshots are kept):", len(s.Missing)), s.Missing)), nil, nil))
	}
	if l.Open() {
		bs = append(bs, r.approvals()...)
		bs = append(bs, r.buttons())
	}
	foot := "as of " + clockAt(r.o.Now, r.o.Now) + " · a line per batch in the thread; each user's detail: `status <user>@<domain>`, `bot audit <INC-…>`"
	return append(bs, slack.NewContextBlock("", mrkdwn(foot)))
}

// top is the card's head, shared with the answer to `status LCK-…`: title, who opened it,
// progress and steps.
func (r *lockdownRenderer) top() []slack.Block {
	l, s := r.l, r.s
	title := "🔒 Lockdown: " + r.target()
	switch l.State {
	case session.StateRestored:
		title = "✅ Closed lockdown (restored): " + r.target()
	case session.StateAborted:
		title = "⏹ Closed lockdown (aborted): " + r.target()
	}
	bs := []slack.Block{slack.NewHeaderBlock(plain(truncate(title, 135) + " · " + l.ID))}
	ctx := []slack.MixedElement{mrkdwn(fmt.Sprintf("opened by %s · %s · %d users · %d devices", userRef(l.OpenedBy),
		clockAt(l.CreatedAt, r.o.Now), s.Total, s.Devices))}
	if reason := remediate.CleanReason(l.Reason); reason != "" {
		ctx = append(ctx, plainVerbatim("“"+reason+"”"))
	}
	bs = append(bs, slack.NewContextBlock("", ctx...), slack.NewDividerBlock())
	bs = append(bs, slack.NewSectionBlock(mrkdwn(r.glance()), nil, nil))
	bs = append(bs, slack.NewSectionBlock(mrkdwn(r.steps()), nil, nil))
	return bs
}

// glance is the one-line progress: what the newest run does, and contained / pending / failed of N.
func (r *lockdownRenderer) glance() string {
	s := r.s
	pending := s.Total - s.Contained
	line := fmt.Sprintf("*%d contained* · %d pending · %d failed — of %d", s.Contained, pending, len(s.Failures), s.Total)
	if len(s.Held) > 0 {
		line += fmt.Sprintf(" · %d held by the restore gate", len(s.Held))
	}
	if s.Opened < s.Total {
		line += fmt.Sprintf(" · %d not opened yet", s.Total-s.Opened)
	}
	if run := r.l.LastRun(); run != nil {
		what := lockdown.RunTitle(run)
		if run.Done() {
			line += fmt.Sprintf("\nlast: *%s* by %s, finished %s", esc(what), userRef(run.Actor), clockAt(run.FinishedAt, r.o.Now))
		} else {
			line += fmt.Sprintf("\n⏳ *%s* running (by %s since %s) · %d steps running now", esc(what), userRef(run.Actor),
				clockAt(run.StartedAt, r.o.Now), s.Running)
		}
	}
	if !r.l.Open() {
		line += fmt.Sprintf("\nclosed: %d restored, %d aborted", s.Restored, s.Aborted)
	}
	return line
}

// steps counts the members per step: done / running / awaiting / failed.
func (r *lockdownRenderer) steps() string {
	var lines []string
	for i, d := range remediate.Runbook() {
		c := r.s.Steps[d.Step]
		done := c[session.StatusDone] + c[session.StatusWarnings]
		l := fmt.Sprintf("%d *%s*: %d/%d done", i+1, d.Title, done, r.s.Total)
		for _, st := range []session.Status{session.StatusRunning, session.StatusAwaiting, session.StatusFailed, session.StatusSkipped} {
			if c[st] > 0 {
				l += fmt.Sprintf(" · %d %s", c[st], statusWord(st))
			}
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

func (r *lockdownRenderer) approvals() []slack.Block {
	var bs []slack.Block
	steps := make([]session.Step, 0, len(r.s.Awaiting))
	for st := range r.s.Awaiting {
		steps = append(steps, st)
	}
	sort.Slice(steps, func(i, j int) bool { return stepIndex(steps[i]) < stepIndex(steps[j]) })
	for _, st := range steps {
		a := r.s.Awaiting[st]
		text := fmt.Sprintf("🙋 *%s* for %d users awaits approval by %s (asked by %s, expires %s)", esc(stepTitle(st)), a.N,
			r.approvers(), userRef(a.RequestedBy), clockAt(a.Expires, r.o.Now))
		ask := fmt.Sprintf("Approve and run now: %s?", r.change(st, a.N))
		note := ""
		style := slack.StylePrimary
		if a.OverGate > 0 {
			text += fmt.Sprintf(" · ⚠️ %d of them *over the restore gate*", a.OverGate)
			note = fmt.Sprintf("⚠️ %d OF THEM OVER THE RESTORE GATE (not met).", a.OverGate)
			style = slack.StyleDanger
		}
		bs = append(bs, slack.NewSectionBlock(mrkdwn(text), nil, nil))
		approve := slack.NewButtonBlockElement("approve:"+string(st), r.l.ID, plain("Approve"))
		approve.Style = slack.StylePrimary
		approve.Confirm = r.dialog("Approve "+string(st)+"?", note, ask, "Approve and run", style)
		reject := slack.NewButtonBlockElement("reject:"+string(st), r.l.ID, plain("Reject"))
		bs = append(bs, slack.NewActionBlock(fmt.Sprintf("la:%s:v%d", st, r.l.Version), approve, reject))
	}
	return bs
}

func (r *lockdownRenderer) buttons() slack.Block {
	n := r.s.Open
	var els []slack.BlockElement
	for _, d := range remediate.Runbook() {
		label := d.Title + " (all)"
		b := slack.NewButtonBlockElement("lockdown:"+string(d.Step), r.l.ID, plain(short(label, 75)))
		if d.Step == session.StepDeny && r.s.Contained < r.s.Total {
			b.Style = slack.StylePrimary
		}
		text := upperFirst(r.change(d.Step, n)) + "?"
		if r.o.ApprovalSteps[d.Step] {
			text = "Ask for approval to " + r.change(d.Step, n) + "? It runs when someone approves."
		}
		note := ""
		if d.Step == session.StepRestore {
			note = r.missingNote()
		}
		b.Confirm = r.dialog(d.Title+"?", note, text, confirmWord(d.Step), dialogStyle(d.Step))
		els = append(els, b)
	}
	if n := len(r.s.Failures) + len(r.s.Held); n > 0 {
		b := slack.NewButtonBlockElement("lockdown:"+OpRetry, r.l.ID, plain("Retry failed"))
		ask := fmt.Sprintf("Run the failed step again for the %d failed member(s)?", len(r.s.Failures))
		if len(r.s.Held) > 0 {
			ask = fmt.Sprintf("Run the failed step again for the %d failed member(s) and check the restore gate again for the %d held by it?",
				len(r.s.Failures), len(r.s.Held))
		}
		b.Confirm = r.dialog("Retry failed?", "", ask, "Retry", slack.StylePrimary)
		els = append(els, b)
	}
	if b := r.overGateButton(); b != nil {
		els = append(els, b)
	}
	abort := slack.NewButtonBlockElement("lockdown:"+OpAbort, r.l.ID, plain("Abort lockdown"))
	abort.Style = slack.StyleDanger
	abort.Confirm = r.dialog("Abort lockdown?", r.missingNote(), fmt.Sprintf(
		"Close the %d open incidents of %s without restoring? Users already denied stay in %s; each original is kept for a later restore.",
		n, r.l.ID, r.denyPolicy()), "Abort lockdown", slack.StyleDanger)
	els = append(els, abort)
	return slack.NewActionBlock(withMissing(fmt.Sprintf("l:v%d", r.l.Version), r.s.MissingToken), els...)
}

func dialogStyle(s session.Step) slack.Style {
	if s == session.StepRecreate {
		return slack.StyleDanger
	}
	return slack.StylePrimary
}

// change says what a step does to n members, with the counts of users and devices.
func (r *lockdownRenderer) change(s session.Step, n int) string {
	switch s {
	case session.StepDeny:
		return fmt.Sprintf("set the dial permission of %d users to %s and end their live calls", n, r.denyPolicy())
	case session.StepRecreate:
		return fmt.Sprintf("delete and re-create %d devices of %d users with new SIP passwords (sent only to you); phones must be re-provisioned", r.s.Devices, n)
	case session.StepReset:
		if r.o.PortalPassword {
			return fmt.Sprintf("reset the voicemail PIN, revoke the sessions and set a new portal password of %d users "+
				"(the new PINs and portal passwords are delivered only to you)", n)
		}
		return fmt.Sprintf("reset the voicemail PIN and revoke the sessions of %d users (the new PINs are sent only to you; "+
			"the portal passwords are not changed: reset them in the Manager Portal)", n)
	case session.StepRestore:
		return fmt.Sprintf("put each of %d users back to their own original dial permission (%d with none known stay in %s)", n,
			len(r.s.Unknown), r.denyPolicy())
	}
	return string(s)
}

func (r *lockdownRenderer) missingNote() string {
	if len(r.s.Missing) == 0 {
		return ""
	}
	return fmt.Sprintf("%d device(s) of %d user(s) are deleted and not re-created: closing keeps their snapshots for each user's next incident.",
		len(r.s.Missing), r.s.MissingUsers)
}

// dialog is a lockdown button's confirm: note (what the person must know first: the gate, the
// missing devices; may be "") then ask, the question the click answers. Slack caps a confirm's
// text at 300 characters, so the note is the part cut: the question always shows whole.
func (r *lockdownRenderer) dialog(title, note, ask, yes string, style slack.Style) *slack.ConfirmationBlockObject {
	const maxConfirmText = 300
	ask = short(ask, maxConfirmText)
	text := ask
	if note = short(note, maxConfirmText-utf8.RuneCountInString(ask)-1); note != "" {
		text = note + " " + ask
	}
	c := slack.NewConfirmationBlockObject(plain(short(title, 100)), plainVerbatim(text), plain(short(yes, 30)), plain("Cancel"))
	return c.WithStyle(style)
}

func (r *lockdownRenderer) approvers() string {
	if r.o.Approvers == "" {
		return "a second responder"
	}
	return r.o.Approvers
}

func (r *lockdownRenderer) denyPolicy() string {
	if r.o.DenyPolicy != "" {
		return r.o.DenyPolicy
	}
	return remediate.DefaultDenyPolicy
}

func stepIndex(s session.Step) int {
	for i, st := range session.Steps {
		if st == s {
			return i
		}
	}
	return len(session.Steps)
}

// userLines lists user@domain entries after head, capped.
func userLines(head string, users []string) string {
	lines := make([]string, len(users))
	for i, u := range users {
		lines[i] = "• " + esc(short(u, 120))
	}
	return joinCapped(head, lines, maxLockdownUsers, maxSectionText, "users")
}

// LockdownThreadLine renders one line of a lockdown's thread; an approval request mentions the
// approvers (but the requester), so the reply notifies them.
func LockdownThreadLine(l session.Lockdown, line session.LockdownLine, approvers []string) string {
	text := userRef(orBot(line.Actor)) + " · " + esc(short(line.Text, 1000)) + " · " + esc(l.ID)
	if line.Page {
		if who := approverMentions(approvers, line.Actor); who != "" {
			text = "🙋 " + who + ": " + text
		}
	}
	return text
}

func orBot(s string) string {
	if s == "" {
		return "bot"
	}
	return s
}

// LockdownPlanBlocks renders a lockdown's dry run (`plan domain …`, `plan users …`) for the
// ephemeral answer: the totals, what each step would do, and the members (capped).
func LockdownPlanBlocks(p lockdown.Plan) []slack.Block {
	members, devices, denied, joining := p.Totals()
	target := "every user of " + p.Target.Domain
	if p.Target.Scope == session.ScopeUsers {
		target = fmt.Sprintf("%d named users", members)
	}
	head := fmt.Sprintf("*Dry run of a lockdown of %s* — nothing was changed. As read from the PBX at %s.\n%d users · %d devices",
		esc(short(target, 100)), clockAt(p.ReadAt, p.ReadAt), members, devices)
	if joining > 0 {
		head += fmt.Sprintf(" · %d already have an open incident, which joins the lockdown", joining)
	}
	policies := map[string]int{}
	for _, m := range p.Members {
		policies[m.Policy]++
	}
	names := make([]string, 0, len(policies))
	for k := range policies {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		return policies[names[i]] > policies[names[j]] || policies[names[i]] == policies[names[j]] && names[i] < names[j]
	})
	var from []string
	for _, k := range names {
		from = append(from, fmt.Sprintf("%d from %s", policies[k], esc(short(orDash(k), 60))))
	}
	deny := fmt.Sprintf("1 *%s*: `PUT` each user's `dial-policy` → %s, read back; live calls ended (%s)", stepTitle(session.StepDeny),
		esc(p.DenyPolicy), strings.Join(capStrings(from, 8), ", "))
	steps := []string{deny,
		fmt.Sprintf("2 *%s*: %d devices deleted and created again with the same settings and new SIP passwords (shown only to whoever runs it)",
			stepTitle(session.StepRecreate), devices),
		fmt.Sprintf("3 *%s*: %d voicemail PINs reset, %d users' sessions revoked", stepTitle(session.StepReset), members, members),
		fmt.Sprintf("4 *%s*: each user back to their own original dial permission", stepTitle(session.StepRestore)),
	}
	if denied > 0 {
		steps[3] += fmt.Sprintf("; %d already in %s have no known original unless an earlier incident recorded it: they stay denied",
			denied, esc(p.DenyPolicy))
	}
	bs := []slack.Block{slack.NewSectionBlock(mrkdwn(head), nil, nil), slack.NewSectionBlock(mrkdwn(strings.Join(steps, "\n")), nil, nil)}
	lines := make([]string, 0, len(p.Members))
	for _, m := range p.Members {
		l := fmt.Sprintf("• %s · %s · %d device(s)", esc(m.Key()), esc(short(orDash(m.Policy), 60)), len(m.Devices))
		if len(m.Devices) > 0 {
			l += ": " + esc(short(strings.Join(m.Devices, ", "), 120))
		}
		if m.Open != "" {
			l += " · joins " + esc(m.Open)
		}
		if m.DevicesErr != "" {
			l += " · ⚠️ devices not read: " + esc(short(m.DevicesErr, 100))
		}
		lines = append(lines, l)
	}
	bs = append(bs, slack.NewSectionBlock(mrkdwn(joinCapped("*Users*", lines, maxPlanUsers, maxSectionText, "users")), nil, nil))
	bs = append(bs, slack.NewContextBlock("", mrkdwn("Each user becomes an incident of their own (status and audit per user). Passwords and PINs are generated when a step runs and shown only to the person who runs it.")))
	return bs
}

func capStrings(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("%d more", len(s)-n))
}
