package remediate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// Plan is a dry run of the runbook for one user: every PBX write each step would make, with
// before → after values, read from the live PBX and the store. It never shows a secret.
type Plan struct {
	User, Domain string
	ReadAt       time.Time
	Steps        []PlanStep
}

// PlanStep is what one step would do.
type PlanStep struct {
	Step  session.Step
	Calls []PlannedCall
	Note  string // e.g. "the deny policy does not exist: deny would fail"
}

// PlannedCall is one PBX write (path unescaped, for reading).
type PlannedCall struct {
	Method, Path  string
	Before, After string
	Note          string
}

// hiddenSecret is how a plan shows a PIN or password.
const hiddenSecret = "••••••"

// Plan is a dry run of the four steps' own code for user@domain, as the runbook runs them:
// their reads go to the live PBX and the store, their writes are recorded (and applied to the
// dry run's own view of the PBX, so the next step sees them) instead of made, and their store
// writes stay in memory. It makes no write to the PBX or the store. Errors: ErrInvalid (bad
// user or domain, no PBX call), ErrUserNotFound, netsapiens kinds.
func (e *Engine) Plan(ctx context.Context, user, domain string) (Plan, error) {
	if err := netsapiens.ValidateUser(user); err != nil {
		return Plan{}, errorf(ErrInvalid, "%s", UserMessage(err))
	}
	domain = strings.ToLower(domain)
	if err := netsapiens.ValidateDomain(domain); err != nil {
		return Plan{}, errorf(ErrInvalid, "%s", UserMessage(err))
	}
	u, err := e.pbx.GetUser(ctx, domain, user)
	if errors.Is(err, netsapiens.ErrNotFound) {
		return Plan{}, errorf(ErrUserNotFound, "user %s does not exist in domain %s on the PBX", user, domain)
	}
	if err != nil {
		return Plan{}, fmt.Errorf("read user: %w", err)
	}
	if u.User != "" {
		user = u.User
	}
	p := Plan{User: user, Domain: domain, ReadAt: e.now().UTC()}
	lease := &dryLease{store: e.store, now: e.now, inc: session.Incident{User: user, Domain: domain,
		DenyPolicy: e.cfg.DenyPolicy, State: session.StateOpen, Steps: map[session.Step]*session.StepState{}}}
	for _, s := range session.Steps {
		lease.inc.Steps[s] = &session.StepState{Step: s, Status: session.StatusReady}
	}
	pbx := newDryPBX(e.pbx, func() *session.Incident { return &lease.inc })
	dry := *e
	dry.pbx, dry.hook, dry.dry = pbx, nil, true
	for _, d := range runbook {
		lease.step, pbx.step, pbx.calls, pbx.note = d.Step, d.Step, nil, ""
		r := &runner{e: &dry, lease: lease, step: d.Step, fence: lease.CheckFence, dry: pbx, inc: lease.inc,
			actor: "plan", ctx: ctx, pctx: ctx}
		_, err := d.run(r)
		if err != nil && !planned(err) {
			return Plan{}, err
		}
		ps := PlanStep{Step: d.Step, Calls: pbx.calls, Note: pbx.note}
		switch {
		case d.Step == session.StepRecreate && len(lease.inc.Devices) == 0:
			ps.Note = "the user has no devices"
		case d.Step == session.StepReset:
			ps.Note = "portal password: the API offers no reset (not possible)"
		case d.Step == session.StepRestore && errors.Is(err, ErrOriginalUnknown):
			ps.Calls = append(ps.Calls, PlannedCall{Method: "PUT", Path: userPath(domain, user), Before: e.denyPolicy(&lease.inc),
				After: "unknown", Note: "the original is unknown: restore will ask for the policy"})
		}
		p.Steps = append(p.Steps, ps)
	}
	return p, nil
}

// planned reports whether a step's error in a dry run is the step's own judgement of what it
// would find (the plan shows the calls up to there), not a failure to read the PBX or the store.
func planned(err error) bool {
	switch KindOf(err) {
	case KindDenyPolicy, KindDrift, KindOriginalUnknown, KindNotRestored, KindVerify:
		return true
	}
	return false
}

// describeDevice is a short, secret-free description of a device's settings.
func describeDevice(d netsapiens.Device) string {
	parts := []string{d.ID()}
	if d.Model != nil && *d.Model != "" {
		parts = append(parts, *d.Model)
	}
	if d.MAC != nil && *d.MAC != "" {
		parts = append(parts, "MAC "+*d.MAC)
	}
	if d.Line != nil {
		parts = append(parts, fmt.Sprintf("line %d", *d.Line))
	}
	if d.CallRecording != nil {
		parts = append(parts, "recording "+*d.CallRecording)
	}
	return strings.Join(parts, " · ")
}
