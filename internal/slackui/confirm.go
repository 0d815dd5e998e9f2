package slackui

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// This file holds the confirm dialogs of the card's buttons: each says exactly what will change.

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
		if s == session.StepRestore && remediate.RequestedOverGate(inc) {
			title, yes, style = "Approve restore over the gate?", "Approve over the gate", slack.StyleDanger
			why := r.gateProblems()
			if why == "" {
				why = "not met when restore last checked it"
			}
			text = "⚠️ Restore OVER THE GATE (" + why + "): approve and run now: " + r.change(s) + "?"
		}
		if s == session.StepRestore && inc.Step(s).Force {
			title, yes, style = "Approve forced restore?", "Approve and force", slack.StyleDanger
			text = fmt.Sprintf("Forced restore: %s's dial permission is now %s, not %s as the bot set it. Approve and overwrite it with the original %s?",
				inc.Key(), r.livePolicy(), r.denyPolicy(), r.restoreTarget())
		}
	case ActionForceRestore:
		title, yes, style = "Force restore?", "Force restore", slack.StyleDanger
		text = fmt.Sprintf("%s's dial permission is now %s, not %s as the bot set it. Set it to the original %s anyway?",
			inc.Key(), r.livePolicy(), r.denyPolicy(), r.restoreTarget())
	case ActionOverGate:
		title, text, yes = r.overGateConfirm()
		style = slack.StyleDanger
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
		text = r.missingNote() + text
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

// livePolicy is the dial permission last read from the PBX, with the time of the read (a drifted
// restore and a forced request store a fresh read, so the dialogs name what the PBX holds).
func (r *renderer) livePolicy() string {
	l := r.inc.Live
	if l == nil || l.DialPolicy == "" {
		return "unknown"
	}
	return l.DialPolicy + " (read " + r.clock(l.ReadAt) + ")"
}

func (r *renderer) original() string {
	if o := r.inc.Original; o != nil && o.Known {
		return o.Policy
	}
	return "dial permission (unknown)"
}

// requested is the policy a pending restore request asks for ("" = the original).
func (r *renderer) requested() string {
	if r.inc.Step(session.StepRestore).Status != session.StatusAwaiting {
		return ""
	}
	return remediate.RequestedPolicy(r.inc)
}

// restoreTarget is the policy restore sets: the one a pending request asks for, or the one chosen
// for the restore the gate held (a restore over the gate goes on with it), else the original.
func (r *renderer) restoreTarget() string {
	if p := r.requested(); p != "" {
		return p
	}
	if p := remediate.HeldPolicy(r.inc); p != "" {
		return p
	}
	return r.original()
}

// chosenLine is a pending restore request's policy on the card, with who chose it.
func (r *renderer) chosenLine(policy, by string) string {
	why := "the original is unknown"
	if !originalUnknown(r.inc) {
		why = "instead of the original " + esc(short(r.original(), 100))
	}
	return fmt.Sprintf("Restores *%s*, chosen by %s (%s)", esc(short(policy, 100)), userRef(by), why)
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
	if p := r.requested(); p != "" {
		how := "instead of the original " + r.original()
		if originalUnknown(inc) {
			how = "the original is unknown"
		}
		return fmt.Sprintf("set %s's dial permission from %s to %s (chosen by the requester: %s)", inc.Key(), r.denyPolicy(), p, how)
	}
	if originalUnknown(inc) {
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
		return n + " " + portalNote(r.o.PortalPassword)
	case session.StepRestore:
		// A step not run is recorded as skipped at the close; a failed one stays failed.
		var skipped, failed []string
		for _, x := range []session.Step{session.StepRecreate, session.StepReset} {
			switch st := inc.Step(x).Status; {
			case st == session.StatusFailed:
				failed = append(failed, confirmWord(x))
			case !st.Finished():
				skipped = append(skipped, confirmWord(x))
			}
		}
		n := ""
		switch {
		case len(failed) == 0 && len(skipped) > 0:
			n = " Warning: " + strings.Join(skipped, " and ") + " not done, so the stolen credentials still work; they will be recorded as skipped."
		case len(failed) > 0:
			// Short: a dialog holds 300 characters, and the missing devices come first.
			n = " " + strings.Join(failed, " and ") + " failed"
			if len(skipped) > 0 {
				n += ", " + strings.Join(skipped, " and ") + " not done"
			}
			n += ": the stolen credentials may still work"
			if len(skipped) > 0 {
				n += " (" + strings.Join(skipped, " and ") + ": skipped)"
			}
			n += "."
		}
		return strings.TrimRight(" "+r.missingNote(), " ") + r.gateNote() + n
	}
	return ""
}

// missingNote names, first in a closing dialog, the devices deleted and not re-created, with
// what closing does to them ("" when none). The button's block_id carries their token.
func (r *renderer) missingNote() string {
	names, _ := remediate.DevicesMissing(r.inc)
	if len(names) == 0 {
		return ""
	}
	list := strings.Join(trimAll(names, 24), ", ")
	if len(names) > 3 {
		list = strings.Join(trimAll(names[:3], 24), ", ") + fmt.Sprintf(" and %d more", len(names)-3)
	}
	return fmt.Sprintf("Not re-created: %s (snapshot kept for the user's next incident). ", list)
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

// portalNote is what a reset dialog says of the portal password: with NS_V1_PORTAL_PASSWORD reset
// sets a new one (v1 API), else the API offers no reset and a person must do it by hand.
func portalNote(on bool) string {
	if on {
		return "Reset also sets a new portal password, delivered only to you."
	}
	return "The portal password itself is not changed: reset it in the Manager Portal."
}
