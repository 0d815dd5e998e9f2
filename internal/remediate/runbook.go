package remediate

import (
	"strings"

	"github.com/compromised-responder/bot/internal/session"
)

// StepDef is one step of the runbook as data: what it is called, what it needs first, what it
// runs, the words it writes into its progress and how a reader judges how far it got. The
// engine, the card, the Slack handlers, the approvals configuration and the dry run (Plan) all
// read this one table, so the runbook's order and vocabulary are decided here only.
type StepDef struct {
	Step  session.Step
	Title string // the card's and the dry run's name of the step, e.g. "Deny all calls"
	// Needs lists the steps that must be finished (done or done with warnings) before this one
	// may start or be asked for.
	Needs []session.Step
	// Vocabulary lists, in the order a unit goes through them, the values the step writes into
	// its progress for a unit of work (recreate: "device/<id>" → deleted, created, …).
	Vocabulary []Progress
	// Count, when set, says how far a running step is: units finished of units known.
	Count func(inc *session.Incident, st *session.StepState) (done, total int)
	// Reached, when set, names what a running step has already achieved, for the card to show
	// in place of "running" ("" = nothing yet): deny is "contained" from the verified PUT on,
	// while it still ends the live calls.
	Reached func(st *session.StepState) string

	run stepFunc // the step's body; the dry run runs it too, with the PBX writes recorded
}

// Progress is a value a step records in its progress.
type Progress string

// The progress vocabulary of the steps.
const (
	// recreate, per device ("device/<id>"), in this order.
	DeviceDeleted  Progress = "deleted"
	DeviceCreated  Progress = "created"  // re-created; its phone line is not yet re-linked
	DeviceLinked   Progress = "linked"   // re-created and back on its phone line (if it had one)
	DeviceVerified Progress = "verified" // read back with the snapshot's settings and a new password

	PolicySet      Progress = "set"       // deny, restore: the dial policy PUT was accepted
	PolicyVerified Progress = "verified"  // deny: the deny policy read back: the user is contained
	JWTRequested   Progress = "requested" // reset: the session revocation was accepted
	PINSet         Progress = "set"       // reset: a new PIN was accepted (its value is never stored)
	EmailSent      Progress = "sent"      // reset: the reset email was sent
)

// runbook is the table, in the order the runbook runs. Its order matches session.Steps (the
// store's list of step names); a test keeps the two equal.
var runbook = []StepDef{
	{Step: session.StepDeny, Title: "Deny all calls", Vocabulary: []Progress{PolicySet, PolicyVerified},
		Reached: denyReached, run: (*runner).deny},
	{Step: session.StepRecreate, Title: "Re-create devices", Needs: []session.Step{session.StepDeny},
		Vocabulary: []Progress{DeviceDeleted, DeviceCreated, DeviceLinked, DeviceVerified},
		Count:      countDevices, run: (*runner).recreate},
	{Step: session.StepReset, Title: "Reset password + PIN", Needs: []session.Step{session.StepDeny}, run: (*runner).reset},
	{Step: session.StepRestore, Title: "Restore dial permission", Needs: []session.Step{session.StepDeny}, run: (*runner).restore},
}

// Runbook returns the steps in runbook order (a copy: the table is not to be changed).
func Runbook() []StepDef { return append([]StepDef(nil), runbook...) }

// Def returns the definition of step s; ok is false for a name that is not a step.
func Def(s session.Step) (d StepDef, ok bool) {
	for _, d := range runbook {
		if d.Step == s {
			return d, true
		}
	}
	return StepDef{Step: s, Title: string(s)}, false
}

// Waiting returns the first step that s needs and that has not finished on inc, or "" when s
// may start as far as the runbook's order goes. This is the one statement of the order rule.
func Waiting(inc *session.Incident, s session.Step) session.Step {
	d, _ := Def(s)
	for _, need := range d.Needs {
		if !inc.Step(need).Status.Finished() {
			return need
		}
	}
	return ""
}

// checkOrder is Waiting as the engine's error: ErrStepOrder, e.g. "deny all calls first:
// recreate needs a finished deny step".
func checkOrder(inc *session.Incident, step session.Step) error {
	need := Waiting(inc, step)
	if need == "" {
		return nil
	}
	d, _ := Def(need)
	return errorf(ErrStepOrder, "%s first: %s needs a finished %s step", strings.ToLower(d.Title), step, need)
}

// DeviceDone reports whether a recreate device's progress means the device is back: re-created
// and re-linked (a device that is only created still misses its phone line).
func DeviceDone(p Progress) bool { return p == DeviceLinked || p == DeviceVerified }

// countDevices counts recreate's devices that are back, of the snapshot's devices (or of the
// devices with progress, before the snapshot is read).
func countDevices(inc *session.Incident, st *session.StepState) (done, total int) {
	seen := 0
	for k, v := range st.Progress {
		if strings.HasPrefix(k, devPrefix) {
			seen++
			if DeviceDone(Progress(v)) {
				done++
			}
		}
	}
	total = max(len(inc.Devices), seen)
	return min(done, total), total
}

// denyReached is deny's Reached: "contained" once the deny policy was read back.
func denyReached(st *session.StepState) string {
	if Progress(st.Progress[progDenyPolicy]) == PolicyVerified {
		return "contained"
	}
	return ""
}
