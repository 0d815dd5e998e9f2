package slackui

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/evidence"
	"github.com/compromised-responder/bot/internal/session"
)

// This file renders the card's fraud evidence (session.Evidence, read at open and at
// containment): the figures of the last 24 h of call records, the live calls and the devices'
// registrations. Phone numbers and addresses are evidence, shown as the PBX gave them; nothing
// here is a secret. An incident without evidence (read pending, or evidence off) shows nothing.

// maxEvidenceLines caps the live calls and the registrations listed.
const maxEvidenceLines = 10

func (r *renderer) evidence() []slack.Block {
	ev := r.inc.Evidence
	if ev == nil {
		return nil
	}
	when := "when the incident opened"
	if ev.Phase == session.PhaseContainment {
		when = "at containment"
	}
	var lines []string
	if ev.Unavailable != "" {
		lines = append(lines, "*Fraud evidence*  _evidence unavailable_: the PBX did not give the call records ("+
			esc(short(ev.Unavailable, maxErrText))+")")
	} else {
		lines = append(lines, "*Fraud evidence* (last 24 h of call records)",
			fmt.Sprintf("*Calls*  %d in the last hour · %d in 24 h · %s outgoing", ev.Calls1h, ev.Calls24h, evidence.Minutes(ev.Seconds)),
			fmt.Sprintf("*International*  %s · *Premium*  %s", callsAndMinutes(ev.International, ev.InternationalSeconds),
				callsAndMinutes(ev.Premium, ev.PremiumSeconds)),
			"*Estimated cost at risk*  "+esc(evidence.Money(ev.Cost, ev.Currency))+"  _(outgoing calls at the rate table's per-minute rates)_")
		if len(ev.Top) > 0 {
			lines = append(lines, "*Top destinations*")
			for _, d := range ev.Top {
				lines = append(lines, fmt.Sprintf("• `%s` %s%s · %s · %s · %s", codeSafe(short(d.Number, 32)),
					esc(short(d.Label, 64)), classNote(d.Class), plural(d.Calls, "call"), evidence.Minutes(d.Seconds),
					esc(evidence.Money(d.Cost, ev.Currency))))
			}
		}
	}
	bs := []slack.Block{slack.NewSectionBlock(mrkdwn(strings.Join(lines, "\n")), nil, nil)}
	if live := r.evidenceLive(ev); live != "" {
		bs = append(bs, slack.NewSectionBlock(mrkdwn(live), nil, nil))
	}
	if regs := r.registrations(ev); regs != "" {
		bs = append(bs, slack.NewSectionBlock(mrkdwn(regs), nil, nil))
	}
	return append(bs, slack.NewContextBlock("", mrkdwn("evidence read "+when+", "+r.clock(ev.ReadAt)+" · from the PBX")))
}

// evidenceLive lists the live calls the evidence read saw, with what ends them.
func (r *renderer) evidenceLive(ev *session.Evidence) string {
	if ev.LiveUnavailable != "" {
		return "*Live calls*  _unavailable_ (" + esc(short(ev.LiveUnavailable, maxErrText)) + ")"
	}
	if len(ev.LiveCalls) == 0 {
		return ""
	}
	head := fmt.Sprintf("*Live calls* (%d)  _Deny all calls ends them_", len(ev.LiveCalls))
	if r.inc.Step(session.StepDeny).Status.Finished() {
		head = fmt.Sprintf("*Live calls* (%d)  _still up after deny ended the ones it saw_", len(ev.LiveCalls))
	}
	items := make([]string, 0, len(ev.LiveCalls))
	for _, c := range ev.LiveCalls {
		l := "• `" + codeSafe(short(c.Number, 32)) + "`"
		if c.Label != "" {
			l += " " + esc(short(c.Label, 64)) + classNote(c.Class)
		}
		if c.Since != "" {
			l += " · since " + esc(evidence.PBXTime(c.Since, r.o.Now))
		}
		items = append(items, l)
	}
	return joinCapped(head, items, maxEvidenceLines, maxSectionText, "live calls")
}

// registrations lists each device's registration as the PBX reports it.
func (r *renderer) registrations(ev *session.Evidence) string {
	if ev.DevicesUnavailable != "" {
		return "*Registrations*  _unavailable_ (" + esc(short(ev.DevicesUnavailable, maxErrText)) + ")"
	}
	if len(ev.Registrations) == 0 {
		return ""
	}
	items := make([]string, 0, len(ev.Registrations))
	for _, reg := range ev.Registrations {
		items = append(items, "• `"+codeSafe(short(reg.Device, 64))+"` "+esc(short(evidence.RegistrationText(reg, r.o.Now), 300)))
	}
	return joinCapped("*Registrations* (as the PBX reports them)", items, maxEvidenceLines, maxSectionText, "devices")
}

func callsAndMinutes(calls, secs int) string {
	if calls == 0 {
		return "none"
	}
	return plural(calls, "call") + " · " + evidence.Minutes(secs)
}

// classNote marks a premium destination (international is in the label's country already).
func classNote(class string) string {
	if class == session.ClassPremium {
		return " *(premium)*"
	}
	return ""
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
