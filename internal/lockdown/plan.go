package lockdown

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// Plan is the dry run of a lockdown: every member, their devices and what each step would do
// to them, as read from the PBX (reads only: no PBX write, nothing stored).
type Plan struct {
	Target     Target
	DenyPolicy string
	ReadAt     time.Time
	Members    []PlanMember
}

// PlanMember is one member in a plan.
type PlanMember struct {
	User, Domain string
	Policy       string   // the dial permission now
	Devices      []string // device IDs recreate would delete and create again (new SIP passwords)
	// Open is the user's open incident, which would join the lockdown ("" = a new one opens).
	Open string
	// DevicesErr is set when the devices could not be read (the plan still shows the member).
	DevicesErr string
}

// Key is the member's user@domain.
func (m PlanMember) Key() string { return m.User + "@" + m.Domain }

// Totals counts a plan's members and devices, and those already in the deny policy (their
// original is unknown unless an earlier incident recorded it: restore would ask for it).
func (p Plan) Totals() (members, devices, alreadyDenied, joining int) {
	for _, m := range p.Members {
		devices += len(m.Devices)
		if m.Policy == p.DenyPolicy {
			alreadyDenied++
		}
		if m.Open != "" {
			joining++
		}
	}
	return len(p.Members), devices, alreadyDenied, joining
}

// Plan reads what a lockdown of t would change. Errors: as Open's (ErrUnknownDomain,
// ErrUnknownUsers, ErrNoUsers, ErrTooMany), netsapiens kinds.
func (e *Engine) Plan(ctx context.Context, t Target) (Plan, error) {
	members, err := e.resolve(ctx, t)
	if err != nil {
		return Plan{}, err
	}
	p := Plan{Target: t, DenyPolicy: e.cfg.DenyPolicy, ReadAt: e.now().UTC(), Members: make([]PlanMember, len(members))}
	e.each(ctx, len(members), func(i int) {
		m := members[i]
		pm := PlanMember{User: m.user, Domain: m.domain, Policy: m.policy}
		devs, err := e.pbx.ListDevices(ctx, m.domain, m.user)
		if err != nil {
			pm.DevicesErr = remediate.UserMessage(err)
		}
		for _, d := range devs {
			pm.Devices = append(pm.Devices, d.ID())
		}
		if inc, err := e.store.FindOpen(ctx, m.user, m.domain); err == nil {
			pm.Open = inc.ID
		} else if !errors.Is(err, session.ErrNotFound) {
			e.log.Warn().Err(err).Str("user", m.user).Str("domain", m.domain).Msg("plan: look up the open incident")
		}
		p.Members[i] = pm
	})
	if err := ctx.Err(); err != nil {
		return Plan{}, fmt.Errorf("plan: %w", err)
	}
	return p, nil
}

// UserMessage words an error of this package (or of the engine below) for a person.
func UserMessage(err error) string {
	for _, known := range []error{ErrUnknownDomain, ErrNoUsers, ErrUnknownUsers, ErrTooMany, ErrBusy, ErrClosed,
		ErrNothing, ErrDevicesMissing} {
		if errors.Is(err, known) {
			return err.Error()
		}
	}
	return remediate.UserMessage(err)
}
