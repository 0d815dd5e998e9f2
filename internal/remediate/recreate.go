package remediate

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// devPrefix starts recreate's per-device progress keys: "device/<id>" → a Device* Progress.
const devPrefix = "device/"

// Credential fields that a snapshot keeps only sealed, and the SIP password only as an HMAC.
// The provisioning overrides are a free-form blob that often carries credentials: sealed too.
const (
	fieldSIPPassword  = "device-sip-registration-password"
	fieldProvUser     = "device-provisioning-username"
	fieldProvPassword = "device-provisioning-password"
	fieldOverrides    = "device-provisioning-overrides"
)

// Other progress keys of recreate, per device; they do not start with devPrefix, so the
// runbook's count of devices ignores them.
const (
	// credsPrefix+id: the device's sealed credentials could not be opened; it is re-created
	// without them (the value says which and why, never a value).
	credsPrefix = "creds/"
	// handedPrefix+id = "yes": a runner that stopped at the job's deadline handed the device's new
	// password to its caller, so a resumed run does not call it lost.
	handedPrefix = "handed/"
)

func devKey(id string) string       { return devPrefix + id }
func pwField(id string) string      { return "device/" + id + "/sip-password" }
func sealField(id, f string) string { return "device/" + id + "/" + f }

// writableFields returns d's writable fields without any credential, as JSON values: what a
// snapshot keeps and what verify compares.
func writableFields(d netsapiens.Device) (map[string]any, error) {
	w := d.Writable()
	w.SIPPassword, w.ProvisioningUsername, w.ProvisioningPassword, w.Overrides = nil, nil, nil, nil
	raw, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode device fields: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode device fields: %w", err)
	}
	return m, nil
}

// deviceFromFields builds a create/update body from snapshot fields.
func deviceFromFields(f map[string]any) (netsapiens.Device, error) {
	raw, err := json.Marshal(f)
	if err != nil {
		return netsapiens.Device{}, fmt.Errorf("encode snapshot fields: %w", err)
	}
	var d netsapiens.Device
	if err := json.Unmarshal(raw, &d); err != nil {
		return netsapiens.Device{}, fmt.Errorf("decode snapshot fields: %w", err)
	}
	return d.Writable(), nil
}

// sameJSON compares two JSON values after a round trip (so 1 and 1.0 agree).
func sameJSON(a, b any) bool {
	norm := func(v any) any {
		raw, err := json.Marshal(v)
		if err != nil {
			return v
		}
		var out any
		_ = json.Unmarshal(raw, &out)
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// phoneLink finds the phone line holding the device's AOR; the MAC is normalised.
func phoneLink(phones []netsapiens.Phone, device, domain string) (mac string, line int) {
	aor := netsapiens.AOR(device, domain)
	for _, p := range phones {
		if l, ok := p.HasAOR(aor); ok && p.MAC != nil {
			return normMAC(*p.MAC), l
		}
	}
	return "", 0
}

// normMAC is NormalizeMAC for comparisons: a MAC it cannot read stays as given (lower-cased).
func normMAC(mac string) string {
	if m, err := netsapiens.NormalizeMAC(mac); err == nil {
		return m
	}
	return strings.ToLower(mac)
}

// devicePhone is where a device's snapshot says its phone is: the line holding its AOR, else
// the MAC and line the device itself names (normalised, so the re-link compares like with like).
func devicePhone(d netsapiens.Device, phones []netsapiens.Phone, domain string) (mac string, line int) {
	mac, line = phoneLink(phones, d.ID(), domain)
	if mac == "" && d.MAC != nil && *d.MAC != "" {
		mac = normMAC(*d.MAC)
		if d.Line != nil {
			line = *d.Line
		}
	}
	return mac, line
}

// snapshotDevices records every device's writable fields, sealed provisioning credentials,
// the old SIP password's HMAC and the phone links, before the first delete.
func (r *runner) snapshotDevices(oldPW map[string]netsapiens.Secret) error {
	e := r.e
	devs, err := e.pbx.ListDevices(r.pctx, r.domain(), r.user())
	if err != nil {
		return fmt.Errorf("read devices: %w", err)
	}
	phones, err := e.pbx.ListPhones(r.pctx, r.domain())
	if err != nil {
		return fmt.Errorf("read phones: %w", err)
	}
	snaps := make([]session.DeviceSnapshot, 0, len(devs))
	for _, d := range devs {
		id := d.ID()
		if id == "" {
			continue
		}
		fields, err := writableFields(d)
		if err != nil {
			return err
		}
		s := session.DeviceSnapshot{Device: id, Fields: fields}
		if d.SIPPassword != nil && *d.SIPPassword != "" {
			s.PasswordHMAC = e.cfg.Keys.SecretHMAC(r.inc.ID, pwField(id), d.SIPPassword.Reveal())
			oldPW[id] = *d.SIPPassword
		}
		creds := map[string]string{}
		if d.ProvisioningUsername != nil && *d.ProvisioningUsername != "" {
			creds[fieldProvUser] = *d.ProvisioningUsername
		}
		if d.ProvisioningPassword != nil && *d.ProvisioningPassword != "" {
			creds[fieldProvPassword] = d.ProvisioningPassword.Reveal()
		}
		if d.Overrides != nil && *d.Overrides != "" {
			creds[fieldOverrides] = *d.Overrides
		}
		for _, f := range sortedKeys(creds) {
			sealed, err := e.cfg.Keys.Seal(r.inc.ID, sealField(id, f), creds[f])
			switch {
			case errors.Is(err, session.ErrNoKey):
				s.Unsealable = append(s.Unsealable, f)
			case err != nil:
				return fmt.Errorf("seal %s of device %s: %w", f, id, err)
			default:
				if s.Sealed == nil {
					s.Sealed = map[string]string{}
				}
				s.Sealed[f] = sealed
			}
		}
		s.PhoneMAC, s.PhoneLine = devicePhone(d, phones, r.domain())
		s.MACProvisioned = s.PhoneMAC != ""
		snaps = append(snaps, s)
	}
	kept, err := r.keptMissing(devs)
	if err != nil {
		return err
	}
	snaps = append(snaps, kept...)
	inc, err := r.lease.SaveDevices(r.ctx, snaps)
	if err != nil {
		return fmt.Errorf("record device snapshot: %w", err)
	}
	r.inc = inc
	detail := "device settings and phone links recorded before any change"
	if len(kept) > 0 {
		detail += fmt.Sprintf("; %d device(s) deleted by an earlier incident and never re-created: %s", len(kept),
			joinComma(deviceIDs(kept)))
	}
	r.auditStep("snapshot", "", fmt.Sprintf("%d device(s)", len(inc.Devices)), detail)
	e.notify(r.ctx, inc.ID)
	return nil
}

// keptMissing returns the user's kept devices (deleted by an earlier incident and never
// re-created) that are still missing from the PBX, to re-create with the others.
func (r *runner) keptMissing(live []netsapiens.Device) ([]session.DeviceSnapshot, error) {
	kept, err := r.e.store.UserDevices(r.ctx, r.user(), r.domain())
	if err != nil {
		return nil, fmt.Errorf("read kept devices: %w", err)
	}
	present := map[string]bool{}
	for _, d := range live {
		present[d.ID()] = true
	}
	var out []session.DeviceSnapshot
	for _, k := range kept {
		if !present[k.Device] {
			present[k.Device] = true
			out = append(out, k)
		}
	}
	return out, nil
}

func deviceIDs(devs []session.DeviceSnapshot) []string {
	out := make([]string, len(devs))
	for i, d := range devs {
		out[i] = d.Device
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// recreate: per device delete → create with the snapshot's writable fields and no password →
// re-link the phone line → verify; progress recorded per device so a resumed run continues.
func (r *runner) recreate() (stepResult, error) {
	oldPW := map[string]netsapiens.Secret{}
	if r.inc.DevicesAt.IsZero() {
		if err := r.snapshotDevices(oldPW); err != nil {
			return stepResult{}, err
		}
	} else if err := r.lease.Replicated(r.ctx); err != nil {
		// A retry after a refused wait: the snapshot is stored, but maybe on the primary only.
		return stepResult{}, fmt.Errorf("device snapshot: %w", err)
	}
	var res stepResult
	fresh := map[string]bool{} // devices whose new password this runner holds (or sent to provisioning)
	var failures []string
	for i, snap := range r.inc.Devices {
		if r.stopAsked() && Progress(r.prog(devKey(snap.Device))) == "" {
			// A recorded boundary: nothing of this device has changed yet.
			return res, r.stopBefore(res, i)
		}
		secret, err := r.recreateDevice(snap)
		if err != nil {
			if isStop(err) || errors.Is(err, session.ErrConflict) || netsapiens.KindOf(err) == netsapiens.KindTransient {
				return res, err
			}
			failures = append(failures, fmt.Sprintf("%s (%s)", snap.Device, UserMessage(err)))
			continue
		}
		if secret != nil {
			fresh[snap.Device] = true
			res.secrets = append(res.secrets, *secret)
		}
	}
	subs, verifyFails, warn, err := r.verifyDevices(oldPW, fresh)
	if err != nil {
		return res, err
	}
	failures = append(failures, verifyFails...)
	if len(failures) > 0 {
		return res, errorf(ErrNotRestored, "could not restore: %s; the snapshot is kept and Retry continues from here",
			joinComma(failures))
	}
	res.subs = subs
	res.status = session.StatusDone
	if warn {
		res.status = session.StatusWarnings
	}
	mac := 0
	for _, s := range r.inc.Devices {
		if s.MACProvisioned {
			mac++
		}
	}
	switch n := len(r.inc.Devices); {
	case n == 0:
		res.summary = "verified · the user has no devices"
	default:
		res.summary = fmt.Sprintf("verified · %d device(s) re-created with new passwords", n)
		if mac > 0 {
			res.summary += fmt.Sprintf(" · %d desk phone(s) pick theirs up at the next provisioning check", mac)
		}
	}
	res.before = fmt.Sprintf("%d device(s)", len(r.inc.Devices))
	res.after = "re-created"
	return res, nil
}

// stopBefore ends a recreate whose caller's context ended (the job's deadline, a shutdown)
// before device i, which is untouched: the new passwords made so far go back to the caller,
// each recorded as handed out, and the step stays running for Reconcile to continue from i.
func (r *runner) stopBefore(res stepResult, i int) error {
	for _, s := range res.secrets {
		if err := r.progress(handedPrefix+s.Device, "yes"); err != nil {
			return err
		}
	}
	n := len(r.inc.Devices)
	msg := fmt.Sprintf("stopped before device %s (%d of %d handled) because the job ended; Reconcile continues from there",
		r.inc.Devices[i].Device, i, n)
	r.auditStep("paused", fmt.Sprintf("%d of %d", i, n), r.inc.Devices[i].Device, msg)
	return fmt.Errorf("%w: %s", errBoundary, msg)
}
