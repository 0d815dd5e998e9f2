package remediate

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// RunOptions modify one step run.
type RunOptions struct {
	// Force lets restore overwrite a dial policy that drifted since deny (force:restore).
	Force bool
	// RestorePolicy is the policy to restore when the original is unknown (the user was already
	// denied when the incident began); it must exist on the PBX. It also overrides a known
	// original, which the audit records.
	RestorePolicy string
	// ConfirmMissing confirms a restore that closes the incident while devices are deleted and
	// not re-created: the token DevicesMissing gives for the devices the person was shown.
	ConfirmMissing string
	// OverGate lets restore run although the restore gate is not met (gate.go): the explicit
	// "restore over the gate", audited as such.
	OverGate bool
	// Contained, when set, is called by deny once the user's dial permission reads back as the
	// deny policy (the card's "contained"), before the live calls are listed and ended; the step
	// goes on and Request returns when it is done. A lockdown frees the member's place in its
	// fan-out there (lockdown.eachReleased), so the next members' critical path does not wait
	// for this one's live-call work. It may be called again by a resumed run.
	Contained func()
	// Continue, when set, takes deny's work after "contained" (the live calls, then the step's
	// result) off the caller: Request returns at "contained" with Result.Continuing, the rest of
	// the run waits in the engine's follow-up queue as a closure (followWorkers run at once,
	// instead of a goroutine parked per step until its live-call list's turn at the PBX) and
	// Continue is called once with what Request would have returned. The run keeps its lease,
	// its renewal and its fencing meanwhile; ctx must not end when the caller returns (its
	// deadline still bounds the run). A run that ends before "contained" returns as usual and
	// never calls Continue.
	Continue func(Result, error)
}

// Secret is one credential for the requester only (an ephemeral message), with what to do
// with it. Value prints as "[redacted]" everywhere; use Value.Reveal() to deliver it.
type Secret struct {
	Label        string            // e.g. "softphone 1001a: SIP password"
	Instructions string            // e.g. "enter it in the softphone registered as 1001a@acme.example"
	Value        netsapiens.Secret // never empty
	Device       string            // the device id, "" for the voicemail PIN and the portal password
	// Portal marks the portal password set through v1 (reset with Config.PortalPassword).
	Portal bool
}

// Result is what a step run (or an approval request) did.
type Result struct {
	Incident session.Incident // as stored after the run
	Secrets  []Secret         // for the requester only; never stored or logged
	Awaiting bool             // an approval was requested instead of running the step
	// Continuing: the run goes on in the background and RunOptions.Continue gets its result.
	Continuing bool
}

// progress keys common to several steps.
const (
	progResumes = "resumes"         // how often Reconcile took the run over
	progPolicy  = "restore-policy"  // restore's explicit target policy (not a secret): the pending request's, and per run (runKey)
	progMissing = "confirm-missing" // restore's confirmation of missing devices (DevicesMissing's token)
)

// Request runs step, or asks for approval when Config.ApprovalSteps lists it and it has not
// been approved (Result.Awaiting). Order is checked first (ErrStepOrder). Errors: as Run, plus
// ErrAwaitingApproval (a request is already pending).
func (e *Engine) Request(ctx context.Context, id string, step session.Step, actor string, o RunOptions) (res Result, err error) {
	if _, ok := Def(step); !ok {
		return Result{}, errorf(ErrInvalid, "unknown step %q", step)
	}
	if step == session.StepRestore && o.OverGate && o.RestorePolicy == "" {
		o.RestorePolicy = e.heldPolicy(ctx, id) // gate.go
	}
	if !e.needsApproval(step) {
		return e.Run(ctx, id, step, actor, o)
	}
	defer func() {
		if err != nil {
			e.observe(ctx, res.Incident, step, false, "", err)
		}
	}()
	inc, err := e.store.Get(ctx, id)
	if err != nil {
		return Result{}, err
	}
	if err := checkOrder(&inc, step); err != nil {
		return Result{Incident: inc}, err
	}
	if step == session.StepRestore {
		if _, err := checkMissing(&inc, o.ConfirmMissing); err != nil {
			return Result{Incident: inc}, err
		}
	}
	if o.RestorePolicy != "" {
		if err := netsapiens.ValidatePolicyName(o.RestorePolicy); err != nil {
			return Result{Incident: inc}, errorf(ErrInvalid, "restore policy: %s", UserMessage(err))
		}
	}
	if o.Force && step == session.StepRestore {
		// The request (card and approver's dialog) names the policy it would overwrite: read it now.
		if fresh, err := e.Refresh(ctx, id); err != nil {
			e.log.Warn().Err(err).Str("incident", id).Msg("read the live dial permission for a forced restore request")
		} else {
			inc = fresh
		}
	}
	inc, err = e.store.RequestApproval(ctx, id, step, actor, e.cfg.ApprovalTTL, o.Force)
	if err != nil {
		return Result{Incident: inc}, err
	}
	if step == session.StepRestore {
		// The approver's run needs the explicit policy; it is not a secret.
		inc, err = e.store.Update(ctx, id, func(inc *session.Incident) error {
			st := inc.Steps[step]
			if st.Progress == nil {
				st.Progress = map[string]string{}
			}
			if o.RestorePolicy != "" {
				st.Progress[progPolicy] = o.RestorePolicy
			} else {
				delete(st.Progress, progPolicy)
			}
			if o.ConfirmMissing != "" {
				st.Progress[progMissing] = o.ConfirmMissing
			} else {
				delete(st.Progress, progMissing)
			}
			if o.OverGate {
				st.Progress[progOverGate] = "yes"
			} else {
				delete(st.Progress, progOverGate)
			}
			return nil
		})
		if err != nil {
			return Result{Incident: inc}, fmt.Errorf("record restore policy: %w", err)
		}
	}
	detail := "expires " + fmtTime(inc.Step(step).ApprovalExpires)
	if o.RestorePolicy != "" {
		detail = "restore to " + o.RestorePolicy + ", chosen by " + actor + "; " + detail
	}
	if o.OverGate {
		detail = "restore over the gate; " + detail
	}
	if o.Force {
		live := "unknown"
		if inc.Live != nil && inc.Live.DialPolicy != "" {
			live = inc.Live.DialPolicy + " (read " + fmtTime(inc.Live.ReadAt) + ")"
		}
		detail = "forced restore over the live dial permission " + live + "; " + detail
	}
	e.audit(ctx, inc.ID, actor, "approval.requested", step, "", string(session.StatusAwaiting), detail)
	e.notify(ctx, inc.ID)
	return Result{Incident: inc, Awaiting: true}, nil
}

// Approve records approver's approval of the pending request and runs the step at once, with
// the requester as the actor of record: Result.Secrets are for the REQUESTER. Errors:
// ErrSelfApproval, ErrExpired, ErrNotAwaiting, ErrClosed, ErrNotFound, and as Run.
func (e *Engine) Approve(ctx context.Context, id string, step session.Step, approver string) (Result, error) {
	inc, err := e.store.Approve(ctx, id, step, approver)
	if err != nil {
		e.observe(ctx, inc, step, false, "", err)
		return Result{Incident: inc}, err
	}
	st := inc.Step(step)
	e.audit(ctx, inc.ID, approver, "approval.approved", step, string(session.StatusAwaiting), "approved",
		"requested by "+st.RequestedBy)
	e.notify(ctx, inc.ID)
	o := RunOptions{Force: st.Force, RestorePolicy: st.Progress[progPolicy], ConfirmMissing: st.Progress[progMissing],
		OverGate: st.Progress[progOverGate] != ""}
	return e.begin(ctx, id, step, st.RequestedBy, o, []session.Status{session.StatusAwaiting})
}

// Reject answers a pending request with no (the requester may reject to withdraw it).
// Errors: ErrNotAwaiting, ErrClosed, ErrNotFound.
func (e *Engine) Reject(ctx context.Context, id string, step session.Step, actor string) (session.Incident, error) {
	inc, err := e.store.Reject(ctx, id, step, actor)
	if err != nil {
		return inc, err
	}
	e.audit(ctx, inc.ID, actor, "approval.rejected", step, string(session.StatusAwaiting), string(inc.Step(step).Status), "")
	e.notify(ctx, inc.ID)
	return inc, nil
}

// Run runs step now without an approval check (Approve, the CLI with --yes, tests). Errors:
// ErrStepOrder, the store's ErrAlreadyRunning / ErrAlreadyDone / ErrAwaitingApproval (with
// who and when, *session.StepError), ErrClosed, ErrNotFound; and from the step itself
// ErrDenyPolicyMissing, ErrDrift, ErrOriginalUnknown, ErrNotRestored, ErrVerify, ErrInvalid,
// netsapiens kinds, ErrFenced (the lease was lost: another runner continues).
func (e *Engine) Run(ctx context.Context, id string, step session.Step, actor string, o RunOptions) (Result, error) {
	if _, ok := Def(step); !ok {
		return Result{}, errorf(ErrInvalid, "unknown step %q", step)
	}
	return e.begin(ctx, id, step, actor, o, nil)
}

// begin moves the step to running (exactly one caller wins) and executes it.
func (e *Engine) begin(ctx context.Context, id string, step session.Step, actor string, o RunOptions, allow []session.Status) (Result, error) {
	if o.RestorePolicy != "" {
		if err := netsapiens.ValidatePolicyName(o.RestorePolicy); err != nil {
			return Result{}, errorf(ErrInvalid, "restore policy: %s", UserMessage(err))
		}
	}
	var confirmed string
	var early *userRead
	l, inc, err := e.store.Begin(ctx, id, step, session.BeginOptions{
		Actor: actor, Owner: e.cfg.Owner, LeaseTTL: e.cfg.LeaseTTL, AllowFrom: allow, Force: o.Force,
		ClearProgress: []string{progResumes}, // a Retry is a new run: its runners may die again
		Check: func(inc *session.Incident) error {
			if err := checkOrder(inc, step); err != nil || step != session.StepRestore {
				return err
			}
			var err error
			confirmed, err = checkMissing(inc, o.ConfirmMissing)
			return err
		},
		Starting: func(inc *session.Incident) {
			if step == session.StepDeny && early == nil {
				early = e.readUserEarly(ctx, inc) // deny reads the user while its start is written (deny.go)
			}
		},
		// The start's audit lines are written with it: a run is never running without them.
		Lines: func(inc *session.Incident) []session.AuditEntry {
			st := inc.Step(step)
			var lines []session.AuditEntry
			if confirmed != "" {
				lines = append(lines, session.AuditEntry{Actor: actor, Action: "confirmed.devices_missing", Step: step,
					Detail: "restore confirmed: " + confirmed})
			}
			return append(lines, session.AuditEntry{Actor: st.RequestedBy, Action: "step." + string(step) + ".started",
				Step: step, After: string(session.StatusRunning), Detail: "attempt " + strconv.Itoa(st.Attempts)})
		},
	})
	if err != nil {
		early.drop()
		e.observe(ctx, inc, step, false, "", err)
		return Result{Incident: inc}, err
	}
	e.notify(ctx, inc.ID)
	return e.execute(ctx, l, inc, o, early)
}

// runner is one execution of one step under one lease.
type runner struct {
	e     *Engine
	lease Lease // nil for Credentials, which rotates passwords outside a step run
	step  session.Step
	// fence is checked before every PBX write: the lease's CheckFence for a step run.
	fence func(ctx context.Context) error
	dry   *dryPBX          // set in a dry run (Plan): the PBX that records the writes
	inc   session.Incident // as last stored
	actor string           // actor of record (the requester)
	ctx   context.Context  // cancelled when the lease is lost
	// caller is the context the step was run under; once it ends, a step that can stops at its
	// next recorded boundary (stopAsked). nil = never asked.
	caller context.Context
	pctx   context.Context // ctx tagged with the incident ID, for PBX calls
	opts   RunOptions
	early  *userRead // deny: the user read sent while the step started (nil: read it now)
}

// stepFunc runs one step's body and returns its result for Finish.
type stepFunc func(r *runner) (stepResult, error)

type stepResult struct {
	status  session.Status
	summary string
	subs    []session.SubResult
	secrets []Secret
	after   string // the audit line's "after" value
	before  string
	close   bool // restore: close the incident afterwards
	// known: what the step read last that the evidence read after it may take (deny: the live
	// calls after containment).
	known knownReads
	// rest, when set (deny with RunOptions.Continue), is the step's work still to do: execute
	// queues it, and its result is the step's.
	rest func() (stepResult, error)
}

// execute runs the step body under l: renews the lease while it runs, records the result
// (Finish or Fail) unless the runner was stopped, and closes the incident after a restore.
func (e *Engine) execute(ctx context.Context, lease Lease, inc session.Incident, o RunOptions, early *userRead) (Result, error) {
	l := lease.Lease()
	def, ok := Def(l.Step)
	if !ok {
		early.drop()
		return Result{}, errorf(ErrInvalid, "unknown step %q", l.Step)
	}
	fn := def.run
	// The caller's context ending (the Slack job's deadline, a shutdown) asks the runner to stop
	// at its next recorded boundary; it does not cut a device between its delete and its create.
	// So the step's own calls run detached from it, and end on a lost lease, or stopGrace after
	// the caller's end as a last resort (each PBX call is bounded by the client's timeout).
	wctx, wcancel := context.WithCancelCause(context.WithoutCancel(ctx))
	unwatch := context.AfterFunc(ctx, func() {
		t := time.NewTimer(stopGrace)
		defer t.Stop()
		select {
		case <-t.C:
			wcancel(fmt.Errorf("%w: still running %s after the caller ended", errStop, stopGrace))
		case <-wctx.Done():
		}
	})
	rctx, cancel := context.WithCancelCause(wctx)
	stopRenew := e.renew(rctx, lease, cancel)
	r := &runner{e: e, lease: lease, step: l.Step, fence: lease.CheckFence, inc: inc, actor: inc.Step(l.Step).RequestedBy, ctx: rctx,
		pctx: netsapiens.WithLogTag(rctx, inc.ID), opts: o, caller: ctx, early: early}
	done := func() { cancel(nil); unwatch(); wcancel(nil); early.drop() }

	res, err := fn(r)
	if err == nil && res.rest != nil {
		// Deny is contained and its caller goes: the rest waits for its turn as a closure.
		rest, at := res.rest, r.inc // r is the continuation's from here
		e.follows.add(e, func() {
			out, err := e.continueRun(ctx, r, stopRenew, rest)
			done()
			o.Continue(out, err)
		})
		return Result{Incident: at, Continuing: true}, nil
	}
	defer done()
	return e.finishRun(ctx, r, stopRenew, res, err)
}

// continueRun runs the rest of r's step (stepResult.rest) on a follow-up worker and ends the
// run. A panic is the run's error, as a Slack job's panic is the job's: the worker and the
// process go on, and the caller still gets its answer (Continue) and its lane back; the step
// stays running until its lease expires (done ends the renewal) and Reconcile resumes it.
func (e *Engine) continueRun(ctx context.Context, r *runner, stopRenew func(), rest func() (stepResult, error)) (out Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			// The value may be anything; its type only, never its contents (could hold a secret).
			e.log.Error().Str("panic", fmt.Sprintf("%T", p)).Str("stack", string(debug.Stack())).
				Str("incident", r.inc.ID).Msg("step panicked")
			out, err = Result{Incident: r.inc}, fmt.Errorf("%w: the step's run panicked", errStop)
		}
	}()
	res, err := rest()
	return e.finishRun(ctx, r, stopRenew, res, err)
}

// finishRun ends r's run with the step body's outcome: stops the renewal, records the result
// (Finish or Fail) unless the runner was stopped, and closes the incident after a restore. ctx
// is the caller's.
func (e *Engine) finishRun(ctx context.Context, r *runner, stopRenew func(), res stepResult, err error) (Result, error) {
	lease, inc, rctx := r.lease, r.inc, r.ctx
	l := lease.Lease()
	// Every line of this run names its incident, step and actor of record.
	log := e.log.With().Str("incident", inc.ID).Str("step", string(l.Step)).Str("actor", r.actor).Logger()
	stopRenew()
	if err == nil && rctx.Err() != nil {
		err = context.Cause(rctx)
	}
	if err != nil && context.Cause(rctx) != nil && errors.Is(context.Cause(rctx), ErrFenced) {
		err = fmt.Errorf("%w: %w", context.Cause(rctx), err)
	}
	// The result is recorded even when the caller's context has ended (its deadline passed while
	// the step finished): under a context of its own, bounded.
	ctx, cancelRec := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancelRec()
	if err != nil {
		if isStop(err) {
			log.Warn().Err(err).
				Msg("step runner stopped; the step stays running until its lease expires and Reconcile resumes it")
			// What the run made before it stopped is the requester's (recreate records it as handed out).
			return Result{Incident: r.inc, Secrets: res.secrets}, err
		}
		// Fail under the caller's context: the step must not stay running because rctx ended.
		stored, ferr := lease.Fail(ctx, KindOf(err), UserMessage(err), failedLine(r.actor, l.Step, UserMessage(err)))
		if ferr != nil {
			log.Warn().Err(ferr).Msg("record step failure")
			return Result{Incident: r.inc}, errors.Join(err, ferr)
		}
		// Errors are wrapped from scrubbed PBX messages and the engine's own words: no secret.
		log.Warn().Err(err).Str("kind", string(KindOf(err))).Msg("step failed")
		e.notify(ctx, inc.ID)
		e.observe(ctx, stored, l.Step, true, session.StatusFailed, err)
		return Result{Incident: stored, Secrets: res.secrets}, err
	}
	stored, err := lease.Finish(ctx, res.status, res.summary, res.subs, auditLine(session.AuditEntry{Actor: r.actor,
		Action: "step." + string(l.Step) + "." + string(res.status), Step: l.Step, Before: res.before, After: res.after,
		Detail: res.summary}))
	if err != nil {
		// The PBX work is done but the lease was lost (or Redis failed): whoever holds the step
		// now verifies again. The secrets of this run are still the requester's.
		return Result{Incident: r.inc, Secrets: res.secrets}, fmt.Errorf("record result of %s: %w", l.Step, err)
	}
	log.Info().Str("status", string(res.status)).Msg("step finished")
	e.notify(ctx, inc.ID)
	e.observe(ctx, stored, l.Step, true, res.status, nil)
	switch l.Step {
	case session.StepDeny:
		e.startEvidence(ctx, inc.ID, session.PhaseContainment, res.known) // contained and the live calls dealt with
	case session.StepRecreate, session.StepReset:
		e.startGate(ctx, inc.ID) // what the card and the restore dialogs show before restore
	}
	if res.close {
		closed, err := e.closeRestored(ctx, stored, r.actor)
		switch {
		case errors.Is(err, ErrAlreadyRunning):
			// Another step still runs; Reconcile closes the incident once it has ended.
			log.Info().Msg("restore verified; the incident closes when the running step ends")
		case err != nil:
			return Result{Incident: stored, Secrets: res.secrets}, err
		default:
			stored = closed
		}
	}
	return Result{Incident: stored, Secrets: res.secrets}, nil
}

// closeRestored closes an incident whose restore finished (steps not run become skipped; the
// store forgets the user's last known original atomically). A step still running keeps it
// open; Reconcile closes it later.
func (e *Engine) closeRestored(ctx context.Context, inc session.Incident, actor string) (session.Incident, error) {
	closed, err := e.store.CloseKeeping(ctx, inc.ID, session.StateRestored, actor, "dial permission restored and verified", keptDevices)
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return closed, nil
		}
		return inc, fmt.Errorf("close incident %s: %w", inc.ID, err)
	}
	var skipped []string
	for _, s := range session.Steps {
		if st := closed.Step(s); st.Status == session.StatusSkipped {
			skipped = append(skipped, string(s))
		}
	}
	detail := "original dial permission restored and verified"
	if len(skipped) > 0 {
		detail += "; skipped: " + joinComma(skipped)
	}
	if names, _ := DevicesMissing(&closed); len(names) > 0 {
		detail += "; " + deviceList(names) + " deleted and not re-created: its snapshot is kept for the user's next incident"
	}
	e.audit(ctx, closed.ID, actor, "incident.restored", "", string(session.StateOpen), string(session.StateRestored), detail)
	e.notify(ctx, closed.ID)
	return closed, nil
}

// renew keeps l alive until stop is called; a lost lease cancels the run with ErrFenced.
func (e *Engine) renew(ctx context.Context, l Lease, cancel context.CancelCauseFunc) (stop func()) {
	every := e.renewEvery
	if every <= 0 {
		every = e.cfg.LeaseTTL / 3
	}
	return session.KeepAlive(ctx, every, func(ctx context.Context) bool {
		err := l.Renew(ctx)
		if errors.Is(err, ErrFenced) {
			cancel(fmt.Errorf("renew lease: %w", err))
			return false
		}
		if err != nil {
			// Redis may be back before the lease ends; CheckFence stops the writes meanwhile.
			e.log.Warn().Err(err).Str("incident", l.Lease().IncidentID).Msg("renew step lease")
		}
		return true
	})
}

// write runs one PBX write, the one path of every PBX write: the test hook, the fence check,
// the call, the hook again.
func (r *runner) write(op string, fn func(ctx context.Context) error) error {
	if h := r.e.hook; h != nil {
		if err := h(r.step, op, false); err != nil {
			return fmt.Errorf("before %s: %w", op, err)
		}
	}
	if err := r.fence(r.ctx); err != nil {
		return fmt.Errorf("before %s: %w", op, err)
	}
	err := fn(r.pctx)
	if h := r.e.hook; h != nil {
		if herr := h(r.step, op, true); herr != nil {
			return fmt.Errorf("after %s: %w", op, herr)
		}
	}
	return err
}

// progress records key → value fenced and keeps the stored incident.
func (r *runner) progress(key, value string) error {
	return r.record(key, value, nil)
}

// record is progress with the audit lines that say what was done (nil: none), in one write.
func (r *runner) record(key, value string, lines session.Lines) error {
	inc, err := r.lease.Record(r.ctx, key, value, lines)
	if err != nil {
		return fmt.Errorf("record progress %s: %w", key, err)
	}
	r.inc = inc
	r.e.notify(r.ctx, inc.ID)
	return nil
}

// stopAsked reports whether the caller's context ended: stop at the next recorded boundary.
func (r *runner) stopAsked() bool { return r.caller != nil && r.caller.Err() != nil }

// prog returns the recorded progress value of key.
func (r *runner) prog(key string) string { return r.inc.Step(r.step).Progress[key] }

// runKey names progress that belongs to this run only (this attempt of the step): a takeover
// resumes the same attempt and sees it, while a Retry (a new attempt) starts without it. It is
// for what must be done again on every Retry or must not outlive the click that asked for it
// (reset's revocation and email, restore's force and chosen policy); the rest of a step's
// progress carries over, so a Retry continues (recreate's devices, the old PIN's HMAC).
func (r *runner) runKey(key string) string {
	return runKeyAt(key, r.inc.Step(r.step).Attempts)
}

// runKeyAt is the progress key of key for a step's attempt (runKey of that run).
func runKeyAt(key string, attempt int) string { return key + "@" + strconv.Itoa(attempt) }

func (r *runner) domain() string { return r.inc.Domain }
func (r *runner) user() string   { return r.inc.User }

// auditStep appends an audit line about this step.
func (r *runner) auditStep(action, before, after, detail string) {
	r.e.audit(r.ctx, r.inc.ID, r.actor, "step."+string(r.step)+"."+action, r.step, before, after, detail)
}

// stepLine is auditStep's line, for a write that stores it with its record (session.Lines).
func (r *runner) stepLine(action, before, after, detail string) session.AuditEntry {
	return session.AuditEntry{IncidentID: r.inc.ID, Actor: r.actor, Action: "step." + string(r.step) + "." + action,
		Step: r.step, Before: before, After: after, Detail: detail}
}

// failedLine is the audit line of step's failure with msg, written with the Fail it describes.
func failedLine(actor string, step session.Step, msg string) session.Lines {
	return auditLine(session.AuditEntry{Actor: actor, Action: "step." + string(step) + ".failed", Step: step,
		Before: string(session.StatusRunning), After: string(session.StatusFailed), Detail: msg})
}

// auditLine is the one audit line e, written with the record it describes (session.Lines).
func auditLine(e session.AuditEntry) session.Lines {
	return func(*session.Incident) []session.AuditEntry { return []session.AuditEntry{e} }
}

func joinComma(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}
