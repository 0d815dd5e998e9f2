package lockdown

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// The kinds of a fan-out (session.LockdownRun.Kind).
const (
	KindStep    = "step"    // run (or ask approval for) Step on every member
	KindApprove = "approve" // approve every member's pending request for Step
	KindReject  = "reject"  // reject (or withdraw) them
	KindRetry   = "retry"   // run again the step that failed last, on the members where one did
	KindAbort   = "abort"   // close every member's incident without restoring
	// KindOverGate (overgate.go): restore over the gate the members the restore gate holds.
)

// Outcomes of one member in a fan-out (session.LockdownRun.Counts' keys).
const (
	OutDone      = "done"             // the step finished (done or done with warnings), or the answer was given
	OutAwaiting  = "awaiting"         // an approval request waits
	OutFailed    = "failed"           // the step failed; the member's card data has the reason
	OutUnknown   = "original unknown" // restore: no original known, the user stays in the deny policy
	OutRunning   = "running"          // another runner has it (a resumed step, another click)
	OutSkipped   = "skipped"          // nothing to do for this member (already done, closed, not awaiting)
	OutNotOpened = "not opened"       // the member's incident could not be opened (yet)
)

// Ask is one click on a lockdown card.
type Ask struct {
	Kind  string
	Step  session.Step // KindStep, KindApprove, KindReject
	Actor string
	// Confirm is the devices-missing token the clicked dialog showed (Summary.MissingToken), for
	// a restore or an abort that closes members while devices are deleted and not re-created.
	Confirm string
}

func (a Ask) valid() bool {
	switch a.Kind {
	case KindStep, KindApprove, KindReject:
		return a.Step.Valid()
	case KindRetry, KindAbort:
		return a.Step == ""
	case KindOverGate:
		return a.Step == session.StepRestore
	}
	return false
}

func (a Ask) what() string {
	switch a.Kind {
	case KindStep:
		return string(a.Step)
	case KindApprove, KindReject:
		return a.Kind + " " + string(a.Step)
	case KindOverGate:
		return "restore over the gate"
	}
	return a.Kind
}

// RunTitle words what run r does ("deny", "approve restore", "restore over the gate", …).
func RunTitle(r *session.LockdownRun) string { return Ask{Kind: r.Kind, Step: r.Step}.what() }

// Start records the fan-out a asks for on lockdown id and runs it in the background (it
// outlives the click; the card shows its progress). One fan-out runs at a time per lockdown.
// Errors: ErrClosed, ErrBusy (naming the running one), ErrDevicesMissing (abort or restore
// whose confirmation does not name the devices missing now), ErrInvalid, store errors.
func (e *Engine) Start(ctx context.Context, id string, a Ask) (session.Lockdown, error) {
	if !a.valid() {
		return session.Lockdown{}, fmt.Errorf("lockdown %s: %w", a.what(), remediate.ErrInvalid)
	}
	cur, err := e.store.GetLockdown(ctx, id)
	if err != nil {
		return cur, err
	}
	if a.Kind == KindAbort || a.Step == session.StepRestore && (a.Kind == KindStep || a.Kind == KindOverGate) {
		if !cur.Open() {
			return cur, fmt.Errorf("%w (%s)", ErrClosed, cur.State)
		}
		sum, err := e.Summary(ctx, cur)
		if err != nil {
			return cur, err
		}
		if a.Kind == KindOverGate && len(sum.Held) == 0 {
			return cur, fmt.Errorf("%w: no member's restore is held by the restore gate now", ErrNothing)
		}
		if sum.MissingToken != "" && a.Confirm != sum.MissingToken {
			return cur, fmt.Errorf("%w: %d device(s) of %d user(s) are deleted and not re-created; closing keeps their snapshots "+
				"for each user's next incident: confirm in the dialog, which now names them", ErrDevicesMissing, len(sum.Missing), sum.MissingUsers)
		}
	}
	now := e.now().UTC()
	var run *session.LockdownRun
	l, err := e.store.UpdateLockdown(ctx, id, func(l *session.Lockdown) error {
		if !l.Open() {
			return fmt.Errorf("%w (%s)", ErrClosed, l.State)
		}
		if last := l.LastRun(); last != nil && !last.Done() && now.Before(last.LeaseUntil) {
			return fmt.Errorf("%w: %s, started by %s at %s", ErrBusy, Ask{Kind: last.Kind, Step: last.Step}.what(), last.Actor,
				last.StartedAt.Format("15:04:05"))
		}
		run = &session.LockdownRun{Seq: len(l.Runs) + 1, Kind: a.Kind, Step: a.Step, Actor: a.Actor, StartedAt: now,
			Owner: e.cfg.Owner, LeaseUntil: now.Add(e.cfg.LeaseTTL), Confirm: a.Confirm}
		l.Runs = append(l.Runs, run)
		l.AddLine(now, a.Actor, fmt.Sprintf("%s started for %d users", a.what(), len(l.Members)), false)
		return nil
	})
	if err != nil {
		return l, err
	}
	e.audit(ctx, l.ID, a.Actor, "lockdown."+a.Kind+".started", fmt.Sprintf("%s for %d users", a.what(), len(l.Members)))
	e.notify(ctx, l.ID)
	e.launch(l.ID, run.Seq)
	return l, nil
}

// launch runs fan-out seq of lockdown id in the background, once per process.
func (e *Engine) launch(id string, seq int) {
	key := fmt.Sprintf("%s/%d", id, seq)
	e.mu.Lock()
	if e.local[key] {
		e.mu.Unlock()
		return
	}
	e.local[key] = true
	e.mu.Unlock()
	e.wg.Go(func() {
		defer func() {
			e.mu.Lock()
			delete(e.local, key)
			e.mu.Unlock()
		}()
		if err := e.fanout(e.base, id, seq); err != nil && e.base.Err() == nil {
			e.log.Warn().Err(err).Str("lockdown", id).Int("run", seq).Msg("lockdown fan-out")
		}
	})
}

// errLostRun: another replica took the run over (our lease expired).
var errLostRun = errors.New("the lockdown run was taken over")

// fanout works run seq over every member, renewing its lease, and records how it ended.
func (e *Engine) fanout(ctx context.Context, id string, seq int) error {
	l, err := e.store.GetLockdown(ctx, id)
	if err != nil {
		return err
	}
	if unopened(l) {
		if l, err = e.openMembers(ctx, l); err != nil {
			return err
		}
	}
	run := l.Runs[seq-1]
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := e.renew(rctx, id, seq, cancel)
	defer stop()

	a := Ask{Kind: run.Kind, Step: run.Step, Actor: run.Actor, Confirm: run.Confirm}
	confirmed := false
	if a.Confirm != "" {
		sum, err := e.Summary(rctx, l)
		confirmed = err == nil && sum.MissingToken == a.Confirm
	}
	outcomes := make([]string, len(l.Members))
	reasons := make([]string, len(l.Members))
	e.eachReleased(rctx, len(l.Members), func(i int, release func()) {
		outcomes[i], reasons[i] = e.member(rctx, l.ID, l.Members[i], a, confirmed, release)
		e.notify(rctx, l.ID)
	})
	if err := context.Cause(rctx); err != nil {
		return err // stopped (shutdown, or the run was taken over): the holder finishes it
	}
	counts := map[string]int{}
	var failed []string
	for i, o := range outcomes {
		if o == "" {
			o = OutSkipped
		}
		counts[o]++
		if o == OutFailed || o == OutNotOpened {
			failed = append(failed, l.Members[i].Key()+" ("+reasons[i]+")")
		}
	}
	now := e.now().UTC()
	took := now.Sub(run.StartedAt).Round(100 * time.Millisecond)
	line := fmt.Sprintf("%s for %d users: %s (%s)", a.what(), len(l.Members), countLine(counts), took)
	closing := e.closedState(ctx, l)
	l, err = e.store.UpdateLockdown(context.WithoutCancel(ctx), id, func(cur *session.Lockdown) error {
		r := cur.Runs[seq-1]
		if r.Done() {
			return session.ErrNoLockdownChange
		}
		if r.Owner != e.cfg.Owner {
			return errLostRun
		}
		r.FinishedAt, r.Counts = now, counts
		cur.AddLine(now, "bot", line, false)
		if counts[OutAwaiting] > 0 && a.Kind == KindStep {
			cur.AddLine(now, a.Actor, fmt.Sprintf("approval requested to %s %d users: approve or reject on the card",
				a.Step, counts[OutAwaiting]), true)
		}
		if closing != "" && cur.Open() {
			e.closeIn(cur, closing)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if closing != "" {
		e.audit(ctx, id, "bot", "lockdown.closed", "every member's incident is closed ("+string(closing)+")")
	}
	detail := line
	if len(failed) > 0 {
		detail += "; not done: " + capList(failed, 20)
	}
	e.audit(ctx, id, "bot", "lockdown."+a.Kind+".finished", detail)
	e.notify(ctx, id)
	return nil
}

// member does what a asks for one member and says how it went; a deny calls contained once the
// member is contained (its place in the fan-out is free from then: eachReleased).
func (e *Engine) member(ctx context.Context, lockdownID string, m session.Member, a Ask, confirmed bool, contained func()) (outcome, reason string) {
	if m.IncidentID == "" {
		return OutNotOpened, "its incident is not open yet"
	}
	inc, err := e.store.Get(ctx, m.IncidentID)
	if err != nil {
		return OutFailed, remediate.UserMessage(err)
	}
	if !inc.Open() {
		return OutSkipped, "closed"
	}
	step := a.Step
	if a.Kind == KindRetry {
		step = ""
		for _, s := range session.Steps {
			if inc.Step(s).Status == session.StatusFailed {
				step = s
				break
			}
		}
		if step == "" {
			return OutSkipped, "no failed step"
		}
	}
	token := ""
	if confirmed {
		_, token = remediate.DevicesMissing(&inc)
	}
	var res remediate.Result
	switch a.Kind {
	case KindStep, KindRetry:
		st := inc.Step(step)
		if st.Busy(e.now()) {
			return busyOutcome(st), string(st.Status)
		}
		// Deny sets its own PBX priorities inside the engine (netsapiens.Critical, then FollowUp).
		res, err = e.inc.Request(ctx, inc.ID, step, a.Actor, remediate.RunOptions{ConfirmMissing: token, Contained: contained})
	case KindApprove:
		st := inc.Step(step)
		if st.Status != session.StatusAwaiting || st.ApprovedBy != "" {
			return OutSkipped, "no pending request"
		}
		res, err = e.inc.Approve(ctx, inc.ID, step, a.Actor)
	case KindReject:
		if inc.Step(step).Status != session.StatusAwaiting {
			return OutSkipped, "no pending request"
		}
		_, err = e.inc.Reject(ctx, inc.ID, step, a.Actor)
		if err == nil {
			return OutDone, ""
		}
	case KindAbort:
		_, err = e.inc.Abort(ctx, inc.ID, a.Actor, "lockdown "+lockdownID+" aborted", token)
		if err == nil {
			return OutDone, ""
		}
	case KindOverGate:
		var skip string
		if res, skip, err = e.overGate(ctx, &inc, a.Actor, token); skip != "" {
			return OutSkipped, skip
		}
	}
	if len(res.Secrets) > 0 && e.deliver != nil {
		to := res.Incident.Step(step).RequestedBy
		if to == "" {
			to = a.Actor
		}
		e.deliver(ctx, res.Incident, to, step, res.Secrets)
	}
	switch {
	case err == nil && res.Awaiting:
		return OutAwaiting, ""
	case err == nil:
		return OutDone, ""
	case errors.Is(err, remediate.ErrOriginalUnknown):
		return OutUnknown, remediate.UserMessage(err)
	case errors.Is(err, remediate.ErrAlreadyDone), errors.Is(err, remediate.ErrClosed):
		return OutSkipped, remediate.UserMessage(err)
	case errors.Is(err, remediate.ErrAlreadyRunning), errors.Is(err, remediate.ErrFenced):
		return OutRunning, remediate.UserMessage(err)
	case errors.Is(err, remediate.ErrAwaitingApproval):
		return OutAwaiting, remediate.UserMessage(err)
	}
	return OutFailed, remediate.UserMessage(err)
}

func busyOutcome(st *session.StepState) string {
	switch st.Status {
	case session.StatusRunning:
		return OutRunning
	case session.StatusAwaiting:
		return OutAwaiting
	}
	return OutSkipped
}

// renew keeps run seq's lease while it runs; a run another replica took over is cancelled.
func (e *Engine) renew(ctx context.Context, id string, seq int, cancel context.CancelCauseFunc) (stop func()) {
	return session.KeepAlive(ctx, e.cfg.LeaseTTL/3, func(ctx context.Context) bool {
		_, err := e.store.UpdateLockdown(ctx, id, func(l *session.Lockdown) error {
			r := l.Runs[seq-1]
			if r.Owner != e.cfg.Owner {
				return errLostRun
			}
			r.LeaseUntil = e.now().UTC().Add(e.cfg.LeaseTTL)
			return nil
		})
		if errors.Is(err, errLostRun) {
			cancel(err)
			return false
		}
		if err != nil {
			e.log.Warn().Err(err).Str("lockdown", id).Msg("renew the lockdown run's lease")
		}
		return true
	})
}

// closedState is the state l closes in once every member's incident is closed: restored when
// each was restored, else aborted (some were closed without a restore); "" while any is open.
func (e *Engine) closedState(ctx context.Context, l session.Lockdown) session.State {
	state := session.StateRestored
	for _, m := range l.Members {
		if m.IncidentID == "" {
			return ""
		}
		inc, err := e.store.Get(ctx, m.IncidentID)
		if err != nil {
			return "" // an unreadable member counts as open: nothing is decided without it
		}
		switch inc.State {
		case session.StateOpen:
			return ""
		case session.StateAborted:
			state = session.StateAborted
		}
	}
	return state
}

// closeIn closes cur in state (inside an update), with its thread line.
func (e *Engine) closeIn(cur *session.Lockdown, state session.State) {
	cur.State = state
	cur.AddLine(e.now(), "bot", "lockdown closed: every member's incident is "+string(state), false)
}

// closeIfDone closes the lockdown once every member's incident is closed (members closed one
// by one, outside a fan-out).
func (e *Engine) closeIfDone(ctx context.Context, id string) error {
	l, err := e.store.GetLockdown(ctx, id)
	if err != nil || !l.Open() {
		return err
	}
	state := e.closedState(ctx, l)
	if state == "" {
		return nil
	}
	_, err = e.store.UpdateLockdown(ctx, id, func(l *session.Lockdown) error {
		if !l.Open() {
			return session.ErrNoLockdownChange
		}
		e.closeIn(l, state)
		return nil
	})
	if err == nil {
		e.audit(ctx, id, "bot", "lockdown.closed", "every member's incident is closed ("+string(state)+")")
	}
	return err
}

// Reconcile completes what a dead replica left of each open lockdown: members not yet opened are
// opened, a run whose lease expired is taken over and finished from where it was (members
// already handled are skipped by their own incidents' state), and the card is synced.
func (e *Engine) Reconcile(ctx context.Context) error {
	open, err := e.store.ListOpenLockdowns(ctx)
	if err != nil {
		return err
	}
	var errs []error
	now := e.now().UTC()
	for _, l := range open {
		e.notify(ctx, l.ID)
		last := l.LastRun()
		if last == nil || last.Done() {
			if unopened(l) {
				if _, err := e.openMembers(ctx, l); err != nil {
					errs = append(errs, err)
				}
			}
			if err := e.closeIfDone(ctx, l.ID); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if now.Before(last.LeaseUntil) {
			continue // its runner is alive
		}
		seq, from := last.Seq, last.Owner
		_, err := e.store.UpdateLockdown(ctx, l.ID, func(cur *session.Lockdown) error {
			r := cur.Runs[seq-1]
			if r.Done() || now.Before(r.LeaseUntil) {
				return errLostRun
			}
			r.Owner, r.LeaseUntil = e.cfg.Owner, now.Add(e.cfg.LeaseTTL)
			cur.AddLine(now, "bot", fmt.Sprintf("%s resumed: runner %s stopped", Ask{Kind: r.Kind, Step: r.Step}.what(), from), false)
			return nil
		})
		if errors.Is(err, errLostRun) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.audit(ctx, l.ID, "bot", "lockdown."+last.Kind+".resumed", "runner "+from+" stopped; resuming")
		e.launch(l.ID, seq)
	}
	return errors.Join(errs...)
}

// RunReconciler runs Reconcile now and every `every` (0 = 5 s) until ctx ends.
func (e *Engine) RunReconciler(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := e.Reconcile(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn().Err(err).Msg("reconcile lockdowns")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// unopened reports whether some member of l has no incident yet (openMembers opens them).
func unopened(l session.Lockdown) bool {
	return slices.ContainsFunc(l.Members, func(m session.Member) bool { return m.IncidentID == "" })
}

// countLine is "198 done, 2 failed" in a fixed order.
func countLine(c map[string]int) string {
	order := []string{OutDone, OutAwaiting, OutRunning, OutFailed, OutUnknown, OutNotOpened, OutSkipped}
	var parts []string
	for _, k := range order {
		if c[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[k], k))
		}
	}
	var rest []string
	for k := range c {
		if !slices.Contains(order, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		parts = append(parts, fmt.Sprintf("%d %s", c[k], k))
	}
	if len(parts) == 0 {
		return "nothing to do"
	}
	return strings.Join(parts, ", ")
}
