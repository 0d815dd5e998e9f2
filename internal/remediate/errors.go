package remediate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// The engine's own error kinds. Every error the engine returns for one of these conditions
// matches it with errors.Is; UserMessage gives the plain words for the card.
var (
	// ErrInvalid: the caller passed something the engine refuses (bad user or domain, bad
	// configuration, an unknown step, an explicit restore policy the PBX does not have).
	ErrInvalid = errors.New("invalid input")
	// ErrUserNotFound: the PBX has no such user.
	ErrUserNotFound = errors.New("user not found on the PBX")
	// ErrStepOrder: the step needs deny to be finished first (or recreate, for credentials).
	ErrStepOrder = errors.New("step out of order")
	// ErrDrift: the live dial policy is neither the deny policy nor the original (see *DriftError);
	// only a forced restore (force:restore) overrides it.
	ErrDrift = errors.New("dial policy changed since deny")
	// ErrOriginalUnknown: the user was already in the deny policy when the incident began and no
	// original was on record; restore needs RunOptions.RestorePolicy.
	ErrOriginalUnknown = errors.New("original dial policy unknown")
	// ErrDenyPolicyMissing: the configured deny policy does not exist on the PBX.
	ErrDenyPolicyMissing = errors.New("deny policy does not exist")
	// ErrNotRestored: recreate could not bring every device back (the snapshot stays; the step
	// result lists which).
	ErrNotRestored = errors.New("device not restored")
	// ErrDevicesMissing: closing the incident (restore, abort) needs an explicit confirmation
	// because devices are deleted and not re-created (DevicesMissing); nothing was changed.
	ErrDevicesMissing = errors.New("devices deleted and not re-created")
	// ErrVerify: a write was accepted but reading it back showed something else.
	ErrVerify = errors.New("verification failed")
)

// The store's kinds, re-exported so that callers of the engine need not import session to
// match them. They are the same values: errors.Is works with either name.
var (
	ErrClosed           = session.ErrClosed
	ErrNotFound         = session.ErrNotFound // no such incident
	ErrAlreadyRunning   = session.ErrAlreadyRunning
	ErrAlreadyDone      = session.ErrAlreadyDone
	ErrAwaitingApproval = session.ErrAwaitingApproval
	ErrNotAwaiting      = session.ErrNotAwaiting
	ErrBadTransition    = session.ErrBadTransition
	ErrFenced           = session.ErrFenced
	ErrSelfApproval     = session.ErrSelfApproval
	ErrExpired          = session.ErrExpired
)

// errStop marks a runner stopped on purpose in the middle of a step (a test's crash
// injection): like a process that died, it leaves the step running for Reconcile.
var errStop = errors.New("runner stopped")

// errBoundary marks a runner that stopped at a recorded boundary because its caller's context
// ended (the job's deadline): the step stays running and Reconcile continues it from there.
var errBoundary = errors.New("stopped at a recorded boundary")

// stopGrace bounds how long a step runs on after its caller's context ended, before it is cut
// like a dead process (Reconcile resumes it); recordTimeout bounds recording its result then.
const (
	stopGrace     = 2 * time.Minute
	recordTimeout = 30 * time.Second
)

// Error is an engine error with a plain message for the card; it never holds a secret.
type Error struct {
	Err error  // one of the sentinels above
	Msg string // plain words, e.g. "deny all calls first"
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func errorf(kind error, format string, args ...any) error {
	return &Error{Err: kind, Msg: fmt.Sprintf(format, args...)}
}

// DriftError says that the live dial policy changed since deny; errors.Is(err, ErrDrift).
type DriftError struct {
	Live, Original, Deny string
}

func (e *DriftError) Error() string {
	return fmt.Sprintf("the dial permission was changed since deny: it is now %q (original %q, deny policy %q); "+
		"restore only with force", e.Live, e.Original, e.Deny)
}

// Is makes errors.Is(err, ErrDrift) true.
func (e *DriftError) Is(target error) bool { return target == ErrDrift }

// Kind classifies an error for the card, metrics and the step record (session.StepState.ErrKind):
// the engine's and the store's kinds, else the netsapiens kind (KindOf).
type Kind = session.ErrKind

// The kinds KindOf returns. A netsapiens kind (not_found, transient, …) is a Kind too.
const (
	KindNone            Kind = "" // no error
	KindUserNotFound    Kind = "user_not_found"
	KindStepOrder       Kind = "step_order"
	KindDrift           Kind = "drift"
	KindOriginalUnknown Kind = "original_unknown"
	KindDenyPolicy      Kind = "deny_policy_missing"
	KindNotRestored     Kind = "not_restored"
	KindVerify          Kind = "verify"
	KindDevicesMissing  Kind = "devices_missing"
	KindInvalid         Kind = "invalid"
	KindClosed          Kind = "closed"
	KindNoIncident      Kind = "incident_not_found"
	KindAlreadyRunning  Kind = "already_running"
	KindAlreadyDone     Kind = "already_done"
	KindAwaiting        Kind = "awaiting_approval"
	KindNotAwaiting     Kind = "not_awaiting"
	KindBadTransition   Kind = "bad_transition"
	KindFenced          Kind = "fenced"
	KindSelfApproval    Kind = "self_approval"
	KindExpired         Kind = "expired"
	KindConflict        Kind = "conflict"
	KindCanceled        Kind = "canceled"
	KindRunnerDied      Kind = "runner_died" // recorded by Reconcile for a step whose runners kept dying
	// KindNotReplicated: the Redis replicas did not acknowledge a write-ahead record in time, so
	// the PBX write it protects was not made (REDIS_MIN_REPLICAS).
	KindNotReplicated Kind = "not_replicated"
	// KindUnauthorized is also the Slack layer's refusal of a person not in RESPONDERS/APPROVERS.
	KindUnauthorized Kind = Kind(netsapiens.KindUnauthorized)
	KindTransient    Kind = Kind(netsapiens.KindTransient)
	KindInternal     Kind = Kind(netsapiens.KindInternal)
)

// kinds maps the sentinels to their kinds, first match wins.
var kinds = []struct {
	err  error
	kind Kind
}{
	{ErrUserNotFound, KindUserNotFound}, {ErrStepOrder, KindStepOrder}, {ErrDrift, KindDrift},
	{ErrOriginalUnknown, KindOriginalUnknown}, {ErrDenyPolicyMissing, KindDenyPolicy},
	{ErrNotRestored, KindNotRestored}, {ErrDevicesMissing, KindDevicesMissing}, {ErrVerify, KindVerify}, {ErrInvalid, KindInvalid},
	{ErrClosed, KindClosed}, {ErrNotFound, KindNoIncident}, {ErrAlreadyRunning, KindAlreadyRunning},
	{ErrAlreadyDone, KindAlreadyDone}, {ErrAwaitingApproval, KindAwaiting},
	{ErrNotAwaiting, KindNotAwaiting}, {ErrBadTransition, KindBadTransition}, {ErrFenced, KindFenced},
	{ErrSelfApproval, KindSelfApproval}, {ErrExpired, KindExpired}, {session.ErrConflict, KindConflict},
	{session.ErrInvalid, KindInvalid}, {session.ErrNotReplicated, KindNotReplicated}, {ErrGate, KindGate},
}

// KindOf classifies err: the engine's and the store's kinds, else the netsapiens kind,
// KindCanceled for a cancelled context, KindNone for nil and KindInternal for anything else.
func KindOf(err error) Kind {
	if err == nil {
		return KindNone
	}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.kind
		}
	}
	var ne *netsapiens.Error
	if errors.As(err, &ne) {
		return Kind(ne.Kind)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, errBoundary) {
		return KindCanceled
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return KindTransient
	}
	return KindInternal
}

// UserMessage returns plain words about err for the card or an ephemeral reply. It never
// contains a secret (PBX messages are scrubbed by the client) and never the raw error chain
// of an internal failure.
func UserMessage(err error) string {
	if err == nil {
		return ""
	}
	var ee *Error
	if errors.As(err, &ee) {
		return ee.Msg
	}
	var de *DriftError
	if errors.As(err, &de) {
		return de.Error()
	}
	var se *session.StepError
	if errors.As(err, &se) {
		return stepErrorMessage(se)
	}
	var ne *netsapiens.Error
	if errors.As(err, &ne) {
		return pbxMessage(ne)
	}
	var re *session.ReplicationError
	if errors.As(err, &re) {
		return re.Error()
	}
	switch KindOf(err) {
	case KindClosed:
		return "this incident is closed"
	case KindNoIncident:
		return "no such incident (it may have expired)"
	case KindFenced:
		return "another runner took this step over; it continues there"
	case KindSelfApproval:
		return "you cannot approve your own request; ask another approver"
	case KindExpired:
		return "the approval request expired; request it again"
	case KindNotAwaiting:
		return "there is no pending approval request for this step"
	case KindConflict:
		return "too many simultaneous changes; try again"
	case KindCanceled, KindTransient:
		return "the operation was interrupted; it is resumed automatically or can be retried"
	}
	return "internal error; the details are in the bot's log"
}

func stepErrorMessage(se *session.StepError) string {
	when := ""
	if !se.At.IsZero() {
		when = " at " + se.At.UTC().Format("15:04 UTC")
	}
	by := ""
	if se.By != "" {
		by = " by " + se.By
	}
	switch {
	case errors.Is(se, ErrAlreadyRunning):
		return fmt.Sprintf("%s is already running (started%s%s)", se.Step, by, when)
	case errors.Is(se, ErrAlreadyDone):
		return fmt.Sprintf("%s was already done%s%s", se.Step, by, when)
	case errors.Is(se, ErrAwaitingApproval):
		return fmt.Sprintf("%s awaits approval (requested%s%s)", se.Step, by, when)
	case errors.Is(se, ErrSelfApproval):
		return "you cannot approve your own request; ask another approver"
	case errors.Is(se, ErrExpired):
		return fmt.Sprintf("the approval request for %s expired%s; request it again", se.Step, when)
	case errors.Is(se, ErrNotAwaiting):
		return fmt.Sprintf("%s has no pending approval request (status %s)", se.Step, se.Status)
	}
	return fmt.Sprintf("%s cannot start now (status %s)", se.Step, se.Status)
}

func pbxMessage(ne *netsapiens.Error) string {
	switch ne.Kind {
	case netsapiens.KindTransient:
		return "the PBX did not answer in time; try again"
	case netsapiens.KindUnauthorized:
		return "the PBX refused the bot's credentials"
	case netsapiens.KindForbidden:
		return "the PBX does not allow the bot to do this: " + ne.Message
	}
	if ne.Status == 0 {
		return "refused before any PBX call: " + ne.Message
	}
	return "PBX refused: " + ne.Message
}

// isStop reports whether err means the runner must stop without recording a result: its
// lease is gone (someone else owns the step now), its context ended (shutdown: Reconcile
// resumes it) or a test stopped it.
func isStop(err error) bool {
	return errors.Is(err, errStop) || errors.Is(err, errBoundary) || errors.Is(err, ErrFenced) || errors.Is(err, context.Canceled)
}

// fmtTime formats a time for plain messages.
func fmtTime(t time.Time) string { return t.UTC().Format("15:04 UTC") }
