package remediate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// A card-first open's devices and live calls read (openfill.go) that failed (Live.ReadErr) or
// was interrupted (Live.Pending, its process died) is read again by Reconcile, on whichever
// replica runs it first, so neither waits for someone to type `/compromised status`. The
// retries are bounded: at most maxLiveRetries, each liveRetryAfter(tries) after the last began
// (backing off), and a read that keeps failing then stays on the card as it is (could not be
// read, or interrupted, with the `/compromised status` hint). A retry is claimed by one write
// that marks the read Pending again (the card shows it being read), so two replicas never make
// the same retry, and one that dies during it leaves an interrupted read for the next.

// maxLiveRetries is how many times the maintenance pass reads again one open's devices and live
// calls (with liveRetryAfter: over ≈ 15 minutes).
const maxLiveRetries = 5

// liveRetryAfter is how long after the last read began retry number tries+1 is due: 30 s, then
// doubling. Never less than evidenceTimeout, so a read still running is never retried.
func liveRetryAfter(tries int) time.Duration { return evidenceTimeout << min(tries, maxLiveRetries) }

// liveRetryDue reports whether l's devices and live calls should be read again at now.
func liveRetryDue(l *session.Live, now time.Time) bool {
	if l == nil || (!l.Pending && l.ReadErr == "") || l.Tries >= maxLiveRetries || LiveReading(l, now) {
		return false
	}
	return now.Sub(lastRead(l)) >= liveRetryAfter(l.Tries)
}

// errRetryNotDue: another replica claimed the retry first (or the read completed meanwhile).
var errRetryNotDue = errors.New("live read retry not due")

// retryLiveReads claims and starts (in the background, as an open's) the due retries of the
// open incidents' devices and live calls reads. Errors: store errors of the claims.
func (e *Engine) retryLiveReads(ctx context.Context, open []session.Incident) error {
	if e.dry {
		return nil
	}
	now := e.now().UTC()
	var errs []error
	for _, inc := range open {
		if !liveRetryDue(inc.Live, now) {
			continue
		}
		claimed, err := e.store.Update(ctx, inc.ID, func(i *session.Incident) error {
			if !i.Open() || !liveRetryDue(i.Live, now) {
				return errRetryNotDue
			}
			l := *i.Live
			l.Pending, l.ReadErr, l.Tries, l.TriedAt = true, "", l.Tries+1, now
			i.Live = &l
			return nil
		})
		if errors.Is(err, errRetryNotDue) || errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("claim the devices read of %s: %w", inc.ID, err))
			continue
		}
		e.log.Info().Str("incident", inc.ID).Int("try", claimed.Live.Tries).Msg("reading the devices and live calls again")
		e.notify(ctx, inc.ID)
		e.fillLive(ctx, claimed)
	}
	return errors.Join(errs...)
}
