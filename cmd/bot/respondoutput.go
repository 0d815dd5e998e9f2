package main

import (
	"fmt"
	"strings"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// What `bot respond` prints: an incident and its steps as the card shows them, in plain text,
// and new secrets, only where runRespond allowed them.

// secrets prints new credentials for their requester, on stdout, when that is allowed.
func (r *responder) secrets(secrets []remediate.Secret, requester string) {
	if len(secrets) == 0 {
		return
	}
	if !r.reveal {
		// Unreachable for the steps known to make secrets (checked before running); kept so that
		// a secret never goes anywhere else.
		r.say("  %d new secret(s) not shown: stdout is not a terminal (use --reveal); bot respond run … credentials rotates SIP passwords again", len(secrets))
		return
	}
	to := ""
	if requester != r.actor {
		to = " (for " + requester + ", who requested the step: hand it over)"
	}
	r.say("  New credentials%s, shown once:", to)
	for _, s := range secrets {
		r.say("    %s: %s", s.Label, s.Value.Reveal())
		r.say("      %s", s.Instructions)
	}
}

// printIncident shows an incident as the card does, in plain text.
func (r *responder) printIncident(inc session.Incident) {
	r.say("%s · %s · %s · opened %s by %s", inc.ID, inc.Key(), inc.State, ts(inc.CreatedAt), inc.OpenedBy)
	if inc.Reason != "" {
		r.say("  reason: %s", inc.Reason)
	}
	if l := inc.Live; l != nil {
		switch {
		case l.Pending: // opened from Slack: its card came first, the devices and calls follow
			r.say("  live (as of %s): dial permission %s · devices and live calls not read yet", ts(l.ReadAt), l.DialPolicy)
		case l.ReadErr != "":
			r.say("  live (as of %s): dial permission %s · devices and live calls could not be read: %s", ts(l.ReadAt), l.DialPolicy, l.ReadErr)
		default:
			r.say("  live (as of %s): dial permission %s · %d device(s) · %d live call(s)", ts(l.ReadAt), l.DialPolicy, len(l.Devices), l.ActiveCalls)
		}
	}
	if o := inc.Original; o != nil {
		if o.Known {
			r.say("  original dial permission: %s", o.Policy)
		} else {
			r.say("  original dial permission: unknown (restore needs --policy NAME)")
		}
	}
	for _, s := range session.Steps {
		r.printStep(inc.Step(s))
	}
	switch {
	case inc.MessageTS != "":
		r.say("  card: in %s", inc.Channel)
	case inc.Channel != "":
		r.say("  card: to be posted in %s when Slack answers", inc.Channel)
	}
	if !inc.Open() {
		r.say("  closed %s by %s%s", ts(inc.ClosedAt), inc.ClosedBy, detail(inc.CloseNote))
	}
}

// printStep prints one step's state and what it verified.
func (r *responder) printStep(st *session.StepState) {
	line := fmt.Sprintf("  %-9s %s", st.Step, st.Status)
	if st.Summary != "" {
		line += " · " + st.Summary
	}
	switch {
	case st.Status == session.StatusAwaiting && st.ApprovedBy == "":
		line += fmt.Sprintf(" · requested by %s, expires %s", st.RequestedBy, ts(st.ApprovalExpires))
	case st.RequestedBy != "" && st.Status != session.StatusReady:
		line += " · by " + st.RequestedBy
		if st.ApprovedBy != "" {
			line += ", approved by " + st.ApprovedBy
		}
	}
	r.say("%s", line)
	for _, sub := range st.SubResults {
		r.say("              %s [%s] %s", sub.Name, strings.ReplaceAll(string(sub.Outcome), "_", " "), sub.Detail)
	}
	if st.Status == session.StatusFailed && st.ErrMessage != "" {
		r.say("              failed (%s): %s", st.ErrKind, st.ErrMessage)
	}
}
