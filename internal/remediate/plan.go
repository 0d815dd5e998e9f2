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

// Plan reads the user, the deny policy, live calls, devices, phones and the user's last known
// original, and lists what each step would change. It makes no write to the PBX or the store.
// Errors: ErrInvalid (bad user or domain, no PBX call), ErrUserNotFound, netsapiens kinds.
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
	deny := e.cfg.DenyPolicy
	up := "/domains/" + domain + "/users/" + user
	p := Plan{User: user, Domain: domain, ReadAt: e.now().UTC()}

	// deny
	ds := PlanStep{Step: session.StepDeny}
	if _, err := e.pbx.GetDialPolicy(ctx, domain, deny); errors.Is(err, netsapiens.ErrNotFound) {
		ds.Note = fmt.Sprintf("the deny policy %q does not exist: deny would fail", deny)
	} else if err != nil {
		return Plan{}, fmt.Errorf("read deny policy: %w", err)
	} else if perms, err := e.pbx.ListDialPolicyPermissions(ctx, domain, deny); err == nil {
		for _, pm := range perms {
			if pm.Permits() {
				ds.Note = fmt.Sprintf("warning: %q has a permit rule (%s)", deny, pm.Match)
				break
			}
		}
	}
	if samePolicy(u.DialPolicy, deny) {
		ds.Calls = append(ds.Calls, PlannedCall{Method: "—", Path: up, Before: u.DialPolicy, After: deny,
			Note: "already in the deny policy: no PUT; the original is recorded as unknown unless a previous incident kept it"})
	} else {
		ds.Calls = append(ds.Calls, PlannedCall{Method: "PUT", Path: up, Before: u.DialPolicy, After: deny,
			Note: "dial-policy; the original is recorded first"})
	}
	calls, err := e.pbx.ListCalls(ctx, domain, user)
	if err != nil {
		return Plan{}, fmt.Errorf("read live calls: %w", err)
	}
	for _, c := range calls {
		ds.Calls = append(ds.Calls, PlannedCall{Method: "DELETE", Path: up + "/calls/" + c.ID(),
			Before: "live call to " + c.DialedNumber, After: "ended"})
	}
	p.Steps = append(p.Steps, ds)

	// recreate
	rs := PlanStep{Step: session.StepRecreate}
	devs, err := e.pbx.ListDevices(ctx, domain, user)
	if err != nil {
		return Plan{}, fmt.Errorf("read devices: %w", err)
	}
	phones, err := e.pbx.ListPhones(ctx, domain)
	if err != nil {
		return Plan{}, fmt.Errorf("read phones: %w", err)
	}
	if len(devs) == 0 {
		rs.Note = "the user has no devices"
	}
	for _, d := range devs {
		id := d.ID()
		dp := up + "/devices"
		settings := describeDevice(d)
		rs.Calls = append(rs.Calls,
			PlannedCall{Method: "DELETE", Path: dp + "/" + id, Before: settings, After: "deleted", Note: "settings recorded first"},
			PlannedCall{Method: "POST", Path: dp, Before: "SIP password " + hiddenSecret, After: settings + " · new SIP password " + hiddenSecret,
				Note: "same writable settings, no password (the PBX generates one)"})
		if mac, line := phoneLink(phones, id, domain); mac != "" {
			rs.Calls = append(rs.Calls, PlannedCall{Method: "PUT", Path: "/domains/" + domain + "/phones",
				Before: fmt.Sprintf("line %d of %s empty after the delete", line, mac),
				After:  fmt.Sprintf("line %d = %s", line, netsapiens.AOR(id, domain)),
				Note:   "only if the PBX dropped the line; the phone picks its new password up at its next provisioning check"})
		}
	}
	p.Steps = append(p.Steps, rs)

	// reset
	ss := PlanStep{Step: session.StepReset, Note: "portal password: the API offers no reset (not possible)"}
	ss.Calls = append(ss.Calls,
		PlannedCall{Method: "DELETE", Path: "/jwt/" + user + "@" + domain, Before: "sessions", After: "revoked", Note: "cannot be read back"},
		PlannedCall{Method: "PUT", Path: up, Before: "voicemail PIN " + hiddenSecret,
			After: fmt.Sprintf("new random %d-digit PIN %s", e.cfg.PINLength, hiddenSecret)})
	if e.cfg.ResetEmailTemplate != "" && u.EmailAddress != "" {
		ss.Calls = append(ss.Calls, PlannedCall{Method: "POST", Path: up + "/email", Before: "",
			After: "reset email to " + maskEmail(u.EmailAddress), Note: "template " + e.cfg.ResetEmailTemplate})
	}
	p.Steps = append(p.Steps, ss)

	// restore
	target := u.DialPolicy
	note := ""
	if samePolicy(u.DialPolicy, deny) {
		o, ok, err := e.store.UserOriginal(ctx, user, domain)
		if err != nil {
			return Plan{}, fmt.Errorf("read last known original: %w", err)
		}
		if ok && o.Known {
			target, note = o.Policy, "the original kept from incident "+o.Source
		} else {
			target, note = "unknown", "the original is unknown: restore will ask for the policy"
		}
	}
	p.Steps = append(p.Steps, PlanStep{Step: session.StepRestore, Calls: []PlannedCall{
		{Method: "PUT", Path: up, Before: deny, After: target, Note: note},
	}})
	return p, nil
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
