package slackui

import (
	"context"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/evidence"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// This file renders the restore gate (session.Gate, remediate/gate.go) on the card and in the
// restore dialogs, and handles its button. An unmet gate holds restore: the Restore click is
// refused with the reason on the card, and only then does the card offer a red "Restore over
// the gate" whose dialog spells out what is unmet; that second click is the explicit
// confirmation, audited as "restored over the gate".

// ActionOverGate is the "Restore over the gate" button (gate:restore).
const ActionOverGate ActionKind = "gate"

// gateShown reports whether the card shows the gate: stored, contained, not yet restored.
func (r *renderer) gateShown() bool {
	inc := r.inc
	return inc.Gate != nil && inc.Open() && inc.Step(session.StepDeny).Status.Finished() &&
		!inc.Step(session.StepRestore).Status.Finished()
}

func (r *renderer) gate() []slack.Block {
	if !r.gateShown() {
		return nil
	}
	g := r.inc.Gate
	head := "*Restore gate*  ✅ met: restore may go ahead"
	if r.gateProblems() != "" {
		head = "*Restore gate*  ⚠️ *not met*: restore is held until it is, or until someone restores over the gate"
	}
	lines := []string{head}
	since := "since containment (" + r.clock(g.Since) + ")"
	switch {
	case g.CallsUnavailable != "":
		lines = append(lines, "• International or premium calls "+since+": _could not be read_ ("+esc(short(g.CallsUnavailable, maxErrText))+")")
	case len(g.Risky) == 0:
		lines = append(lines, "• International or premium calls "+since+": none")
	default:
		var calls []string
		for _, c := range g.Risky[:min(len(g.Risky), 3)] {
			calls = append(calls, fmt.Sprintf("`%s` %s%s at %s", codeSafe(short(c.Number, 32)), esc(short(c.Label, 64)),
				classNote(c.Class), r.clock(c.At)))
		}
		more := ""
		if len(g.Risky) > 3 {
			more = fmt.Sprintf(" and %d more", len(g.Risky)-3)
		}
		lines = append(lines, fmt.Sprintf("• ⚠️ %s %s: %s%s", plural(len(g.Risky), "international or premium call"), since,
			strings.Join(calls, ", "), more))
	}
	switch {
	case g.DevicesUnavailable != "":
		lines = append(lines, "• Re-created devices: _could not be read_ ("+esc(short(g.DevicesUnavailable, maxErrText))+")")
	case g.RecreatedAt.IsZero():
		lines = append(lines, "• Re-created devices: none yet (re-create first, or the old credentials still work)")
	}
	var devs []string
	for _, d := range g.Devices {
		l := "• `" + codeSafe(short(d.Device, 64)) + "` "
		if d.Again {
			l += "✅ registered again with its new credentials: " + esc(short(evidence.RegistrationText(d.Registration, r.o.Now), 300))
		} else {
			l += "⚠️ not registered again since it was re-created at " + r.clock(g.RecreatedAt)
		}
		devs = append(devs, l)
	}
	body := joinCapped(strings.Join(lines, "\n"), devs, maxEvidenceLines, maxSectionText, "devices")
	return []slack.Block{slack.NewSectionBlock(mrkdwn(body), nil, nil),
		slack.NewContextBlock("", mrkdwn("gate checked "+r.clock(g.CheckedAt)+" · from the PBX; Restore checks it again"))}
}

// overGateButton is offered on a restore the gate held (failed with remediate.KindGate).
func (r *renderer) overGateButton(st *session.StepState) *slack.ButtonBlockElement {
	if st.Status != session.StatusFailed || st.ErrKind != remediate.KindGate {
		return nil
	}
	return r.button("gate:restore", "Restore over the gate", slack.StyleDanger, r.confirm(ActionOverGate, session.StepRestore))
}

// gateProblems is what the stored gate says is unmet, in one clause ("" = met or not checked).
func (r *renderer) gateProblems() string {
	if r.inc.Gate == nil {
		return ""
	}
	return strings.Join(evidence.GateProblems(*r.inc.Gate, r.o.Now), "; ")
}

// overGateConfirm is the dialog of "Restore over the gate": what is unmet, first and in capitals.
func (r *renderer) overGateConfirm() (title, text, yes string) {
	why := r.gateProblems()
	if why == "" {
		why = "it was not met when restore last checked it"
	}
	return "Restore over the gate?", fmt.Sprintf("⚠️ THE RESTORE GATE IS NOT MET: %s. Give %s its dial permission %s back anyway? "+
		"This is recorded as restored over the gate.", why, r.inc.Key(), r.restoreTarget()), "Restore over the gate"
}

// gateNote is what a restore dialog adds about the gate (" " + a sentence, or "").
func (r *renderer) gateNote() string {
	if !r.gateShown() {
		return ""
	}
	if why := r.gateProblems(); why != "" {
		return " ⚠️ Restore gate not met (" + why + "): restore will be held."
	}
	return " Restore gate met."
}

// actOverGate asks for a restore over the gate (same approval rules as a restore).
func (a *App) actOverGate(ctx context.Context, c click) {
	res, err := a.eng.Request(ctx, c.inc.ID, session.StepRestore, c.user,
		remediate.RunOptions{OverGate: true, ConfirmMissing: c.act.ConfirmMissing})
	a.afterRun(ctx, c, session.StepRestore, c.user, res, err)
}
