package remediate

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// The dry run (Plan) runs the steps' own code with two stand-ins: dryPBX reads the live PBX
// but records each write as a PlannedCall and applies it to its own view instead (so the steps'
// read-backs see what the write would have done), and dryLease keeps the incident in memory. So
// the four steps are written once, and what Plan lists is what a run would do.

// dryPBX is a PBX that never writes: reads come from the live PBX (each list read once), with
// the recorded writes applied on top.
type dryPBX struct {
	live  PBX
	step  session.Step // the step being planned (for the calls' notes)
	inc   func() *session.Incident
	calls []PlannedCall
	note  string // the planned step's note

	// The dry run is one goroutine: no lock.
	users   map[string]netsapiens.User // user@domain → as read, with the writes applied
	devices map[string][]netsapiens.Device
	gone    map[string]netsapiens.Device // deleted devices by id, as they were
	phones  map[string][]netsapiens.Phone
	calls0  map[string][]netsapiens.ActiveCall
}

func newDryPBX(live PBX, inc func() *session.Incident) *dryPBX {
	return &dryPBX{live: live, inc: inc, users: map[string]netsapiens.User{}, devices: map[string][]netsapiens.Device{},
		gone: map[string]netsapiens.Device{}, phones: map[string][]netsapiens.Phone{}, calls0: map[string][]netsapiens.ActiveCall{}}
}

// Paths for reading, as the API documents them (unescaped).
func userPath(domain, user string) string    { return "/domains/" + domain + "/users/" + user }
func devicesPath(domain, user string) string { return userPath(domain, user) + "/devices" }

func (d *dryPBX) record(c PlannedCall) { d.calls = append(d.calls, c) }

func (d *dryPBX) GetUser(ctx context.Context, domain, user string) (netsapiens.User, error) {
	k := user + "@" + domain
	if u, ok := d.users[k]; ok {
		return u, nil
	}
	u, err := d.live.GetUser(ctx, domain, user)
	if err == nil {
		d.users[k] = u
	}
	return u, err
}

func (d *dryPBX) UpdateUser(ctx context.Context, domain, user string, upd netsapiens.UserUpdate) error {
	u, err := d.GetUser(ctx, domain, user)
	if err != nil {
		return err
	}
	if upd.DialPolicy != nil {
		c := PlannedCall{Method: "PUT", Path: userPath(domain, user), Before: u.DialPolicy, After: *upd.DialPolicy}
		switch o := d.inc().Original; {
		case d.step == session.StepDeny:
			c.Note = "dial-policy; the original is recorded first"
		case o != nil && o.Known && o.Source != "":
			c.Note = "the original kept from incident " + o.Source
		}
		d.record(c)
		u.DialPolicy = *upd.DialPolicy
	}
	if upd.VoicemailPIN != nil {
		d.record(PlannedCall{Method: "PUT", Path: userPath(domain, user), Before: "voicemail PIN " + hiddenSecret,
			After: fmt.Sprintf("new random %d-digit PIN %s", len(*upd.VoicemailPIN), hiddenSecret)})
		u.VoicemailPIN = *upd.VoicemailPIN
	}
	d.users[user+"@"+domain] = u
	return nil
}

func (d *dryPBX) GetDialPolicy(ctx context.Context, domain, name string) (netsapiens.DialPolicy, error) {
	return d.live.GetDialPolicy(ctx, domain, name)
}

func (d *dryPBX) ListDialPolicies(ctx context.Context, domain string) ([]netsapiens.DialPolicy, error) {
	return d.live.ListDialPolicies(ctx, domain)
}

func (d *dryPBX) GetDomainDialPolicy(ctx context.Context, domain, name string) (netsapiens.DialPolicy, error) {
	return d.live.GetDomainDialPolicy(ctx, domain, name)
}

func (d *dryPBX) GetSystemDialPolicy(ctx context.Context, name string) (netsapiens.DialPolicy, error) {
	return d.live.GetSystemDialPolicy(ctx, name)
}

func (d *dryPBX) ListDomainDialPolicyPermissions(ctx context.Context, domain, name string) ([]netsapiens.Permission, error) {
	return d.live.ListDomainDialPolicyPermissions(ctx, domain, name)
}

func (d *dryPBX) ListSystemDialPolicyPermissions(ctx context.Context, name string) ([]netsapiens.Permission, error) {
	return d.live.ListSystemDialPolicyPermissions(ctx, name)
}

func (d *dryPBX) ListDevices(ctx context.Context, domain, user string) ([]netsapiens.Device, error) {
	return cached(d.devices, user+"@"+domain, func() ([]netsapiens.Device, error) { return d.live.ListDevices(ctx, domain, user) })
}

// cached reads a list from the live PBX once; later reads get the dry run's view of it (a copy).
func cached[T any](m map[string][]T, k string, read func() ([]T, error)) ([]T, error) {
	if _, ok := m[k]; !ok {
		v, err := read()
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return append([]T(nil), m[k]...), nil
}

func (d *dryPBX) GetDevice(ctx context.Context, domain, user, device string) (netsapiens.Device, error) {
	devs, err := d.ListDevices(ctx, domain, user)
	if err != nil {
		return netsapiens.Device{}, err
	}
	for _, dv := range devs {
		if dv.ID() == device {
			return dv, nil
		}
	}
	return netsapiens.Device{}, &netsapiens.Error{Kind: netsapiens.KindNotFound, Status: 404, Message: "device " + device + " not found"}
}

// CreateDevice records the create and answers as the PBX does: the device with a new password
// (shown masked).
func (d *dryPBX) CreateDevice(ctx context.Context, domain, user string, dv netsapiens.Device) (netsapiens.Device, error) {
	devs, err := d.ListDevices(ctx, domain, user)
	if err != nil {
		return netsapiens.Device{}, err
	}
	settings := describeDevice(dv)
	if was, ok := d.gone[dv.ID()]; ok {
		settings = describeDevice(was)
	}
	d.record(PlannedCall{Method: "POST", Path: devicesPath(domain, user), Before: "SIP password " + hiddenSecret,
		After: settings + " · new SIP password " + hiddenSecret, Note: "same writable settings, no password (the PBX generates one)"})
	dv.SIPPassword = netsapiens.SecretPtr(hiddenSecret)
	d.devices[user+"@"+domain] = append(devs, dv)
	return dv, nil
}

func (d *dryPBX) UpdateDevice(ctx context.Context, domain, user, device string, dv netsapiens.Device) error {
	d.record(PlannedCall{Method: "PUT", Path: devicesPath(domain, user) + "/" + device, After: describeDevice(dv)})
	return nil
}

func (d *dryPBX) DeleteDevice(ctx context.Context, domain, user, device string) error {
	devs, err := d.ListDevices(ctx, domain, user)
	if err != nil {
		return err
	}
	kept := devs[:0]
	for _, dv := range devs {
		if dv.ID() != device {
			kept = append(kept, dv)
			continue
		}
		d.record(PlannedCall{Method: "DELETE", Path: devicesPath(domain, user) + "/" + device, Before: describeDevice(dv),
			After: "deleted", Note: "settings recorded first"})
		d.gone[device] = dv
	}
	// The PBX may drop the device's AOR from its phone line with it; plan for that.
	phones, err := d.ListPhones(ctx, domain)
	if err != nil {
		return err
	}
	aor := netsapiens.AOR(device, domain)
	for i := range phones {
		if l, ok := phones[i].HasAOR(aor); ok {
			phones[i].LineURI[l-1] = nil
		}
	}
	d.devices[user+"@"+domain], d.phones[domain] = kept, phones
	return nil
}

func (d *dryPBX) ListPhones(ctx context.Context, domain string) ([]netsapiens.Phone, error) {
	return cached(d.phones, domain, func() ([]netsapiens.Phone, error) { return d.live.ListPhones(ctx, domain) })
}

func (d *dryPBX) UpdatePhone(ctx context.Context, domain string, upd netsapiens.Phone) error {
	phones, err := d.ListPhones(ctx, domain)
	if err != nil {
		return err
	}
	for i, p := range phones {
		if p.MAC == nil || upd.MAC == nil || !strings.EqualFold(*p.MAC, *upd.MAC) {
			continue
		}
		for l, uri := range upd.LineURI {
			if uri == nil {
				continue
			}
			d.record(PlannedCall{Method: "PUT", Path: "/domains/" + domain + "/phones",
				Before: fmt.Sprintf("line %d of %s empty after the delete", l+1, *upd.MAC),
				After:  fmt.Sprintf("line %d = %s", l+1, *uri),
				Note:   "only if the PBX dropped the line; the phone picks its new password up at its next provisioning check"})
			phones[i].LineURI[l] = uri
		}
	}
	d.phones[domain] = phones
	return nil
}

func (d *dryPBX) RevokeJWT(ctx context.Context, domain, user string) error {
	d.record(PlannedCall{Method: "DELETE", Path: "/jwt/" + user + "@" + domain, Before: "sessions", After: "revoked",
		Note: "cannot be read back"})
	return nil
}

func (d *dryPBX) SendEmail(ctx context.Context, domain, user, template, subject string) error {
	u, err := d.GetUser(ctx, domain, user)
	if err != nil {
		return err
	}
	d.record(PlannedCall{Method: "POST", Path: userPath(domain, user) + "/email",
		After: "reset email to " + maskEmail(u.EmailAddress), Note: "template " + template})
	return nil
}

func (d *dryPBX) ListCalls(ctx context.Context, domain, user string) ([]netsapiens.ActiveCall, error) {
	return cached(d.calls0, user+"@"+domain, func() ([]netsapiens.ActiveCall, error) { return d.live.ListCalls(ctx, domain, user) })
}

func (d *dryPBX) EndCall(ctx context.Context, domain, user, callID string) error {
	cs, err := d.ListCalls(ctx, domain, user)
	if err != nil {
		return err
	}
	kept := cs[:0]
	for _, c := range cs {
		if c.ID() != callID {
			kept = append(kept, c)
			continue
		}
		d.record(PlannedCall{Method: "DELETE", Path: userPath(domain, user) + "/calls/" + callID,
			Before: "live call to " + c.DialedNumber, After: "ended"})
	}
	d.calls0[user+"@"+domain] = kept
	return nil
}

// ListCDRs reads through: the dry run collects no evidence, but the PBX interface has it.
func (d *dryPBX) ListCDRs(ctx context.Context, domain, user string, from, to time.Time, limit int) ([]netsapiens.CDR, error) {
	return d.live.ListCDRs(ctx, domain, user, from, to, limit)
}

// SetPortalPassword records the v1 update reset would make.
func (d *dryPBX) SetPortalPassword(ctx context.Context, domain, user string, _ netsapiens.Secret) error {
	d.record(PlannedCall{Method: "POST", Path: "v1 ?object=subscriber&action=update (" + user + "@" + domain + ")",
		Before: "portal password", After: "a new random one (pwd)", Note: "v1 cannot read it back"})
	return nil
}

// dryLease keeps a planned incident in memory: the steps' fenced writes land there.
type dryLease struct {
	store Store // read only: the user's last known original and the deny policies set before
	inc   session.Incident
	step  session.Step
	now   func() time.Time
}

func (l *dryLease) Lease() session.Lease {
	return session.Lease{IncidentID: l.inc.ID, Step: l.step, Owner: "plan"}
}
func (l *dryLease) CheckFence(context.Context) error { return nil }
func (l *dryLease) Renew(context.Context) error      { return nil }

// Record: a dry run writes no audit line.
func (l *dryLease) Record(ctx context.Context, key, value string, _ session.Lines) (session.Incident, error) {
	return l.Progress(ctx, key, value)
}

func (l *dryLease) Progress(_ context.Context, key, value string) (session.Incident, error) {
	st := l.inc.Steps[l.step]
	if st.Progress == nil {
		st.Progress = map[string]string{}
	}
	st.Progress[key] = value
	return l.inc, nil
}

func (l *dryLease) Finish(_ context.Context, status session.Status, summary string, subs []session.SubResult, _ session.Lines) (session.Incident, error) {
	st := l.inc.Steps[l.step]
	st.Status, st.Summary, st.SubResults = status, summary, subs
	return l.inc, nil
}

func (l *dryLease) Fail(_ context.Context, kind Kind, msg string, _ session.Lines) (session.Incident, error) {
	st := l.inc.Steps[l.step]
	st.Status, st.ErrKind, st.ErrMessage = session.StatusFailed, kind, msg
	return l.inc, nil
}

// SaveOriginal: a dry run writes no audit line.
func (l *dryLease) SaveOriginal(ctx context.Context, o session.Original, denyPolicy string, _ session.Lines) (session.Incident, error) {
	if l.inc.Original != nil {
		return l.inc, nil
	}
	prev, havePrev, err := l.store.UserOriginal(ctx, l.inc.User, l.inc.Domain)
	if err != nil {
		return l.inc, fmt.Errorf("read last known original: %w", err)
	}
	if denyPolicy != "" {
		l.inc.DenyPolicy = denyPolicy
	}
	denied, err := l.store.DenyPolicies(ctx, l.inc.User, l.inc.Domain)
	if err != nil {
		return l.inc, fmt.Errorf("read the deny policies set before: %w", err)
	}
	rec, _ := session.PickOriginal(o, prev, havePrev, append(denied, l.inc.DenyPolicy), l.inc.ID, l.now().UTC())
	l.inc.Original = &rec
	return l.inc, nil
}

// Replicated: a dry run writes nothing to wait for.
func (l *dryLease) Replicated(context.Context) error { return nil }

func (l *dryLease) SaveDevices(_ context.Context, devs []session.DeviceSnapshot) (session.Incident, error) {
	if l.inc.DevicesAt.IsZero() {
		l.inc.Devices = append([]session.DeviceSnapshot(nil), devs...)
		l.inc.DevicesAt = l.now().UTC()
	}
	return l.inc, nil
}

// planNote, in a dry run, makes note the planned step's note (the first one counts) and reports
// true: the dry run goes on where a run would stop. In a run it does nothing and reports false.
func (r *runner) planNote(note string) bool {
	if r.dry == nil {
		return false
	}
	if r.dry.note == "" {
		r.dry.note = note
	}
	return true
}

// planCall, in a dry run, lists c among the planned calls (a step's "no write here" line).
func (r *runner) planCall(c PlannedCall) {
	if r.dry != nil {
		r.dry.record(c)
	}
}
