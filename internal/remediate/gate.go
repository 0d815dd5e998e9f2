package remediate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/compromised-responder/bot/internal/evidence"
	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// The restore gate: before restore gives the user their dial permission back, it checks that
// no international or premium call started since containment (someone still calls out: a
// second account, a permit rule) and that each re-created device has registered again, which
// it can only do with its new credentials. The gate is checked (and stored, for the card and
// the restore dialogs) after recreate and reset, and again by restore itself before its PUT:
// an unmet gate fails restore with ErrGate and no PBX write, and only a restore "over the
// gate" (RunOptions.OverGate, its own button and dialog) goes through, audited as
// gate.overridden ("restored over the gate: …"). The gate is on with Config.RestoreGate and a
// rate table (Config.Evidence).

// ErrGate: the restore gate is not met and the restore did not ask to go over it.
var ErrGate = errors.New("restore gate not met")

// KindGate is ErrGate's kind (the card offers "Restore over the gate" for it).
const KindGate Kind = "gate"

// progOverGate records a restore's request to go over the gate: the pending request's, and per run.
const progOverGate = "over-gate"

// gateOn reports whether restore is gated.
func (e *Engine) gateOn() bool { return e.cfg.RestoreGate && e.cfg.Evidence != nil }

// CheckGate reads the restore gate now and stores it as the incident's Gate. Errors: ErrInvalid
// (the gate is off), ErrNotFound, store errors; a failed PBX read is recorded in
// the gate (which it leaves unmet).
func (e *Engine) CheckGate(ctx context.Context, id string) (session.Incident, error) {
	if !e.gateOn() {
		return session.Incident{}, errorf(ErrInvalid, "the restore gate is off")
	}
	inc, err := e.store.Get(ctx, id)
	if err != nil {
		return inc, err
	}
	if !inc.Step(session.StepDeny).Status.Finished() {
		return inc, nil // no containment yet: nothing to gate
	}
	return e.storeGate(ctx, id, e.readGate(ctx, inc))
}

// startGate checks the gate in the background (after recreate and reset).
func (e *Engine) startGate(ctx context.Context, id string) {
	if !e.gateOn() || e.dry {
		return
	}
	e.background(ctx, id, "check the restore gate", func(ctx context.Context) error {
		_, err := e.CheckGate(ctx, id)
		return err
	})
}

// readGate reads the calls since containment and, once recreate has run, the devices, at the
// lowest priority (nothing waits on it but a person and a restore).
func (e *Engine) readGate(ctx context.Context, inc session.Incident) session.Gate {
	rctx := netsapiens.WithPriority(netsapiens.WithLogTag(ctx, inc.ID), netsapiens.Low)
	now := e.now().UTC()
	in := evidence.GateInput{Now: now, Since: inc.Step(session.StepDeny).FinishedAt}
	if in.Since.After(now) {
		in.Since = now
	}
	if rc := inc.Step(session.StepRecreate); rc.Status.Finished() {
		in.RecreatedAt = rc.StartedAt
		for _, d := range inc.Devices {
			in.Recreated = append(in.Recreated, d.Device)
		}
	}
	var cdrErr, devErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		in.CDRs, cdrErr = e.pbx.ListCDRs(rctx, inc.Domain, inc.User, in.Since, now, maxEvidenceCDRs)
	})
	if len(in.Recreated) > 0 {
		wg.Go(func() { in.Devices, devErr = e.pbx.ListDevices(rctx, inc.Domain, inc.User) })
	}
	wg.Wait()
	in.CDRsFailed, in.DevsFailed = failure(cdrErr), failure(devErr)
	return e.cfg.Evidence.Gate(in)
}

// storeGate stores g unless a newer check is stored, and tells the card.
func (e *Engine) storeGate(ctx context.Context, id string, g session.Gate) (session.Incident, error) {
	inc, err := e.store.Update(ctx, id, func(i *session.Incident) error {
		if i.Gate != nil && i.Gate.CheckedAt.After(g.CheckedAt) {
			return nil
		}
		i.Gate = &g
		return nil
	})
	if err != nil {
		return inc, fmt.Errorf("store the restore gate of %s: %w", id, err)
	}
	e.notify(ctx, id)
	return inc, nil
}

// gate is restore's check before its PUT: nil when the gate is met, off, or already passed by
// this attempt (a resumed run past the PUT); ErrGate when it is unmet and the run did not ask
// to go over it; over the gate, it is audited and the restore goes on.
func (r *runner) gate() error {
	e := r.e
	if !e.gateOn() || e.dry || r.prog(progRestore) != "" {
		return nil
	}
	over := r.opts.OverGate || r.prog(r.runKey(progOverGate)) != ""
	if r.opts.OverGate && r.prog(r.runKey(progOverGate)) == "" {
		if err := r.progress(r.runKey(progOverGate), "yes"); err != nil {
			return err
		}
	}
	g := e.readGate(r.pctx, r.inc)
	if inc, err := e.storeGate(r.ctx, r.inc.ID, g); err != nil {
		e.log.Warn().Err(err).Str("incident", r.inc.ID).Msg("store the restore gate")
	} else {
		r.inc = inc
	}
	problems := evidence.GateProblems(g, e.now())
	if len(problems) == 0 {
		return nil
	}
	what := strings.Join(problems, "; ")
	if !over {
		return errorf(ErrGate, "restore held by the gate: %s. Nothing was changed; Retry once it is met, or use Restore over the gate", what)
	}
	e.audit(r.ctx, r.inc.ID, r.actor, "gate.overridden", session.StepRestore, "gate not met", "restore", "restored over the gate: "+what)
	return nil
}

// HeldPolicy is the policy chosen for the restore the gate held (the restore_original dialog's
// or --policy's, kept per attempt), or "" when restore is not held or set the original: a
// restore over the gate goes on with that choice instead of asking for it again (without it,
// an unknown original would fail the restore over the gate).
func HeldPolicy(inc *session.Incident) string {
	st := inc.Step(session.StepRestore)
	if st.Status != session.StatusFailed || st.ErrKind != KindGate {
		return ""
	}
	return st.Progress[runKeyAt(progPolicy, st.Attempts)]
}

// heldPolicy is HeldPolicy of incident id as stored ("" when it cannot be read: the restore then
// asks for a policy as it would without one).
func (e *Engine) heldPolicy(ctx context.Context, id string) string {
	inc, err := e.store.Get(ctx, id)
	if err != nil {
		return ""
	}
	return HeldPolicy(&inc)
}

// RequestedOverGate reports whether the pending restore request asks to go over the gate (what
// the card and the approver's dialog say).
func RequestedOverGate(inc *session.Incident) bool {
	return inc.Step(session.StepRestore).Progress[progOverGate] != ""
}
