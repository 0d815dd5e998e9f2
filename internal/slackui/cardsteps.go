package slackui

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// The card's step sections: one per runbook step, with its status, result lines and buttons.

// stepTitle is the runbook's title of a step.
func stepTitle(s session.Step) string {
	d, _ := remediate.Def(s)
	return d.Title
}

// step renders one step: a section, with its button as accessory, or followed by an actions
// block when it has more than one button.
func (r *renderer) step(n int, d remediate.StepDef) []slack.Block {
	inc := r.inc
	s := d.Step
	st := inc.Step(s)
	title := fmt.Sprintf("%d %s *%s*", n, statusIcon(st.Status), d.Title)
	waiting := remediate.Waiting(inc, s) // the step the runbook wants finished first, if any
	gated := waiting != ""
	live := r.buttons && !gated
	needsApproval := r.o.ApprovalSteps[s]
	var text []string
	var btns []*slack.ButtonBlockElement

	switch st.Status {
	case session.StatusReady:
		switch {
		case !inc.Open():
			text = append(text, title+"  not run")
		case gated:
			text = append(text, title+"  _after "+string(waiting)+"_")
		case needsApproval:
			text = append(text, title+"  needs approval by "+r.approvers())
			btns = append(btns, r.stepButton(s, "Request approval", true))
		default:
			text = append(text, title)
			btns = append(btns, r.stepButton(s, d.Title, false))
		}
	case session.StatusAwaiting:
		expired := !st.ApprovalExpires.IsZero() && !r.o.Now.IsZero() && r.o.Now.After(st.ApprovalExpires)
		if expired {
			text = append(text, fmt.Sprintf("%s  approval requested by %s %s *expired* at %s",
				title, userRef(st.RequestedBy), r.clock(st.RequestedAt), r.clock(st.ApprovalExpires)))
			btns = append(btns, r.stepButton(s, "Request again", true))
		} else {
			l := fmt.Sprintf("%s  awaiting approval · asked by %s %s · may approve: %s",
				title, userRef(st.RequestedBy), r.clock(st.RequestedAt), r.approvers())
			if !st.ApprovalExpires.IsZero() {
				l += " · expires " + r.clock(st.ApprovalExpires)
			}
			text = append(text, l)
			if p := remediate.RequestedPolicy(inc); s == session.StepRestore && p != "" {
				text = append(text, r.chosenLine(p, st.RequestedBy))
			}
			if s == session.StepRestore && st.Force {
				text = append(text, "⚠️ *Forced restore*: overwrites the live dial permission "+esc(r.livePolicy())+" with "+esc(r.restoreTarget()))
			}
			if s == session.StepRestore && remediate.RequestedOverGate(inc) {
				text = append(text, "⚠️ *Restore over the gate*: the restore gate is not met")
			}
			btns = append(btns, r.button("approve:"+string(s), "Approve", r.primary(), r.confirm(ActionApprove, s)))
		}
		btns = append(btns, r.button("reject:"+string(s), "Reject", slack.StyleDefault, nil))
	case session.StatusRunning:
		l := fmt.Sprintf("%s  %s%s · %s", title, r.who(st, st.StartedAt), r.approvedBy(st), progressText(inc, d, st))
		if word := reached(d, st); word != "" {
			// e.g. deny: the user is contained, the live calls are still being ended.
			l = fmt.Sprintf("%s  %s%s · *%s* · finishing…", title, r.who(st, st.StartedAt), r.approvedBy(st), esc(word))
		}
		if !st.LeaseUntil.IsZero() && !r.o.Now.IsZero() && r.o.Now.After(st.LeaseUntil) {
			l += " _(runner stopped answering: resuming)_"
		}
		text = append(text, l)
	case session.StatusDone:
		sum := esc(short(st.Summary, maxErrText))
		if sum == "" {
			sum = "verified"
		}
		text = append(text, fmt.Sprintf("%s  %s%s · %s", title, r.who(st, st.FinishedAt), r.approvedBy(st), sum))
	case session.StatusWarnings:
		l := fmt.Sprintf("%s  %s%s · done with warnings", title, r.who(st, st.FinishedAt), r.approvedBy(st))
		if st.Summary != "" {
			l += " · " + esc(short(st.Summary, maxErrText))
		}
		text = append(text, l)
		text = append(text, subLines(st.SubResults)...)
	case session.StatusFailed:
		msg := esc(short(st.ErrMessage, maxErrText))
		if msg == "" {
			msg = "no reason recorded"
		}
		l := fmt.Sprintf("%s  %s · failed: %s", title, r.who(st, st.FinishedAt), msg)
		if live && needsApproval {
			l += " · Retry asks for approval again"
		}
		text = append(text, l)
		text = append(text, subLines(st.SubResults)...)
		if live {
			btns = append(btns, r.stepButton(s, "Retry", needsApproval))
			if s == session.StepRestore && st.ErrKind == remediate.KindDrift {
				btns = append(btns, r.button("force:restore", "Force restore", slack.StyleDanger, r.confirm(ActionForceRestore, s)))
			}
			if b := r.overGateButton(st); s == session.StepRestore && b != nil {
				btns = append(btns, b)
			}
		}
	case session.StatusSkipped:
		why := esc(short(st.SkipReason, maxErrText))
		if why == "" {
			why = "not run"
		}
		text = append(text, fmt.Sprintf("%s  skipped: %s", title, why))
	default:
		text = append(text, fmt.Sprintf("%s  %s", title, esc(short(string(st.Status), 40))))
	}
	if s == session.StepRecreate && st.Status != session.StatusSkipped {
		text = append(text, unsealableLines(inc.Devices)...)
	}
	if s == session.StepRecreate {
		text = append(text, missingLines(inc)...)
	}
	if !r.buttons || (gated && st.Status == session.StatusReady) {
		btns = nil
	}

	body := joinCapped(text[0], text[1:], maxSubLines+maxDeviceLines, maxSectionText, "lines")
	id := fmt.Sprintf("s:%s:v%d", s, inc.Version)
	aid := fmt.Sprintf("a:%s:v%d", s, inc.Version)
	if s == session.StepRestore {
		// The restore dialogs name the missing devices: the click confirms exactly those.
		_, tok := remediate.DevicesMissing(inc)
		id, aid = withMissing(id, tok), withMissing(aid, tok)
	}
	switch len(btns) {
	case 0:
		return []slack.Block{slack.NewSectionBlock(mrkdwn(body), nil, nil, slack.SectionBlockOptionBlockID(id))}
	case 1:
		return []slack.Block{slack.NewSectionBlock(mrkdwn(body), nil, slack.NewAccessory(btns[0]), slack.SectionBlockOptionBlockID(id))}
	}
	els := make([]slack.BlockElement, len(btns))
	for i, b := range btns {
		els[i] = b
	}
	return []slack.Block{
		slack.NewSectionBlock(mrkdwn(body), nil, nil, slack.SectionBlockOptionBlockID(id)),
		slack.NewActionBlock(aid, els...),
	}
}

// primary gives the primary style to the first actionable step button of the card (the next safe
// action), and the default style to every later one.
func (r *renderer) primary() slack.Style {
	if r.primaryUsed {
		return slack.StyleDefault
	}
	r.primaryUsed = true
	return slack.StylePrimary
}

func (r *renderer) stepButton(s session.Step, label string, request bool) *slack.ButtonBlockElement {
	kind := ActionStep
	if request {
		kind = "request"
	}
	return r.button("step:"+string(s), label, r.primary(), r.confirm(kind, s))
}

func (r *renderer) button(actionID, label string, style slack.Style, c *slack.ConfirmationBlockObject) *slack.ButtonBlockElement {
	b := slack.NewButtonBlockElement(actionID, r.inc.ID, plain(short(label, 75)))
	b.Style = style
	if c != nil {
		b.Confirm = c
	}
	return b
}

func (r *renderer) approvers() string {
	if r.o.Approvers == "" {
		return "a second responder"
	}
	return r.o.Approvers
}

// who is "<@U1> 02:15": the actor of record and when.
func (r *renderer) who(st *session.StepState, at time.Time) string {
	parts := []string{}
	if st.RequestedBy != "" {
		parts = append(parts, userRef(st.RequestedBy))
	}
	if !at.IsZero() {
		parts = append(parts, r.clock(at))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, " ")
}

func (r *renderer) approvedBy(st *session.StepState) string {
	s := ""
	if st.ApprovedBy != "" {
		s = " · approved by " + userRef(st.ApprovedBy)
	}
	if st.Force {
		s += " · forced over a changed dial permission"
	}
	return s
}

// reached is what a running step has already achieved, by the runbook ("" = nothing yet).
func reached(d remediate.StepDef, st *session.StepState) string {
	if d.Reached == nil || st.Status != session.StatusRunning {
		return ""
	}
	return d.Reached(st)
}

// progressText says how far a running step is, by the runbook's count of its units (recreate:
// devices back), else just that it runs.
func progressText(inc *session.Incident, d remediate.StepDef, st *session.StepState) string {
	if d.Count == nil {
		return "running…"
	}
	done, total := d.Count(inc, st)
	if total == 0 {
		return "running…"
	}
	return fmt.Sprintf("%d of %d done…", done, total)
}

var outcomeWords = map[session.Outcome]string{
	session.OutcomeVerified:    "verified",
	session.OutcomeRequested:   "requested",
	session.OutcomeNotPossible: "not possible",
	session.OutcomeFailed:      "failed",
	session.OutcomeSkipped:     "skipped",
}

// subLines lists a step's sub-actions as "name: outcome detail".
func subLines(subs []session.SubResult) []string {
	out := make([]string, 0, len(subs))
	for _, s := range subs {
		word, ok := outcomeWords[s.Outcome]
		if !ok {
			word = esc(short(string(s.Outcome), 30))
		}
		l := "• " + esc(short(s.Name, 80)) + ": " + word
		switch d := esc(short(s.Detail, 200)); {
		case d == "":
		case strings.HasPrefix(d, "("):
			l += " " + d
		default:
			l += " — " + d
		}
		out = append(out, l)
	}
	return out
}

// missingLines says which devices are deleted and not re-created, and what becomes of them.
func missingLines(inc *session.Incident) []string {
	names, _ := remediate.DevicesMissing(inc)
	if len(names) == 0 {
		return nil
	}
	const few = 5
	shown := names
	if len(shown) > few {
		shown = shown[:few]
	}
	list := make([]string, len(shown))
	for i, n := range shown {
		list[i] = "`" + codeSafe(short(n, 64)) + "`"
	}
	l := strings.Join(list, ", ")
	if len(names) > few {
		l += fmt.Sprintf(" and %d more", len(names)-few)
	}
	switch {
	case !inc.Open():
		return []string{"⚠️ Not re-created: " + l + " (deleted). The snapshot is kept for this user's next incident, which can re-create it"}
	case inc.DevicesAt.IsZero():
		return []string{"⚠️ Deleted by an earlier incident and never re-created: " + l + ". *Re-create devices* re-creates it from the kept snapshot"}
	}
	return []string{"⚠️ Deleted and not re-created yet: " + l + ". Retry continues; closing the incident keeps the snapshot for the user's next incident"}
}

// unsealableLines tells the engineer which phones need credentials entered again (no SNAPSHOT_KEY);
// beyond a few devices it summarises in one line.
func unsealableLines(devs []session.DeviceSnapshot) []string {
	var names []string
	var out []string
	for _, d := range devs {
		if len(d.Unsealable) == 0 {
			continue
		}
		names = append(names, "`"+codeSafe(short(d.Device, 64))+"`")
		fields := make([]string, len(d.Unsealable))
		for i, f := range d.Unsealable {
			fields[i] = esc(short(f, 40))
		}
		out = append(out, fmt.Sprintf("⚠️ %s: %s not kept (no SNAPSHOT_KEY): enter it on the phone again after re-create",
			names[len(names)-1], strings.Join(fields, ", ")))
	}
	const few = 3
	if len(out) <= few {
		return out
	}
	return []string{fmt.Sprintf("⚠️ %d devices (%s and %d more): provisioning credentials not kept (no SNAPSHOT_KEY): "+
		"enter them on the phones again after re-create", len(names), strings.Join(names[:few], ", "), len(names)-few)}
}

func statusIcon(s session.Status) string {
	switch s {
	case session.StatusAwaiting:
		return "⏸"
	case session.StatusRunning:
		return "⏳"
	case session.StatusDone:
		return "✅"
	case session.StatusWarnings:
		return "⚠️"
	case session.StatusFailed:
		return "❌"
	case session.StatusSkipped:
		return "⏭"
	}
	return "⬜"
}

func statusWord(s session.Status) string {
	switch s {
	case session.StatusAwaiting:
		return "awaiting approval"
	case session.StatusWarnings:
		return "done with warnings"
	case "":
		return "ready"
	}
	return string(s)
}
