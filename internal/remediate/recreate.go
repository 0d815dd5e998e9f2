package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// devPrefix starts recreate's per-device progress keys: "device/<id>" → a Device* Progress.
const devPrefix = "device/"

// Credential fields that a snapshot keeps only sealed, and the SIP password only as an HMAC.
const (
	fieldSIPPassword  = "device-sip-registration-password"
	fieldProvUser     = "device-provisioning-username"
	fieldProvPassword = "device-provisioning-password"
)

func devKey(id string) string       { return devPrefix + id }
func pwField(id string) string      { return "device/" + id + "/sip-password" }
func sealField(id, f string) string { return "device/" + id + "/" + f }

// writableFields returns d's writable fields without any credential, as JSON values: what a
// snapshot keeps and what verify compares.
func writableFields(d netsapiens.Device) (map[string]any, error) {
	w := d.Writable()
	w.SIPPassword, w.ProvisioningUsername, w.ProvisioningPassword = nil, nil, nil
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

// phoneLink finds the phone line holding the device's AOR.
func phoneLink(phones []netsapiens.Phone, device, domain string) (mac string, line int) {
	aor := netsapiens.AOR(device, domain)
	for _, p := range phones {
		if l, ok := p.HasAOR(aor); ok && p.MAC != nil {
			m, err := netsapiens.NormalizeMAC(*p.MAC)
			if err != nil {
				m = *p.MAC
			}
			return m, l
		}
	}
	return "", 0
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
		s.PhoneMAC, s.PhoneLine = phoneLink(phones, id, r.domain())
		if s.PhoneMAC == "" && d.MAC != nil && *d.MAC != "" {
			// The device names a MAC but no phone line carries it: keep what the device says.
			s.PhoneMAC = *d.MAC
			if d.Line != nil {
				s.PhoneLine = *d.Line
			}
		}
		s.MACProvisioned = s.PhoneMAC != ""
		snaps = append(snaps, s)
	}
	inc, err := r.lease.SaveDevices(r.ctx, snaps)
	if err != nil {
		return fmt.Errorf("record device snapshot: %w", err)
	}
	r.inc = inc
	r.auditStep("snapshot", "", fmt.Sprintf("%d device(s)", len(inc.Devices)),
		"device settings and phone links recorded before any change")
	e.notify(r.ctx, inc.ID)
	return nil
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
	for _, snap := range r.inc.Devices {
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

// recreateDevice moves one device through delete → create → link, from its recorded progress.
// It returns the new SIP password when this runner learnt it and the device is not
// MAC-provisioned (a desk phone fetches its own from the provisioning server).
func (r *runner) recreateDevice(snap session.DeviceSnapshot) (*Secret, error) {
	e := r.e
	id := snap.Device
	state := Progress(r.prog(devKey(id)))
	if state == "" {
		err := r.write("delete device "+id, func(ctx context.Context) error {
			return e.pbx.DeleteDevice(ctx, r.domain(), r.user(), id)
		})
		if err != nil && !errors.Is(err, netsapiens.ErrNotFound) {
			return nil, fmt.Errorf("delete device %s: %w", id, err)
		}
		if err := r.progress(devKey(id), string(DeviceDeleted)); err != nil {
			return nil, err
		}
		r.auditStep("device", id, "deleted", "")
		state = DeviceDeleted
	}
	var pw *netsapiens.Secret
	if state == DeviceDeleted {
		p, note, err := r.createDevice(snap)
		if err != nil {
			return nil, err
		}
		pw = p
		if err := r.progress(devKey(id), string(DeviceCreated)); err != nil {
			return nil, err
		}
		r.auditStep("device", "deleted", id+" created", note)
		state = DeviceCreated
	}
	if state == DeviceCreated {
		if err := r.relink(snap); err != nil {
			return nil, err
		}
		if err := r.progress(devKey(id), string(DeviceLinked)); err != nil {
			return nil, err
		}
	}
	if pw == nil || snap.MACProvisioned {
		return nil, nil
	}
	return &Secret{
		Label:        "softphone " + id + ": SIP password",
		Instructions: "enter this SIP password in the softphone or app registered as " + id + "@" + r.domain() + "; the old one no longer works",
		Value:        *pw, Device: id,
	}, nil
}

// createDevice creates the device from the snapshot without a password, so the PBX generates a
// new one. A device already present means an earlier create whose reply was lost: its
// password is unknown, so it is rotated. A refused create is retried with the minimal body.
func (r *runner) createDevice(snap session.DeviceSnapshot) (*netsapiens.Secret, string, error) {
	e := r.e
	id := snap.Device
	body, err := deviceFromFields(snap.Fields)
	if err != nil {
		return nil, "", err
	}
	body.Device = &id
	for f, sealed := range snap.Sealed {
		v, err := e.cfg.Keys.Unseal(r.inc.ID, sealField(id, f), sealed)
		if err != nil {
			return nil, "", fmt.Errorf("open sealed %s of device %s: %w", f, id, err)
		}
		switch f {
		case fieldProvUser:
			body.ProvisioningUsername = &v
		case fieldProvPassword:
			body.ProvisioningPassword = netsapiens.SecretPtr(v)
		}
	}
	var got netsapiens.Device
	create := func(b netsapiens.Device) error {
		return r.write("create device "+id, func(ctx context.Context) error {
			var err error
			got, err = e.pbx.CreateDevice(ctx, r.domain(), r.user(), b)
			return err
		})
	}
	note := ""
	err = create(body)
	if errors.Is(err, netsapiens.ErrConflict) {
		if _, gerr := e.pbx.GetDevice(r.pctx, r.domain(), r.user(), id); gerr == nil {
			pw, rerr := r.rotate(id)
			return pw, "present after a lost create reply: password rotated", rerr
		}
	}
	if errors.Is(err, netsapiens.ErrInvalid) || errors.Is(err, netsapiens.ErrConflict) {
		minimal := netsapiens.Device{Device: &id, Model: body.Model, MAC: body.MAC, Line: body.Line}
		if body.MAC == nil {
			minimal.Model, minimal.Line = nil, nil
		}
		r.auditStep("device", id, "create refused", UserMessage(err)+"; retrying with the minimal body")
		if err = create(minimal); err == nil {
			note = "created with the minimal body"
			rest := body
			rest.Device, rest.MAC, rest.Line, rest.Model = nil, nil, nil, nil
			if rest != (netsapiens.Device{}) {
				uerr := r.write("update device "+id, func(ctx context.Context) error {
					return e.pbx.UpdateDevice(ctx, r.domain(), r.user(), id, rest)
				})
				if uerr != nil && !errors.Is(uerr, netsapiens.ErrInvalid) {
					return nil, "", fmt.Errorf("restore settings of device %s: %w", id, uerr)
				}
				if uerr != nil {
					note += "; the PBX refused the other settings (verify lists them)"
				}
			}
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("create device %s: %w", id, err)
	}
	if got.PasswordUnknown || got.SIPPassword == nil || *got.SIPPassword == "" {
		pw, err := r.rotate(id)
		return pw, note, err
	}
	return got.SIPPassword, note, nil
}

// rotate sets a new random SIP password on a device (PUT) and returns it.
func (r *runner) rotate(id string) (*netsapiens.Secret, error) {
	pw, err := newSIPPassword()
	if err != nil {
		return nil, err
	}
	err = r.write("rotate password of device "+id, func(ctx context.Context) error {
		return r.e.pbx.UpdateDevice(ctx, r.domain(), r.user(), id, netsapiens.Device{SIPPassword: &pw})
	})
	if err != nil {
		return nil, fmt.Errorf("rotate password of device %s: %w", id, err)
	}
	return &pw, nil
}

// relink puts the device's AOR back on its phone line if the PBX dropped it.
func (r *runner) relink(snap session.DeviceSnapshot) error {
	if snap.PhoneMAC == "" || snap.PhoneLine < 1 || snap.PhoneLine > netsapiens.PhoneLines {
		return nil
	}
	e := r.e
	phones, err := e.pbx.ListPhones(r.pctx, r.domain())
	if err != nil {
		return fmt.Errorf("read phones: %w", err)
	}
	aor := netsapiens.AOR(snap.Device, r.domain())
	for _, p := range phones {
		if p.MAC == nil {
			continue
		}
		if m, err := netsapiens.NormalizeMAC(*p.MAC); err != nil || m != snap.PhoneMAC {
			continue
		}
		if l, ok := p.HasAOR(aor); ok && l == snap.PhoneLine {
			return nil
		}
		if cur := p.LineURI[snap.PhoneLine-1]; cur != nil && *cur != "" {
			return errorf(ErrNotRestored, "line %d of phone %s now holds %s; not overwritten", snap.PhoneLine, snap.PhoneMAC, *cur)
		}
		upd := netsapiens.Phone{MAC: &snap.PhoneMAC}
		upd.LineURI[snap.PhoneLine-1] = &aor
		err := r.write("re-link phone line", func(ctx context.Context) error {
			return e.pbx.UpdatePhone(ctx, r.domain(), upd)
		})
		if err != nil {
			return fmt.Errorf("re-link %s to line %d of phone %s: %w", snap.Device, snap.PhoneLine, snap.PhoneMAC, err)
		}
		r.auditStep("phone", "line "+fmt.Sprint(snap.PhoneLine)+" empty", aor, "phone "+snap.PhoneMAC+" re-linked")
		return nil
	}
	return errorf(ErrNotRestored, "phone %s is gone from the PBX; device %s is not linked", snap.PhoneMAC, snap.Device)
}
