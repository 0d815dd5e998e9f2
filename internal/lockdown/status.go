package lockdown

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// MemberStatus is one member of a lockdown as its incident stands now (Engine.Status): what
// `status LCK-…` lists, in Slack and from the CLI.
type MemberStatus struct {
	Member   session.Member
	Incident *session.Incident // nil: not opened yet (or its incident is gone)
	// Note says in plain words what the member waits on or why it stopped ("" = nothing to say).
	Note string
	// AskedBy is who asked for the approval the member awaits (a Slack user ID or "cli:<name>";
	// "" = none), kept out of Note so that Slack can show it as it shows people elsewhere.
	AskedBy string
	// Attention orders the list: 0 stopped (failed, held by the gate, no known original), 1 not
	// opened, 2 running or awaiting approval, 3 open with nothing pending, 4 closed.
	Attention int
}

// Status reads lockdown id and its members once: the summary and each member's state, the
// members that need attention first (then by user@domain). Errors: session.ErrNotFound (no such
// lockdown), store errors.
func (e *Engine) Status(ctx context.Context, id string) (session.Lockdown, Summary, []MemberStatus, error) {
	l, err := e.store.GetLockdown(ctx, id)
	if err != nil {
		return l, Summary{}, nil, err
	}
	out := make([]MemberStatus, len(l.Members))
	for i, m := range l.Members {
		out[i] = MemberStatus{Member: m, Note: "not opened yet", Attention: 1}
	}
	s, err := e.summary(ctx, l, func(i int, inc *session.Incident) {
		out[i].Incident = inc
		out[i].Note, out[i].AskedBy, out[i].Attention = memberNote(inc, e.now())
	})
	if err != nil {
		return l, s, nil, err
	}
	slices.SortStableFunc(out, func(a, b MemberStatus) int {
		return cmp.Or(cmp.Compare(a.Attention, b.Attention), strings.Compare(a.Member.Key(), b.Member.Key()))
	})
	return l, s, out, nil
}

// memberNote words what a member's incident waits on or why it stopped, with who asked for
// the approval it awaits and its Attention.
func memberNote(inc *session.Incident, now time.Time) (note, askedBy string, attention int) {
	if !inc.Open() {
		return "", "", 4
	}
	for _, step := range session.Steps {
		st := inc.Step(step)
		if st.Status != session.StatusFailed {
			continue
		}
		switch {
		case gateHeld(inc):
			return "held by the restore gate: " + strings.Join(heldOf(inc, now).Problems, "; "), "", 0
		case st.ErrKind == remediate.KindOriginalUnknown:
			return "no known original: stays in the deny policy until one is chosen on the incident", "", 0
		}
		return string(step) + " failed: " + st.ErrMessage, "", 0
	}
	for _, step := range session.Steps {
		switch st := inc.Step(step); st.Status {
		case session.StatusRunning:
			return string(step) + " running", "", 2
		case session.StatusAwaiting:
			note := string(step) + " awaits approval"
			if step == session.StepRestore && remediate.RequestedOverGate(inc) {
				note += ", over the restore gate"
			}
			return note, st.RequestedBy, 2
		}
	}
	return "", "", 3
}
