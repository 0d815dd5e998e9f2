package slackui

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/session"
)

// This file renders the restore gate of a lockdown's members (lockdown/overgate.go): the
// members whose restore the gate holds, and the card's one red "Restore over the gate" for all
// of them, whose dialog starts, as an incident's does (gatecard.go), with THE RESTORE GATE IS
// NOT MET and says how many are held and why.

// held lists the members the restore gate holds (capped), or nothing.
func (r *lockdownRenderer) held() []slack.Block {
	h := r.s.Held
	if len(h) == 0 {
		return nil
	}
	lines := make([]string, 0, len(h))
	for _, m := range h {
		lines = append(lines, fmt.Sprintf("• %s: %s (%s)", esc(m.Key), esc(short(strings.Join(m.Problems, "; "), 200)), esc(m.IncidentID)))
	}
	head := fmt.Sprintf("⛔ *%s held by the restore gate* — restore changed nothing for them; *Retry failed* checks the gate again, "+
		"*Restore over the gate* restores them anyway:", plural(len(h), "user"))
	return []slack.Block{slack.NewSectionBlock(mrkdwn(joinCapped(head, lines, maxLockdownFailures, maxSectionText, "users")), nil, nil)}
}

// overGateButton is offered while some member's restore is held by the gate.
func (r *lockdownRenderer) overGateButton() *slack.ButtonBlockElement {
	if len(r.s.Held) == 0 {
		return nil
	}
	b := slack.NewButtonBlockElement("lockdown:"+OpGateRestore, r.l.ID, plain("Restore over the gate"))
	b.Style = slack.StyleDanger
	ask := "Give each their own original dial permission back anyway? Each is recorded as restored over the gate."
	if r.o.ApprovalSteps[session.StepRestore] {
		ask = "Ask for approval to restore them over the gate anyway? It runs when someone approves, recorded as restored over the gate."
	}
	note := r.heldWhy()
	if m := r.missingNote(); m != "" {
		note += " " + m
	}
	b.Confirm = r.dialog("Restore over the gate?", note, ask, "Restore over the gate", slack.StyleDanger)
	return b
}

// heldWhy is the dialog's first sentence: how many members are held, and why.
func (r *lockdownRenderer) heldWhy() string {
	calls, silent, unread := r.s.HeldCounts()
	var why []string
	if calls > 0 {
		why = append(why, fmt.Sprintf("%d with international or premium calls since containment", calls))
	}
	if silent > 0 {
		why = append(why, fmt.Sprintf("%d with re-created devices not registered again", silent))
	}
	if unread > 0 {
		why = append(why, fmt.Sprintf("%d whose calls or devices could not be read", unread))
	}
	text := fmt.Sprintf("⚠️ THE RESTORE GATE IS NOT MET for %s", plural(len(r.s.Held), "user"))
	if len(why) > 0 {
		text += ": " + strings.Join(why, ", ")
	}
	return text + "."
}
