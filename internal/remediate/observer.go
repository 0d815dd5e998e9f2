package remediate

import (
	"context"

	"github.com/compromised-responder/bot/internal/session"
)

// The results an Observer is told. They are what an operator counts and alerts on: a step
// ran and was verified (done), ran with something that could not be verified (warnings), ran
// and failed (failed), or was not run at all because the engine refused the request (refused:
// wrong order or state, already running or done, self-approval, expired, closed).
const (
	ResultDone     = "done"
	ResultWarnings = "warnings"
	ResultFailed   = "failed"
	ResultRefused  = "refused"
)

// Observer is told the outcome of every step request the engine decides, on the replica that
// decides it: a run started by a click, the CLI or an approval, and a run Reconcile resumed
// after its runner died. Metrics hang off it (steps by result, time to containment), so they
// do not depend on which front end or replica ran the step. It must not block.
type Observer interface {
	// StepEnded: result is one of the Result constants; kind is KindOf(err) for failed and
	// refused ("" otherwise); inc is the incident as stored afterwards (for refused, as read).
	StepEnded(ctx context.Context, inc session.Incident, step session.Step, result string, kind Kind)
}

// refusalKinds are the kinds of an error that means the request was refused before any PBX
// call, not a step that ran and failed.
var refusalKinds = map[Kind]bool{
	KindStepOrder: true, KindAlreadyRunning: true, KindAlreadyDone: true, KindAwaiting: true,
	KindNotAwaiting: true, KindBadTransition: true, KindSelfApproval: true, KindExpired: true, KindClosed: true,
	KindNoIncident: true, KindInvalid: true,
}

// observe tells the Observer, if any, how a step request ended. ran says the step body ran
// (its error is a failure whatever its kind); before that, an error of a refusal kind is a
// refusal and any other (Redis down) a failure. A runner that was stopped (lease lost,
// shutdown) is not an outcome: whoever continues the step reports it.
func (e *Engine) observe(ctx context.Context, inc session.Incident, step session.Step, ran bool, status session.Status, err error) {
	if err != nil && isStop(err) {
		return
	}
	kind, result := KindOf(err), ResultFailed
	switch {
	case err == nil && status == session.StatusWarnings:
		result = ResultWarnings
	case err == nil:
		result = ResultDone
	case !ran && refusalKinds[kind]:
		result = ResultRefused
	}
	e.report(ctx, inc, step, result, kind)
}

// report tells the Observer, if any, one outcome as it is.
func (e *Engine) report(ctx context.Context, inc session.Incident, step session.Step, result string, kind Kind) {
	if e.cfg.Observer != nil {
		e.cfg.Observer.StepEnded(ctx, inc, step, result, kind)
	}
}
