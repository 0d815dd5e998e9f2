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

// An open with OpenRequest.CardFirst stores the incident after the user read alone: the card
// needs the user's identity and dial permission (and its Deny button nothing more), so it is
// posted one round trip after the command instead of waiting for the devices and live calls too.
// Those are read here, in the background at netsapiens.Low (under a burst they wait for every
// deny's critical path, its follow-up and the other opens' user reads), together with the call
// records of the open's evidence, and stored in one write: the incident's Live and its evidence,
// which one card update then shows (the open costs the card sync no more than before). Nothing
// of the open is lost on the way: the device list still drops the kept devices that are back on
// the PBX (Incident.Kept), the read is audited (live.read), the evidence takes the devices and
// calls read instead of reading them again, and a failed read is stored as Live.ReadErr and shown
// on the card (`/compromised status` reads again) instead of an empty list. A process that dies
// before the read leaves Live.Pending, which the card shows as interrupted once the read's
// timeout has passed (LiveReading).

// LiveReading reports whether l's devices and live calls are still being read at now: Pending,
// and the background read (bounded by evidenceTimeout) may still store them. A Pending read older
// than that was interrupted (the process died): the card says so.
func LiveReading(l *session.Live, now time.Time) bool {
	return l != nil && l.Pending && now.Sub(lastRead(l)) < evidenceTimeout
}

// lastRead is when l's latest devices and live calls read began: the open's, or a retry's
// (liveretry.go).
func lastRead(l *session.Live) time.Time {
	if l.TriedAt.After(l.ReadAt) {
		return l.TriedAt
	}
	return l.ReadAt
}

// fillLive reads inc's devices and live calls, and the open's evidence, in the background
// (evidence.go's background: bounded by evidenceTimeout from the open, as LiveReading counts),
// and stores them.
func (e *Engine) fillLive(ctx context.Context, inc session.Incident) {
	if e.dry {
		return
	}
	e.background(ctx, inc.ID, "read the devices and live calls of the open", func(ctx context.Context) error {
		return e.fillLiveNow(ctx, inc)
	})
}

// fillWorkers is how many opens' follow-up reads run at once. They go at netsapiens.Low, so
// under a burst they wait for every other PBX request anyway; more would only park more
// goroutines (each 3–4 parallel reads, each with its stack) in the PBX client's queue. A burst
// of 100 opens parked ≈ 400 of them, ≈ 9 MB of stacks, the largest part of the bot's peak RSS
// above its heap (BENCHMARKS.md). Eight keep the PBX's slots fed when it is idle.
const fillWorkers = 8

// fillQueue runs the background reads at netsapiens.Low (the opens' follow-up reads, the
// evidence at containment, the restore gate: Engine.background), oldest first, on at most
// fillWorkers goroutines started as work arrives (counted in Engine.bg, so Wait waits for the
// queue to empty). A waiting read is a closure, not a parked goroutine. Hand-written: a worker pool that starts
// its goroutines on demand and stops them when idle is a dozen lines; x/sync's errgroup.SetLimit
// blocks the caller instead, and the open must not wait.
// The same queue with followWorkers holds the runs continued after deny's "contained"
// (RunOptions.Continue).
type fillQueue struct {
	limit   int // goroutines at most; 0 = fillWorkers
	mu      sync.Mutex
	jobs    []func()
	running int
}

func (q *fillQueue) add(e *Engine, job func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.jobs = append(q.jobs, job)
	limit := q.limit
	if limit == 0 {
		limit = fillWorkers
	}
	if q.running < limit {
		q.running++
		e.bg.Go(q.work)
	}
}

// work runs queued jobs until none is left.
func (q *fillQueue) work() {
	for {
		q.mu.Lock()
		if len(q.jobs) == 0 {
			q.running--
			q.mu.Unlock()
			return
		}
		job := q.jobs[0]
		q.jobs[0] = nil
		q.jobs = q.jobs[1:]
		q.mu.Unlock()
		job()
	}
}

// fillLiveNow reads and stores the devices and live calls of inc, the incident just opened, and
// (evidence on) the evidence of the open, all at once. A devices or calls read that fails is
// stored as Live.ReadErr (and returned); a complete read stored meanwhile (a refresh) is left
// alone, and the evidence is stored by setEvidence's rule.
func (e *Engine) fillLiveNow(ctx context.Context, inc session.Incident) error {
	rctx := evidenceCtx(ctx, inc.ID)
	now := e.now().UTC()
	withEvidence := e.cfg.Evidence != nil
	var cdrs []netsapiens.CDR
	var cdrErr error
	var wg sync.WaitGroup
	if withEvidence {
		wg.Go(func() { cdrs, cdrErr = e.readCDRs(rctx, inc, now) })
	}
	devs, calls, devErr, callErr, readErr := e.readDevicesCalls(rctx, inc.Domain, inc.User)
	wg.Wait()
	var ev session.Evidence
	if withEvidence {
		ev = e.summarize(inc.ID, evidence.Input{Phase: session.PhaseOpen, Now: now, CDRs: cdrs, Calls: calls, Devices: devs},
			cdrErr, callErr, devErr)
	}
	var detail string
	evStored := false
	_, err := e.store.Update(ctx, inc.ID, func(i *session.Incident) error {
		detail, evStored = "", withEvidence && setEvidence(i, ev)
		if i.Live == nil || !i.Live.Pending {
			return nil // a refresh stored a complete read meanwhile
		}
		l := *i.Live
		l.Pending = false
		if readErr != nil {
			l.ReadErr = UserMessage(readErr)
			detail = "devices and live calls could not be read: " + l.ReadErr
			i.Live = &l
			return nil
		}
		l.ReadAt, l.ReadErr = now, ""
		setDevicesCalls(&l, devs, calls)
		setLive(i, l)
		detail = liveCounts(l, i.Kept)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store the devices and live calls of %s: %w", inc.ID, err)
	}
	if detail != "" {
		e.audit(ctx, inc.ID, "bot", "live.read", "", "", "", detail)
	}
	if evStored {
		e.audit(ctx, inc.ID, "bot", "evidence.read", "", "", session.PhaseOpen, evidence.Line(ev))
	}
	if detail != "" || evStored {
		e.notify(ctx, inc.ID)
	}
	return readErr
}
