package lockdown

import (
	"context"
	"time"

	"github.com/compromised-responder/bot/internal/evidence"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// The restore gate over a lockdown (remediate/gate.go): each member's restore checks its own
// gate, and a member whose gate is unmet is held (its restore failed with remediate.KindGate,
// no PBX write). KindOverGate is the explicit "restore over the gate" for exactly those members,
// under the same approval rules as a restore; each member's runbook audits its override as
// gate.overridden. Members not held are left alone (a plain restore is theirs).

// KindOverGate restores over the gate every member whose restore the gate holds (Step is
// StepRestore).
const KindOverGate = "over-gate"

// Held is a member whose restore the gate holds, with what is unmet.
type Held struct {
	Key, IncidentID string
	// Problems words what is unmet (evidence.GateProblems of the member's stored gate, else the
	// restore's error message).
	Problems []string
	// Calls: an international or premium call since containment; Silent: a re-created device has
	// not registered again; Unread: the PBX could not be read. The confirm dialog counts them.
	Calls, Silent, Unread bool
}

// HeldCounts counts the held members by why they are held (a member may count in several).
func (s *Summary) HeldCounts() (calls, silent, unread int) {
	for _, h := range s.Held {
		calls += b2i(h.Calls)
		silent += b2i(h.Silent)
		unread += b2i(h.Unread)
	}
	return calls, silent, unread
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// gateHeld reports whether inc's restore is held by its gate (and the incident is open).
func gateHeld(inc *session.Incident) bool {
	st := inc.Step(session.StepRestore)
	return inc.Open() && st.Status == session.StatusFailed && st.ErrKind == remediate.KindGate
}

// heldOf describes a held member (gateHeld) for the card.
func heldOf(inc *session.Incident, now time.Time) Held {
	h := Held{Key: inc.Key(), IncidentID: inc.ID}
	if g := inc.Gate; g != nil {
		h.Problems = evidence.GateProblems(*g, now)
		h.Calls = len(g.Risky) > 0
		h.Unread = g.CallsUnavailable != "" || g.DevicesUnavailable != ""
		for _, d := range g.Devices {
			h.Silent = h.Silent || !d.Again
		}
	}
	if len(h.Problems) == 0 {
		h.Problems = []string{inc.Step(session.StepRestore).ErrMessage}
	}
	return h
}

// overGate asks for a held member's restore over the gate (skip says why a member is not held).
func (e *Engine) overGate(ctx context.Context, inc *session.Incident, actor, token string) (res remediate.Result, skip string, err error) {
	if !gateHeld(inc) {
		return res, "not held by the restore gate", nil
	}
	res, err = e.inc.Request(ctx, inc.ID, session.StepRestore, actor, remediate.RunOptions{ConfirmMissing: token, OverGate: true})
	return res, "", err
}
