package session

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of the store. Every error a Store method returns for one of these conditions
// matches it with errors.Is; anything else is a Redis or encoding failure, wrapped with %w.
var (
	// ErrNotFound: no such incident (or it expired after RETENTION), or no open incident for the user.
	ErrNotFound = errors.New("incident not found")
	// ErrAlreadyRunning: the step is running under someone else's lease (see *StepError for who and since when).
	ErrAlreadyRunning = errors.New("step already running")
	// ErrAlreadyDone: the step has finished (done, done with warnings, or skipped) (see *StepError).
	ErrAlreadyDone = errors.New("step already done")
	// ErrAwaitingApproval: the step waits for a second person's approval and was not approved yet.
	ErrAwaitingApproval = errors.New("step awaits approval")
	// ErrBadTransition: the step's status does not allow the requested move (e.g. Begin from ready when
	// only an approved request may start it).
	ErrBadTransition = errors.New("step status does not allow this")
	// ErrClosed: the incident is closed (restored or aborted).
	ErrClosed = errors.New("incident closed")
	// ErrFenced: the lease is no longer current (taken over, expired, or the step is no longer running);
	// its holder must stop before its next PBX call.
	ErrFenced = errors.New("lease lost")
	// ErrSelfApproval: the requester tried to approve their own request.
	ErrSelfApproval = errors.New("own request cannot be approved by its requester")
	// ErrExpired: the approval request expired (APPROVAL_TTL).
	ErrExpired = errors.New("approval request expired")
	// ErrNotAwaiting: Approve or Reject on a step that has no pending approval request.
	ErrNotAwaiting = errors.New("step is not awaiting approval")
	// ErrStarted: Discard of an incident where some step already ran.
	ErrStarted = errors.New("incident has started steps")
	// ErrNoKey: the operation needs a key (SNAPSHOT_KEY or AUDIT_KEY) that is not configured.
	ErrNoKey = errors.New("key not configured")
	// ErrKeyMismatch: a sealed value or a secret HMAC was made under another key (the error names both key ids).
	ErrKeyMismatch = errors.New("made under another key")
	// ErrBadSeal: a sealed value is malformed or does not authenticate (tampered, or moved to another
	// incident or field).
	ErrBadSeal = errors.New("sealed value does not authenticate")
	// ErrAuditTampered: an audit chain does not verify (see *AuditError for the first bad sequence number).
	ErrAuditTampered = errors.New("audit chain tampered")
	// ErrConflict: a compare-and-set kept losing to concurrent writers until the retries ran out.
	ErrConflict = errors.New("concurrent update conflict")
	// ErrNotReplicated: the replicas did not acknowledge a write-ahead record in time (see
	// *ReplicationError); the PBX write it protects must not happen.
	ErrNotReplicated = errors.New("write-ahead record not acknowledged by the replicas")
	// ErrUndecodable: a stored incident no longer decodes (a bad edit, a version downgrade).
	ErrUndecodable = errors.New("stored incident does not decode")
	// ErrInvalid: the caller passed something the store refuses (bad user/domain, unknown step, a
	// secret-looking snapshot field, a change of an incident's identity through Update, …).
	ErrInvalid = errors.New("invalid argument")
)

// ErrKind classifies why a step failed, as stored with it (StepState.ErrKind). The store keeps it
// and never interprets it: the engine defines the values (remediate.Kind*).
type ErrKind string

// StepError says why a step cannot move, with who did what and when ("already done by U123 at …").
// errors.Is(err, ErrAlreadyRunning) etc. match its Err.
type StepError struct {
	Err    error // one of the sentinels above
	Step   Step
	Status Status
	By     string    // actor of record: runner's requester, approver, …; never a secret
	At     time.Time // when that happened
}

func (e *StepError) Error() string {
	s := fmt.Sprintf("step %s: %v (status %s", e.Step, e.Err, e.Status)
	if e.By != "" {
		s += ", by " + e.By
	}
	if !e.At.IsZero() {
		s += ", at " + e.At.UTC().Format(time.RFC3339)
	}
	return s + ")"
}

// Unwrap returns the sentinel.
func (e *StepError) Unwrap() error { return e.Err }

// AuditError names the first entry of an audit chain that does not verify.
// errors.Is(err, ErrAuditTampered) matches it.
type AuditError struct {
	Chain  string // "global" or the incident ID
	Seq    int64  // first bad sequence number (position in the chain, 1-based)
	Reason string
}

func (e *AuditError) Error() string {
	return fmt.Sprintf("audit chain %s: entry %d: %s: %v", e.Chain, e.Seq, e.Reason, ErrAuditTampered)
}

// Unwrap returns ErrAuditTampered.
func (e *AuditError) Unwrap() error { return ErrAuditTampered }
