package session

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Lease is a runner's right to work on a running step. Its Fence is a number that grows with every
// Begin and TakeOver of the incident; every fenced write (and CheckFence before every PBX call)
// compares it with the step's current fence, so a runner that lost its lease stops.
type Lease struct {
	IncidentID string
	Step       Step
	Owner      string // who runs it: replica/worker name
	Fence      int64
	Until      time.Time
}

// Run is one runner's hold on a running step, as Begin and TakeOver hand it out: the lease and
// every write the runner makes under it. Each write is fenced (it happens only while this is
// the step's current, unexpired lease), so a runner that lost its lease is stopped at its next
// write. It is safe for concurrent use (the engine renews it from another goroutine).
type Run struct {
	s   *Store
	ttl time.Duration

	mu sync.Mutex
	l  Lease // Until moves with Renew
	// confirmed is when (the store's clock, as the write was sent) a fenced write last found
	// the lease valid: Begin or TakeOver handing it out, or any write through the Run.
	confirmed time.Time
	ended     bool // Finish or Fail ended the lease: nothing confirms it again
}

// fenceFresh is how recent a fenced write's confirmation of the lease must be for CheckFence to
// answer from it instead of reading the incident: a write that found the lease valid proves what
// the read would (the step running under this fence, the lease unexpired), and a lease, unexpired,
// is only ever superseded after it expires (TakeOver) or by its own end. Far under the lease TTL;
// about the age a read's answer already has when a PBX write goes out after it under load. So
// deny's PUT follows its write-ahead record with no Redis round trip between them (one that, on a
// busy Redis, waits behind other clients' fsyncs).
const fenceFresh = 25 * time.Millisecond

func (s *Store) newRun(l Lease, ttl time.Duration, confirmed time.Time) *Run {
	return &Run{s: s, ttl: ttl, l: l, confirmed: confirmed}
}

// confirm records that a fenced write sent at at found the lease valid.
func (r *Run) confirm(at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.ended && at.After(r.confirmed) {
		r.confirmed = at
	}
}

// Lease returns the run's lease as it stands (Until as last renewed).
func (r *Run) Lease() Lease {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.l
}

// CheckFence returns nil while the run holds the current, unexpired lease of its step; call it
// before every PBX call. Errors: ErrFenced, ErrNotFound.
func (r *Run) CheckFence(ctx context.Context) error {
	r.mu.Lock()
	l, at := r.l, r.confirmed
	r.mu.Unlock()
	if now := r.s.nowUTC(); !at.After(now) && now.Sub(at) < fenceFresh && now.Before(l.Until) {
		return nil // a fenced write just found the lease valid (fenceFresh)
	}
	inc, err := r.s.Get(ctx, l.IncidentID)
	if err != nil {
		return err
	}
	return r.s.leaseValid(&inc, l)
}

// Renew extends a valid lease by the run's lease TTL from now.
// Errors: ErrFenced (the lease was lost: stop), ErrNotFound, ErrConflict.
func (r *Run) Renew(ctx context.Context) error {
	var until time.Time
	_, err := r.with(ctx, func(inc *Incident, l Lease, _ *mutation) error {
		until = r.s.nowUTC().Add(r.ttl)
		inc.Steps[l.Step].LeaseUntil = until
		return nil
	})
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.l.Until = until
	r.mu.Unlock()
	return nil
}

// with is a fenced update: fn runs only while the run's lease is valid. Errors: ErrFenced,
// ErrNotFound, ErrConflict, ErrInvalid (fn changed the incident's identity or state), fn's error.
func (r *Run) with(ctx context.Context, fn func(*Incident, Lease, *mutation) error) (Incident, error) {
	l := r.Lease()
	sent := r.s.nowUTC() // the lease is valid at least from here to the write (CheckFence)
	inc, err := r.s.update(ctx, l.IncidentID, func(inc *Incident, m *mutation) error {
		if err := r.s.leaseValid(inc, l); err != nil {
			return err
		}
		return fn(inc, l, m)
	})
	if err == nil {
		r.confirm(sent)
	}
	return inc, err
}

// Progress records, fenced, that the running step did something on the PBX (key → value, e.g.
// "device/1001a" → "deleted"), so a runner resuming after a takeover continues instead of repeating.
// Errors: ErrFenced, ErrNotFound, ErrConflict.
func (r *Run) Progress(ctx context.Context, key, value string) (Incident, error) {
	return r.Record(ctx, key, value, nil)
}

// Record is Progress with the audit lines that say what was done (may be nil), written with it
// in one script (Lines). Errors: as Progress.
func (r *Run) Record(ctx context.Context, key, value string, lines Lines) (Incident, error) {
	return r.with(ctx, func(inc *Incident, l Lease, m *mutation) error {
		st := inc.Steps[l.Step]
		if st.Progress == nil {
			st.Progress = map[string]string{}
		}
		st.Progress[key] = value
		if lines != nil {
			m.lines = lines(inc)
		}
		return nil
	})
}

// Finish ends the running step as done or warnings (fenced) with its summary and sub-results, and
// its audit lines (may be nil: Lines); the lease ends. Errors: ErrInvalid (another status), and as
// Progress.
func (r *Run) Finish(ctx context.Context, status Status, summary string, subs []SubResult, lines Lines) (Incident, error) {
	if !status.Finished() {
		return Incident{}, fmt.Errorf("finish step with status %q: %w", status, ErrInvalid)
	}
	return r.end(ctx, func(st *StepState) { st.Status, st.Summary, st.SubResults = status, summary, subs }, lines)
}

// Fail ends the running step as failed (fenced) with an error kind (netsapiens kind or engine
// reason) and a plain message that must not hold a secret, and its audit lines (may be nil); the
// lease ends, Progress stays for the retry. Errors: as Progress.
func (r *Run) Fail(ctx context.Context, kind ErrKind, msg string, lines Lines) (Incident, error) {
	return r.end(ctx, func(st *StepState) { st.Status, st.ErrKind, st.ErrMessage = StatusFailed, kind, msg }, lines)
}

// end records how the running step ended (fenced) and ends its lease.
func (r *Run) end(ctx context.Context, set func(*StepState), lines Lines) (Incident, error) {
	inc, err := r.with(ctx, func(inc *Incident, l Lease, m *mutation) error {
		st := inc.Steps[l.Step]
		set(st)
		st.FinishedAt = r.s.nowUTC()
		st.LeaseOwner, st.LeaseUntil = "", time.Time{}
		if lines != nil {
			m.lines = lines(inc)
		}
		return nil
	})
	if err == nil {
		r.mu.Lock()
		r.ended, r.confirmed = true, time.Time{}
		r.mu.Unlock()
	}
	return inc, err
}

// BeginOptions says who starts a step and under which conditions.
type BeginOptions struct {
	// Actor is the person of record (Slack user ID or "cli:<name>"). When the step starts from an
	// approved request the requester stays the actor of record and Actor is ignored.
	Actor string
	// Owner names the runner holding the lease (replica and worker).
	Owner string
	// LeaseTTL is how long the lease lasts unless renewed (the engine's setting); it must be > 0.
	LeaseTTL time.Duration
	// AllowFrom lists the statuses the step may start from; nil = ready and failed. Include
	// StatusAwaiting to start an approved request (an unapproved one gives ErrAwaitingApproval).
	AllowFrom []Status
	// ClearProgress names Progress keys that count within one run (the engine's resume counter):
	// a new run starts without them; TakeOver, which continues the same run, keeps them.
	ClearProgress []string
	// Force marks a restore run that may overwrite a drifted policy (force:restore). It is this
	// run's only: a Retry without it is not forced. A run from an approved request keeps the
	// request's Force.
	Force bool
	// Check, when set, is the engine's precondition (step order …), run on the fresh incident inside
	// the compare-and-set; its error aborts Begin and is returned as is.
	Check func(*Incident) error
	// Starting, when set, is called with the fresh incident once the step may start (after Check),
	// before the start is written: for what the runner sends alongside the write (deny's read of
	// the user). It is called again when a concurrent writer makes the write retry.
	Starting func(*Incident)
	// Lines, when set, are the audit lines of the start ("started"), written with it (Lines).
	Lines Lines
}

// Begin moves a step to running for exactly one caller: Attempts+1, a lease for opt.Owner with a new
// fence, handed out as the Run that makes the runner's fenced writes; opt.Lines are written with it. Everyone else gets a *StepError: ErrAlreadyRunning, ErrAlreadyDone (done, warnings, skipped),
// ErrAwaitingApproval or ErrBadTransition, with who and when. Other errors: ErrClosed, ErrNotFound,
// ErrInvalid (unknown step, no lease TTL), ErrConflict, and Check's error.
func (s *Store) Begin(ctx context.Context, id string, step Step, opt BeginOptions) (*Run, Incident, error) {
	ttl := opt.LeaseTTL
	if !step.Valid() || ttl <= 0 {
		return nil, Incident{}, fmt.Errorf("begin step %q with lease %s: %w", step, ttl, ErrInvalid)
	}
	allow := opt.AllowFrom
	if allow == nil {
		allow = []Status{StatusReady, StatusFailed}
	}
	var l Lease
	var now time.Time
	inc, err := s.mutate(ctx, id, func(inc *Incident, m *mutation) error {
		if !inc.Open() {
			return fmt.Errorf("begin %s on %s: %w", step, inc.ID, ErrClosed)
		}
		st := inc.Steps[step]
		if err := stepBlocked(st, allow); err != nil {
			return err
		}
		if opt.Check != nil {
			if err := opt.Check(inc); err != nil {
				return err
			}
		}
		if opt.Starting != nil {
			opt.Starting(inc)
		}
		now = s.nowUTC()
		if st.Status != StatusAwaiting {
			st.RequestedBy, st.RequestedAt = opt.Actor, now
			st.ApprovedBy, st.ApprovedAt, st.ApprovalExpires = "", time.Time{}, time.Time{}
			st.Force = opt.Force
		}
		st.Status = StatusRunning
		st.Attempts++
		st.StartedAt, st.FinishedAt = now, time.Time{}
		st.LeaseOwner, st.LeaseUntil, st.Fence = opt.Owner, now.Add(ttl), inc.Version
		st.Summary, st.SubResults, st.ErrKind, st.ErrMessage, st.SkipReason = "", nil, "", "", ""
		for _, k := range opt.ClearProgress {
			delete(st.Progress, k)
		}
		l = Lease{IncidentID: inc.ID, Step: step, Owner: opt.Owner, Fence: st.Fence, Until: st.LeaseUntil}
		if opt.Lines != nil {
			m.lines = opt.Lines(inc)
		}
		return nil
	})
	if err != nil {
		return nil, inc, err
	}
	return s.newRun(l, ttl, now), inc, nil
}

// stepBlocked says why a step with status st.Status may not start, or nil.
func stepBlocked(st *StepState, allow []Status) error {
	se := &StepError{Step: st.Step, Status: st.Status}
	switch st.Status {
	case StatusRunning:
		se.Err, se.By, se.At = ErrAlreadyRunning, st.RequestedBy, st.StartedAt
		return se
	case StatusDone, StatusWarnings, StatusSkipped:
		se.Err, se.By, se.At = ErrAlreadyDone, st.RequestedBy, st.FinishedAt
		return se
	}
	if !slices.Contains(allow, st.Status) {
		se.Err, se.By, se.At = ErrBadTransition, st.RequestedBy, st.RequestedAt
		if st.Status == StatusAwaiting {
			se.Err = ErrAwaitingApproval
		}
		return se
	}
	if st.Status == StatusAwaiting && !st.Approved() {
		se.Err, se.By, se.At = ErrAwaitingApproval, st.RequestedBy, st.RequestedAt
		return se
	}
	return nil
}

// leaseValid reports, as ErrFenced, why l may no longer write: the step is not running, its fence
// moved on (taken over) or the lease expired (then only TakeOver may resume it).
func (s *Store) leaseValid(inc *Incident, l Lease) error {
	if !l.Step.Valid() {
		return fmt.Errorf("lease on step %q: %w", l.Step, ErrInvalid)
	}
	st := inc.Steps[l.Step]
	switch {
	case st.Status != StatusRunning:
		return fmt.Errorf("lease %d on %s/%s: step is %s: %w", l.Fence, inc.ID, l.Step, st.Status, ErrFenced)
	case st.Fence != l.Fence:
		return fmt.Errorf("lease %d on %s/%s: superseded by %d: %w", l.Fence, inc.ID, l.Step, st.Fence, ErrFenced)
	case !s.nowUTC().Before(st.LeaseUntil):
		return fmt.Errorf("lease %d on %s/%s: expired at %s: %w", l.Fence, inc.ID, l.Step,
			st.LeaseUntil.Format(time.RFC3339), ErrFenced)
	}
	return nil
}

// ExpiredLeases lists the leases of running steps of open incidents whose LeaseUntil has passed:
// runners that died or hung. Reconcile hands each to TakeOver.
func (s *Store) ExpiredLeases(ctx context.Context) ([]Lease, error) {
	open, err := s.ListOpen(ctx)
	if err != nil {
		return nil, err
	}
	now := s.nowUTC()
	var out []Lease
	for _, inc := range open {
		for _, name := range Steps {
			st := inc.Steps[name]
			if st.Status == StatusRunning && !now.Before(st.LeaseUntil) {
				out = append(out, Lease{IncidentID: inc.ID, Step: name, Owner: st.LeaseOwner, Fence: st.Fence, Until: st.LeaseUntil})
			}
		}
	}
	return out, nil
}

// TakeOver gives an expired lease to owner with a new fence, only if it is still expired and still
// holds stale.Fence (so of two reconcilers one wins), as a Run with the new lease. Attempts is not increased: it is the same run,
// resumed from Progress. Errors: ErrAlreadyRunning (*StepError: the lease is valid again),
// ErrFenced (someone else took it over, or the step ended), ErrClosed, ErrNotFound, ErrConflict,
// ErrInvalid (unknown step, no lease TTL).
func (s *Store) TakeOver(ctx context.Context, stale Lease, owner string, ttl time.Duration) (*Run, error) {
	if !stale.Step.Valid() || ttl <= 0 {
		return nil, fmt.Errorf("take over step %q with lease %s: %w", stale.Step, ttl, ErrInvalid)
	}
	var l Lease
	var now time.Time
	_, err := s.mutate(ctx, stale.IncidentID, func(inc *Incident, _ *mutation) error {
		if !inc.Open() {
			return fmt.Errorf("take over %s on %s: %w", stale.Step, inc.ID, ErrClosed)
		}
		st := inc.Steps[stale.Step]
		now = s.nowUTC()
		if st.Status != StatusRunning || st.Fence != stale.Fence {
			return fmt.Errorf("take over lease %d on %s/%s: step is %s with fence %d: %w",
				stale.Fence, inc.ID, stale.Step, st.Status, st.Fence, ErrFenced)
		}
		if now.Before(st.LeaseUntil) {
			return &StepError{Err: ErrAlreadyRunning, Step: stale.Step, Status: st.Status, By: st.LeaseOwner, At: st.StartedAt}
		}
		st.LeaseOwner, st.LeaseUntil, st.Fence = owner, now.Add(ttl), inc.Version
		l = Lease{IncidentID: inc.ID, Step: stale.Step, Owner: owner, Fence: st.Fence, Until: st.LeaseUntil}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.newRun(l, ttl, now), nil
}

// RequestApproval puts a ready or failed step (or one whose earlier request expired or was
// approved but never started) into awaiting approval by someone other than by, valid for ttl.
// force marks a restore that overrides drift. Errors: *StepError with ErrAlreadyRunning,
// ErrAlreadyDone or ErrAwaitingApproval (a valid request is pending), ErrClosed, ErrNotFound, ErrInvalid.
func (s *Store) RequestApproval(ctx context.Context, id string, step Step, by string, ttl time.Duration, force bool) (Incident, error) {
	if !step.Valid() || ttl <= 0 {
		return Incident{}, fmt.Errorf("approval request for step %q, ttl %s: %w", step, ttl, ErrInvalid)
	}
	return s.mutate(ctx, id, func(inc *Incident, _ *mutation) error {
		if !inc.Open() {
			return fmt.Errorf("request approval on %s: %w", inc.ID, ErrClosed)
		}
		st := inc.Steps[step]
		now := s.nowUTC()
		prior := st.Status
		if st.Status == StatusAwaiting {
			if !st.Approved() && now.Before(st.ApprovalExpires) {
				return &StepError{Err: ErrAwaitingApproval, Step: step, Status: st.Status, By: st.RequestedBy, At: st.RequestedAt}
			}
			prior = st.PriorStatus
		} else if err := stepBlocked(st, []Status{StatusReady, StatusFailed}); err != nil {
			return err
		}
		if prior == "" {
			prior = StatusReady
		}
		st.Status, st.PriorStatus = StatusAwaiting, prior
		st.RequestedBy, st.RequestedAt, st.ApprovalExpires, st.Force = by, now, now.Add(ttl), force
		st.ApprovedBy, st.ApprovedAt, st.RejectedBy, st.RejectedAt = "", time.Time{}, "", time.Time{}
		return nil
	})
}

// Approve records by's approval of a pending request; the engine then calls Begin with
// AllowFrom = [StatusAwaiting]. Errors: ErrSelfApproval, ErrExpired, ErrNotAwaiting (*StepError;
// also when already approved), ErrClosed, ErrNotFound, ErrInvalid.
func (s *Store) Approve(ctx context.Context, id string, step Step, by string) (Incident, error) {
	return s.answer(ctx, id, step, by, func(st *StepState, now time.Time) error {
		if by == st.RequestedBy {
			return &StepError{Err: ErrSelfApproval, Step: step, Status: st.Status, By: st.RequestedBy, At: st.RequestedAt}
		}
		if !now.Before(st.ApprovalExpires) {
			return &StepError{Err: ErrExpired, Step: step, Status: st.Status, By: st.RequestedBy, At: st.ApprovalExpires}
		}
		st.ApprovedBy, st.ApprovedAt = by, now
		return nil
	})
}

// Reject answers a pending request with no (the requester may reject to withdraw it): the step goes
// back to what it was before the request (ready or failed). Errors: ErrNotAwaiting (*StepError),
// ErrClosed, ErrNotFound, ErrInvalid.
func (s *Store) Reject(ctx context.Context, id string, step Step, by string) (Incident, error) {
	return s.answer(ctx, id, step, by, func(st *StepState, now time.Time) error {
		st.Status = st.PriorStatus
		if st.Status == "" {
			st.Status = StatusReady
		}
		st.PriorStatus, st.ApprovalExpires, st.Force = "", time.Time{}, false
		st.RejectedBy, st.RejectedAt = by, now
		return nil
	})
}

// answer is the common part of Approve and Reject: the step must await an unanswered approval.
func (s *Store) answer(ctx context.Context, id string, step Step, by string, fn func(*StepState, time.Time) error) (Incident, error) {
	if !step.Valid() || by == "" {
		return Incident{}, fmt.Errorf("answer approval of step %q by %q: %w", step, by, ErrInvalid)
	}
	return s.mutate(ctx, id, func(inc *Incident, _ *mutation) error {
		if !inc.Open() {
			return fmt.Errorf("answer approval on %s: %w", inc.ID, ErrClosed)
		}
		st := inc.Steps[step]
		if st.Status != StatusAwaiting || st.Approved() {
			se := &StepError{Err: ErrNotAwaiting, Step: step, Status: st.Status, By: st.RequestedBy, At: st.RequestedAt}
			if st.Approved() {
				se.By, se.At = st.ApprovedBy, st.ApprovedAt
			}
			return se
		}
		return fn(st, s.nowUTC())
	})
}

// ClaimReminder claims the reminder that is due for an incident still in the deny policy (deny
// finished, restore not): the first one after `after` from the end of deny, then every `every`.
// Exactly one caller (replica) gets true per due reminder. Errors: ErrNotFound, ErrConflict.
func (s *Store) ClaimReminder(ctx context.Context, id string, after, every time.Duration) (bool, Incident, error) {
	claimed := false
	inc, err := s.mutate(ctx, id, func(inc *Incident, _ *mutation) error {
		claimed = false // fn runs again after a lost compare-and-set
		deny, restore := inc.Steps[StepDeny], inc.Steps[StepRestore]
		if !inc.Open() || !deny.Status.Finished() || restore.Status.Finished() {
			return errNoChange
		}
		now := s.nowUTC()
		due := deny.FinishedAt.Add(after)
		if !inc.RemindedAt.IsZero() {
			due = inc.RemindedAt.Add(every)
		}
		if now.Before(due) {
			return errNoChange
		}
		inc.RemindedAt, claimed = now, true
		return nil
	})
	if err != nil {
		return false, inc, err
	}
	return claimed, inc, nil
}
