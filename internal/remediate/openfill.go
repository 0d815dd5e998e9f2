package remediate

import (
	"context"
	"fmt"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// An open with OpenRequest.CardFirst stores the incident after the user read alone: the card
// needs the user's identity and dial permission (and its Deny button nothing more), so it is
// posted one round trip after the command instead of waiting for the devices and live calls too.
// Those are read here, in the background at netsapiens.Low (under a burst they wait for every
// deny's critical path, its follow-up and the other opens' user reads), and stored into the
// incident's Live, which the card sync then shows. Nothing of the open is lost on the way: the
// device list still drops the kept devices that are back on the PBX (Incident.Kept), the read is
// audited (live.read) and handed to the evidence of the open, which starts only then, and a
// failed read is stored as Live.ReadErr and shown on the card (`/compromised status` reads again)
// instead of an empty list. A process that dies before the read leaves Live.Pending, which the
// card shows as interrupted once the read's timeout has passed (LiveReading).

// LiveReading reports whether l's devices and live calls are still being read at now: Pending,
// and the background read (bounded by evidenceTimeout) may still store them. A Pending read older
// than that was interrupted (the process died): the card says so.
func LiveReading(l *session.Live, now time.Time) bool {
	return l != nil && l.Pending && now.Sub(l.ReadAt) < evidenceTimeout
}

// fillLive reads inc's devices and live calls in the background (detached from ctx's end,
// bounded by evidenceTimeout; Wait waits for it) and stores them, then starts the open's evidence.
func (e *Engine) fillLive(ctx context.Context, inc session.Incident) {
	if e.dry {
		return
	}
	e.background(ctx, inc.ID, "read the devices and live calls of the open", func(ctx context.Context) error {
		known, err := e.fillLiveNow(ctx, inc)
		e.startEvidence(ctx, inc.ID, session.PhaseOpen, known)
		return err
	})
}

// fillLiveNow reads and stores the devices and live calls of inc, the incident just opened; known
// is what it read, for the evidence. A read that fails is stored as Live.ReadErr (and returned);
// a complete read stored meanwhile (a refresh) is left alone.
func (e *Engine) fillLiveNow(ctx context.Context, inc session.Incident) (known knownReads, err error) {
	rctx := netsapiens.WithPriority(netsapiens.WithLogTag(ctx, inc.ID), netsapiens.Low)
	devs, calls, readErr := e.readDevicesCalls(rctx, inc.Domain, inc.User)
	at := e.now().UTC()
	var detail string
	stored, err := e.store.Update(ctx, inc.ID, func(i *session.Incident) error {
		detail = ""
		if i.Live == nil || !i.Live.Pending {
			return nil // a refresh stored a complete read meanwhile
		}
		l := *i.Live
		l.Pending = false
		if readErr != nil {
			l.ReadErr = UserMessage(readErr)
			detail = "devices and live calls could not be read: " + l.ReadErr
		} else {
			l.ReadAt, l.ReadErr = at, ""
			setDevicesCalls(&l, devs, calls)
			i.Kept = stillMissing(i.Kept, l)
			detail = liveCounts(l, i.Kept)
		}
		i.Live = &l
		return nil
	})
	if err != nil {
		return knownReads{}, fmt.Errorf("store the devices and live calls of %s: %w", inc.ID, err)
	}
	if detail != "" {
		e.audit(ctx, inc.ID, "bot", "live.read", "", "", "", detail)
		e.notify(ctx, stored.ID)
	}
	if readErr != nil {
		return knownReads{}, readErr
	}
	return knownReads{calls: calls, callsRead: true, devices: devs, devicesRead: true}, nil
}
