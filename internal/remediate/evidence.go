package remediate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/compromised-responder/bot/internal/evidence"
	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// The fraud evidence (internal/evidence) is read when an incident opens and again once deny
// has contained the user: the user's call records of the last 24 h, its live calls and its
// devices' registrations. The reads are the PBX's lowest priority (netsapiens.Low, below deny
// and opening incidents) and run after the open or the deny has returned, so they never delay
// containment; a failed read is recorded in the evidence ("unavailable"), never fails anything.

const (
	// maxEvidenceCDRs bounds one read (five pages): a day of a fraud run can be thousands of calls.
	maxEvidenceCDRs = 5000
	// evidenceTimeout bounds a background evidence read and its store write.
	evidenceTimeout = 30 * time.Second
)

// knownReads are live calls and devices the caller has just read from the PBX, at the same
// moment the evidence is about (the open's reads, deny's list of live calls after the verified
// PUT): the evidence takes them instead of reading them again, one PBX call less each.
type knownReads struct {
	calls       []netsapiens.ActiveCall
	callsRead   bool
	devices     []netsapiens.Device
	devicesRead bool
}

// startEvidence reads the evidence in the background (background); known holds what needs no
// read.
func (e *Engine) startEvidence(ctx context.Context, id, phase string, known knownReads) {
	if e.cfg.Evidence == nil || e.dry {
		return
	}
	e.background(ctx, id, "store fraud evidence ("+phase+")", func(ctx context.Context) error {
		_, err := e.collectEvidence(ctx, id, phase, known)
		return err
	})
}

// background runs fn detached from ctx's end (the Slack job that opened the incident or ran
// the step returns at once) but bounded by evidenceTimeout from now; Wait waits for it. Its
// error is logged: nothing waits on evidence. fn waits for its turn in the fill queue
// (openfill.go) as a closure, not as a parked goroutine: its reads are netsapiens.Low, below
// every other PBX request, and a burst's containments started ≈ 80 of them at once, each with
// its stack and its two or three reads' (BENCHMARKS.md, "Peak RSS at inflight=8").
func (e *Engine) background(ctx context.Context, id, what string, fn func(context.Context) error) {
	ctx = context.WithoutCancel(ctx)
	deadline := time.Now().Add(evidenceTimeout) // from now, as LiveReading counts an open's
	e.fills.add(e, func() {
		ctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		if err := fn(ctx); err != nil {
			e.log.Warn().Err(err).Str("incident", id).Msg(what)
		}
	})
}

// Wait waits for the background evidence reads started so far (each bounded by
// evidenceTimeout): a CLI process waits before it exits, serve at shutdown.
func (e *Engine) Wait() { e.bg.Wait() }

// CollectEvidence reads the fraud evidence of an incident's user now and stores it as the
// incident's Evidence (an evidence read at containment is not replaced by a slower one of the
// open), audited as evidence.read. A failed PBX read is recorded in the evidence, not returned.
// Errors: ErrInvalid (no rate table configured), ErrNotFound, store errors.
func (e *Engine) CollectEvidence(ctx context.Context, id, phase string) (session.Incident, error) {
	return e.collectEvidence(ctx, id, phase, knownReads{})
}

func (e *Engine) collectEvidence(ctx context.Context, id, phase string, known knownReads) (session.Incident, error) {
	if e.cfg.Evidence == nil {
		return session.Incident{}, errorf(ErrInvalid, "no rate table: evidence is off")
	}
	inc, err := e.store.Get(ctx, id)
	if err != nil {
		return inc, err
	}
	ev := e.readEvidence(ctx, inc, phase, known)
	stored := false
	inc, err = e.store.Update(ctx, id, func(i *session.Incident) error {
		stored = setEvidence(i, ev)
		return nil
	})
	if err != nil {
		return inc, fmt.Errorf("store evidence of %s: %w", id, err)
	}
	if stored {
		e.audit(ctx, id, "bot", "evidence.read", "", "", phase, evidence.Line(ev))
		e.notify(ctx, id)
	}
	return inc, nil
}

// setEvidence stores ev as i's evidence unless a newer read, or the containment's, is stored
// already; it reports whether it did.
func setEvidence(i *session.Incident, ev session.Evidence) bool {
	if cur := i.Evidence; cur != nil && (cur.ReadAt.After(ev.ReadAt) ||
		cur.Phase == session.PhaseContainment && ev.Phase == session.PhaseOpen) {
		return false
	}
	i.Evidence = &ev
	return true
}

// evidenceCtx is ctx for evidence reads: the lowest priority, tagged with the incident.
func evidenceCtx(ctx context.Context, id string) context.Context {
	return netsapiens.WithPriority(netsapiens.WithLogTag(ctx, id), netsapiens.Low)
}

// readEvidence makes the three reads at once, at the lowest priority, but for those known holds.
func (e *Engine) readEvidence(ctx context.Context, inc session.Incident, phase string, known knownReads) session.Evidence {
	rctx := evidenceCtx(ctx, inc.ID)
	in := evidence.Input{Phase: phase, Now: e.now().UTC()}
	var cdrErr, callErr, devErr error
	var wg sync.WaitGroup
	wg.Go(func() { in.CDRs, cdrErr = e.readCDRs(rctx, inc, in.Now) })
	in.Calls, in.Devices = known.calls, known.devices
	if !known.callsRead {
		wg.Go(func() { in.Calls, callErr = e.pbx.ListCalls(rctx, inc.Domain, inc.User) })
	}
	if !known.devicesRead {
		wg.Go(func() { in.Devices, devErr = e.pbx.ListDevices(rctx, inc.Domain, inc.User) })
	}
	wg.Wait()
	return e.summarize(inc.ID, in, cdrErr, callErr, devErr)
}

// readCDRs reads the user's call records of the evidence window that ends at now.
func (e *Engine) readCDRs(rctx context.Context, inc session.Incident, now time.Time) ([]netsapiens.CDR, error) {
	return e.pbx.ListCDRs(rctx, inc.Domain, inc.User, now.Add(-evidence.Window), now, maxEvidenceCDRs)
}

// summarize is the evidence of in, whose reads failed with the errors given (logged).
func (e *Engine) summarize(id string, in evidence.Input, cdrErr, callErr, devErr error) session.Evidence {
	in.CDRsFailed, in.CallsFailed, in.DevicesFailed = failure(cdrErr), failure(callErr), failure(devErr)
	for _, err := range []error{cdrErr, callErr, devErr} {
		if err != nil {
			e.log.Warn().Err(err).Str("incident", id).Str("phase", in.Phase).Msg("evidence read failed")
		}
	}
	return e.cfg.Evidence.Summarize(in)
}

// failure is a failed read's reason in plain words ("" for no error).
func failure(err error) string {
	if err == nil {
		return ""
	}
	return UserMessage(err)
}
