package remediate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// OpenRequest asks to open an incident for User@Domain.
type OpenRequest struct {
	User, Domain string
	Reason       string // free text from the engineer; kept as plain text, at most 300 characters
	Actor        string // Slack user ID or "cli:<name>"
	Channel      string // where the card will be posted
	// Lockdown, when set, opens the incident as a member of that lockdown: no card of its own.
	Lockdown string
	// CardFirst opens with the user read alone (identity and dial permission, what the card
	// needs to be clicked) and reads the devices and live calls in the background, at
	// netsapiens.Low (openfill.go): the incident's Live is Pending until they are stored. Slack
	// sets it, so a burst of opens costs the PBX one call each before the cards can be clicked.
	CardFirst bool
}

// Open validates user and domain, reads the user from the PBX (canonical identity: domain
// lower-cased, user as the PBX returns it) and its live state (with r.CardFirst, the user alone:
// the devices and live calls follow in the background), and stores a new open incident, or
// returns the user's open one with created = false. The incident is stored before the card is
// posted; call Discard if the card cannot be posted. Errors: ErrInvalid (bad user or domain, no
// PBX call made), ErrUserNotFound, netsapiens kinds, store errors.
func (e *Engine) Open(ctx context.Context, r OpenRequest) (inc session.Incident, created bool, err error) {
	if err := netsapiens.ValidateUser(r.User); err != nil {
		return session.Incident{}, false, errorf(ErrInvalid, "%s", UserMessage(err))
	}
	domain := strings.ToLower(r.Domain)
	if err := netsapiens.ValidateDomain(domain); err != nil {
		return session.Incident{}, false, errorf(ErrInvalid, "%s", UserMessage(err))
	}
	// The deny policy is read while the user is (in the background, for the first deny).
	e.policies.warm(ctx, e.pbx, domain, e.cfg.DenyPolicy)
	var u netsapiens.User
	var live session.Live
	var reads knownReads
	if r.CardFirst {
		u, live, err = e.readUser(ctx, domain, r.User)
	} else {
		u, live, reads, err = e.readLive(ctx, domain, r.User)
	}
	if errors.Is(err, errReadUser) && errors.Is(err, netsapiens.ErrNotFound) {
		return session.Incident{}, false, errorf(ErrUserNotFound, "user %s does not exist in domain %s on the PBX", r.User, domain)
	}
	if err != nil {
		return session.Incident{}, false, fmt.Errorf("%s@%s: %w", r.User, domain, err)
	}
	user := u.User
	if user == "" {
		user = r.User
	}
	kept, err := e.store.UserDevices(ctx, user, domain)
	if err != nil {
		return session.Incident{}, false, fmt.Errorf("read kept devices of %s@%s: %w", user, domain, err)
	}
	inc, created, err = e.store.Open(ctx, session.Incident{
		User: user, Domain: domain, Reason: CleanReason(r.Reason), OpenedBy: r.Actor, Channel: r.Channel, Lockdown: r.Lockdown,
		DenyPolicy: e.cfg.DenyPolicy, Live: &live, EmailAtOpen: live.EmailMasked, Kept: stillMissing(kept, live),
	})
	if err != nil {
		return inc, false, fmt.Errorf("store incident for %s@%s: %w", user, domain, err)
	}
	if !created {
		return inc, false, nil
	}
	detail := fmt.Sprintf("%s@%s · dial permission %s · ", user, domain, live.DialPolicy)
	if live.Pending {
		detail += "devices and live calls being read"
	} else {
		detail += liveCounts(live, inc.Kept)
	}
	e.audit(ctx, inc.ID, r.Actor, "incident.opened", "", "", string(session.StateOpen), detail)
	e.log.Info().Str("incident", inc.ID).Str("step", "").Str("actor", r.Actor).Str("user", user).Str("domain", domain).Msg("incident opened")
	e.notify(ctx, inc.ID)
	if live.Pending {
		e.fillLive(ctx, inc) // then the evidence of the open, with the devices and calls it read
	} else {
		e.startEvidence(ctx, inc.ID, session.PhaseOpen, reads) // the live calls and devices just read
	}
	return inc, true, nil
}

// liveCounts is the audit's account of the devices and live calls read, and of the kept devices
// still missing.
func liveCounts(live session.Live, kept []session.DeviceSnapshot) string {
	s := fmt.Sprintf("%d device(s) · %d live call(s)", len(live.Devices), live.ActiveCalls)
	if len(kept) > 0 {
		s += " · " + deviceList(deviceIDs(kept)) + " deleted by an earlier incident and never re-created"
	}
	return s
}

// errReadUser marks readLive's error as the user read's (a 404 there means no such user).
var errReadUser = errors.New("read user")

// readLive reads the state the card shows: the user (policy, name, masked e-mail), its devices
// and its live calls, all three at once (one round trip, not three). The devices and calls are
// read at the user's path as given, which the PBX resolves to the same user as the user read.
// It also returns the devices and calls as read, for the evidence of the open (evidence.go).
// Errors: the user read's first (ErrNotFound: no such user), then the devices', then the calls'.
func (e *Engine) readLive(ctx context.Context, domain, user string) (netsapiens.User, session.Live, knownReads, error) {
	var devs []netsapiens.Device
	var calls []netsapiens.ActiveCall
	var devErr error
	var wg sync.WaitGroup
	wg.Go(func() { devs, calls, _, _, devErr = e.readDevicesCalls(ctx, domain, user) })
	u, live, err := e.readUser(ctx, domain, user)
	wg.Wait()
	if err != nil {
		return u, session.Live{}, knownReads{}, err
	}
	if devErr != nil {
		return u, session.Live{}, knownReads{}, devErr
	}
	live.Pending = false
	setDevicesCalls(&live, devs, calls)
	return u, live, knownReads{calls: calls, callsRead: true, devices: devs, devicesRead: true}, nil
}

// readUser reads the user alone: its Live has the identity and dial permission and is Pending
// (no devices or calls read). Errors: wrapped in errReadUser (ErrNotFound: no such user).
func (e *Engine) readUser(ctx context.Context, domain, user string) (netsapiens.User, session.Live, error) {
	u, err := e.pbx.GetUser(ctx, domain, user)
	if err != nil {
		return u, session.Live{}, fmt.Errorf("%w: %w", errReadUser, err)
	}
	return u, session.Live{
		ReadAt:      e.now().UTC(),
		DisplayName: strings.TrimSpace(u.FirstName + " " + u.LastName),
		DialPolicy:  u.DialPolicy,
		EmailMasked: maskEmail(u.EmailAddress),
		Pending:     true,
	}, nil
}

// readDevicesCalls reads the user's devices and live calls at once; err is the devices' error
// first, then the calls' (wrapped: what failed), and devErr, callErr each read's own.
func (e *Engine) readDevicesCalls(ctx context.Context, domain, user string) (devs []netsapiens.Device,
	calls []netsapiens.ActiveCall, devErr, callErr, err error) {
	var wg sync.WaitGroup
	wg.Go(func() { calls, callErr = e.pbx.ListCalls(ctx, domain, user) })
	devs, devErr = e.pbx.ListDevices(ctx, domain, user)
	wg.Wait()
	switch {
	case devErr != nil:
		err = fmt.Errorf("read devices: %w", devErr)
	case callErr != nil:
		err = fmt.Errorf("read live calls: %w", callErr)
	}
	return devs, calls, devErr, callErr, err
}

// setDevicesCalls puts the devices and live calls read into live.
func setDevicesCalls(live *session.Live, devs []netsapiens.Device, calls []netsapiens.ActiveCall) {
	live.ActiveCalls = len(calls)
	live.Devices = nil
	for _, d := range devs {
		ld := session.LiveDevice{Device: d.ID()}
		if d.Model != nil {
			ld.Model = *d.Model
		}
		if d.MAC != nil {
			ld.MAC = *d.MAC
		}
		if d.RegistrationState != nil {
			ld.Registered = *d.RegistrationState == "registered"
		}
		if d.RegistrationUserAgent != nil {
			ld.UserAgent = *d.RegistrationUserAgent
		}
		live.Devices = append(live.Devices, ld)
	}
}

// setLive stores a complete read of the live state (devices included) in i, and drops from
// i.Kept the kept devices it shows back on the PBX. Every complete read goes through here: a
// refresh that overtakes a card-first open's fill-in is the read that open keeps.
func setLive(i *session.Incident, l session.Live) {
	i.Live = &l
	i.Kept = stillMissing(i.Kept, l)
}

// Refresh re-reads the live state from the PBX and stores it (setLive). Errors: ErrNotFound,
// netsapiens kinds, store errors.
func (e *Engine) Refresh(ctx context.Context, id string) (session.Incident, error) {
	inc, err := e.store.Get(ctx, id)
	if err != nil {
		return inc, err
	}
	// A refresh is for a person looking at the card: it waits for containment (netsapiens.Low).
	rctx := netsapiens.WithPriority(netsapiens.WithLogTag(ctx, inc.ID), netsapiens.Low)
	_, live, _, err := e.readLive(rctx, inc.Domain, inc.User)
	if err != nil {
		return inc, err
	}
	inc, err = e.store.Update(ctx, inc.ID, func(i *session.Incident) error {
		if i.Live != nil && i.Live.ReadAt.After(live.ReadAt) {
			return nil // a newer read was stored meanwhile
		}
		setLive(i, live)
		return nil
	})
	if err != nil {
		return inc, fmt.Errorf("store live state: %w", err)
	}
	e.notify(ctx, inc.ID)
	return inc, nil
}

// SetCard records where the incident's card was posted (channel and message ts, the audit
// thread's root). Errors: ErrNotFound, store errors.
func (e *Engine) SetCard(ctx context.Context, id, channel, ts string) (session.Incident, error) {
	inc, err := e.store.Update(ctx, id, func(i *session.Incident) error {
		i.Channel, i.MessageTS = channel, ts
		return nil
	})
	if err != nil {
		return inc, fmt.Errorf("record card of %s: %w", id, err)
	}
	return inc, nil
}

// Discard removes an incident whose card could not be posted, so nothing stays open without a
// card. Errors: session.ErrStarted (a step already ran: it is kept), ErrClosed, ErrNotFound.
func (e *Engine) Discard(ctx context.Context, id string) error {
	if err := e.store.Discard(ctx, id); err != nil {
		return fmt.Errorf("discard incident %s: %w", id, err)
	}
	e.log.Info().Str("incident", id).Msg("incident discarded: its card could not be posted")
	return nil
}

// Abort closes the incident without restoring. The user stays in whatever policy they have
// now; the original policy is kept per user, so a new incident restores the true original.
// Steps not run are recorded as skipped. Errors: ErrAlreadyRunning (a step still runs),
// ErrClosed, ErrNotFound.
//
// While devices are deleted and not re-created (DevicesMissing), abort needs confirmMissing =
// their token (else ErrDevicesMissing, nothing changed); the confirmation is audited and their
// snapshots are kept for the user's next incident.
func (e *Engine) Abort(ctx context.Context, id, actor, note, confirmMissing string) (session.Incident, error) {
	note = CleanReason(note)
	cur, err := e.store.Get(ctx, id)
	if err != nil {
		return cur, err
	}
	if !cur.Open() {
		return cur, fmt.Errorf("abort incident %s: %s by %s: %w", cur.ID, cur.State, cur.ClosedBy, ErrClosed)
	}
	confirmed, err := checkMissing(&cur, confirmMissing)
	if err != nil {
		return cur, err
	}
	if confirmed != "" {
		e.audit(ctx, cur.ID, actor, "confirmed.devices_missing", "", "", "", "abort confirmed: "+confirmed)
	}
	inc, err := e.store.CloseKeeping(ctx, id, session.StateAborted, actor, note, keptDevices)
	if err != nil {
		return inc, err
	}
	detail := "closed without restoring"
	if inc.Step(session.StepDeny).Status.Finished() && !inc.Step(session.StepRestore).Status.Finished() {
		detail += "; the user stays in " + e.denyPolicy(&inc)
		if inc.Original != nil && inc.Original.Known {
			detail += " and the original (" + inc.Original.Policy + ") is kept for the next incident"
		}
	}
	if note != "" {
		detail += "; note: " + note
	}
	e.audit(ctx, inc.ID, actor, "incident.aborted", "", string(session.StateOpen), string(session.StateAborted), detail)
	e.notify(ctx, inc.ID)
	return inc, nil
}

// stillMissing keeps the kept devices that the live read does not show (one re-created by hand
// is back, and the next close forgets it).
func stillMissing(kept []session.DeviceSnapshot, live session.Live) []session.DeviceSnapshot {
	present := map[string]bool{}
	for _, d := range live.Devices {
		present[d.Device] = true
	}
	var out []session.DeviceSnapshot
	for _, k := range kept {
		if !present[k.Device] {
			out = append(out, k)
		}
	}
	return out
}
