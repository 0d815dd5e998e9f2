package remediate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// Resumed is what Reconcile did with one step whose runner died.
type Resumed struct {
	IncidentID  string
	Step        session.Step
	RequestedBy string           // the actor of record: Secrets are for this person only
	Incident    session.Incident // as stored afterwards
	Secrets     []Secret         // credentials the resumed run produced (deliver them to RequestedBy)
	Err         error            // the resumed run's error, if it failed (or stopped again)
	Failed      bool             // marked failed without resuming (its runners kept dying)
}

// reconcileParallel bounds the steps one Reconcile resumes at once: one long recreate must not
// stall every other resume (nor the reminders after them), and a burst of takeovers must not
// flood the PBX (its client has its own in-flight limit too).
const reconcileParallel = 8

// DefaultRepairEvery is how often (across replicas) Reconcile runs the store's Repair when
// Config.RepairEvery is 0.
const DefaultRepairEvery = 30 * time.Second

// repairer is the store's Repair under a claim shared by the replicas (*session.Store): it puts
// back into the open index an incident whose add failed (a Redis blip, a kill right after the
// open script), found by the user's open pointer, so that its steps are resumed.
type repairer interface {
	RepairClaimed(ctx context.Context, every time.Duration) (session.RepairReport, bool, error)
}

// Reconcile first repairs the store's global indexes (at most once per Config.RepairEvery
// across replicas, when the store can), then finds running steps whose lease expired (their
// runner died or hung), takes each over with a new fence and resumes it from its recorded
// progress, several at once, or marks it failed with a clear reason when its runners died too
// often. It also closes incidents whose restore finished but whose close was interrupted, and
// reads again the devices and live calls of opens whose read failed or was interrupted
// (liveretry.go).
// Takeovers lost to another replica are skipped. Errors: store errors while repairing or
// listing (per-step failures are in Resumed.Err).
func (e *Engine) Reconcile(ctx context.Context) ([]Resumed, error) {
	var errs []error
	if r, ok := e.store.(repairer); ok {
		rep, ran, err := r.RepairClaimed(ctx, e.cfg.RepairEvery)
		if err != nil {
			errs = append(errs, fmt.Errorf("repair: %w", err))
		}
		if ran && rep != (session.RepairReport{}) {
			e.log.Warn().Int("indexed", rep.Indexed).Int("removed", rep.Removed).Int("mirrored", rep.Mirrored).
				Msg("repaired the store's indexes (a crash or a Redis error had left them behind)")
		}
	}
	leases, err := e.store.ExpiredLeases(ctx)
	if err != nil {
		return nil, errors.Join(append(errs, fmt.Errorf("list expired leases: %w", err))...)
	}
	var (
		mu   sync.Mutex
		out  = make([]*Resumed, len(leases))
		wg   sync.WaitGroup
		slot = make(chan struct{}, reconcileParallel)
	)
	for i, stale := range leases {
		slot <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slot; wg.Done() }()
			run, err := e.store.TakeOver(ctx, stale, e.cfg.Owner, e.cfg.LeaseTTL)
			if errors.Is(err, ErrAlreadyRunning) || errors.Is(err, ErrFenced) || errors.Is(err, ErrClosed) || errors.Is(err, ErrNotFound) {
				return // renewed, taken by another replica, or gone
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("take over %s/%s: %w", stale.IncidentID, stale.Step, err))
				mu.Unlock()
				return
			}
			rs := e.resume(ctx, stale, run)
			out[i] = &rs
		}()
	}
	wg.Wait()
	var done []Resumed
	for _, r := range out {
		if r != nil {
			done = append(done, *r)
		}
	}
	open, err := e.store.ListOpen(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("list open incidents: %w", err))
	} else {
		errs = append(errs, e.closeFinished(ctx, open), e.retryLiveReads(ctx, open))
	}
	return done, errors.Join(errs...)
}

// resume continues one taken-over step.
func (e *Engine) resume(ctx context.Context, stale session.Lease, run Lease) Resumed {
	l := run.Lease()
	rs := Resumed{IncidentID: l.IncidentID, Step: l.Step}
	inc, err := e.store.Get(ctx, l.IncidentID)
	if err != nil {
		rs.Err = err
		return rs
	}
	st := inc.Step(l.Step)
	rs.RequestedBy, rs.Incident = st.RequestedBy, inc
	n, _ := strconv.Atoi(st.Progress[progResumes])
	n++
	why := fmt.Sprintf("runner %s stopped (lease expired at %s)", stale.Owner, fmtTime(stale.Until))
	var resumed session.Lines // the resume's audit line, written with its count
	if n <= maxResumes {
		resumed = auditLine(session.AuditEntry{Actor: "bot", Action: "step." + string(l.Step) + ".resumed", Step: l.Step,
			Before: stale.Owner, After: e.cfg.Owner, Detail: why + "; resuming from the recorded progress"})
	}
	inc, err = run.Record(ctx, progResumes, strconv.Itoa(n), resumed)
	if err != nil {
		rs.Err = err
		return rs
	}
	rs.Incident = inc
	if n > maxResumes {
		msg := fmt.Sprintf("%s; its runners died %d times, so it is not resumed again: check the bot's log, then Retry", why, n)
		stored, err := run.Fail(ctx, KindRunnerDied, msg, failedLine("bot", l.Step, msg))
		rs.Failed, rs.Err = true, err
		if err == nil {
			rs.Incident = stored
			e.notify(ctx, inc.ID)
			e.report(ctx, stored, l.Step, ResultFailed, KindRunnerDied)
		}
		return rs
	}
	e.log.Info().Str("incident", inc.ID).Str("step", string(l.Step)).Str("actor", st.RequestedBy).Str("from", stale.Owner).Msg("resuming step")
	e.notify(ctx, inc.ID)
	res, err := e.execute(ctx, run, inc, RunOptions{}, nil)
	rs.Incident, rs.Secrets, rs.Err = res.Incident, res.Secrets, err
	return rs
}

// closeFinished closes open incidents whose restore is finished (a close interrupted by a
// crash, or kept open by a step that was still running then).
func (e *Engine) closeFinished(ctx context.Context, open []session.Incident) error {
	var errs []error
	for _, inc := range open {
		if !inc.Step(session.StepRestore).Status.Finished() {
			continue
		}
		busy := false
		for _, s := range session.Steps {
			busy = busy || inc.Step(s).Status == session.StatusRunning
		}
		if busy {
			continue
		}
		if _, err := e.closeRestored(ctx, inc, inc.Step(session.StepRestore).RequestedBy); err != nil && !errors.Is(err, ErrAlreadyRunning) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RunReconciler runs Reconcile at once and then every `every` (0 = 5 s) until ctx ends,
// logging what it resumed and any error.
func (e *Engine) RunReconciler(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rs, err := e.Reconcile(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Warn().Err(err).Msg("reconcile")
		}
		for _, r := range rs {
			ev := e.log.Info()
			if r.Err != nil {
				ev = e.log.Warn().Str("kind", string(KindOf(r.Err)))
			}
			ev.Str("incident", r.IncidentID).Str("step", string(r.Step)).Bool("failed", r.Failed).Msg("reconciled step")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
