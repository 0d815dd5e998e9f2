package remediate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// One device of recreate: delete → create → re-link, each recorded, from its recorded progress.

// recreateDevice moves one device through delete → create → link, from its recorded progress.
// Everything that can fail before the create (decoding the snapshot, opening its sealed
// credentials, the MAC the create will send) is done before the delete, so a device is never
// deleted that this runner could not create again. It returns the new SIP password when this
// runner learnt it and the device is not MAC-provisioned (a desk phone fetches its own from
// the provisioning server).
func (r *runner) recreateDevice(snap session.DeviceSnapshot) (*Secret, error) {
	e := r.e
	id := snap.Device
	state := Progress(r.prog(devKey(id)))
	var body netsapiens.Device
	if state == "" || state == DeviceDeleted {
		b, unopened, err := r.createBody(snap)
		if err != nil {
			return nil, err
		}
		if unopened != "" && r.prog(credsPrefix+id) != unopened {
			if err := r.record(credsPrefix+id, unopened,
				auditLine(r.stepLine("device", id, "re-created without its provisioning credentials", unopened))); err != nil {
				return nil, err
			}
		}
		body = b
	}
	if state == "" {
		err := r.write("delete device "+id, func(ctx context.Context) error {
			return e.pbx.DeleteDevice(ctx, r.domain(), r.user(), id)
		})
		if err != nil && !errors.Is(err, netsapiens.ErrNotFound) {
			return nil, fmt.Errorf("delete device %s: %w", id, err)
		}
		if err := r.record(devKey(id), string(DeviceDeleted), auditLine(r.stepLine("device", id, "deleted", ""))); err != nil {
			return nil, err
		}
		state = DeviceDeleted
	}
	var pw *netsapiens.Secret
	if state == DeviceDeleted {
		p, note, err := r.createDevice(id, body)
		if err != nil {
			return nil, err
		}
		pw = p
		if err := r.record(devKey(id), string(DeviceCreated), auditLine(r.stepLine("device", "deleted", id+" created", note))); err != nil {
			return nil, err
		}
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

// createBody builds the create body of a device from its snapshot, with its sealed
// credentials opened. A credential that cannot be opened (no SNAPSHOT_KEY, a rotated one, a
// damaged value) is left out: unopened says which and why (never a value), and the device is
// re-created without it rather than left deleted. Errors: a snapshot that does not decode, a
// MAC the PBX would refuse.
func (r *runner) createBody(snap session.DeviceSnapshot) (body netsapiens.Device, unopened string, err error) {
	id := snap.Device
	body, err = deviceFromFields(snap.Fields)
	if err != nil {
		return netsapiens.Device{}, "", fmt.Errorf("device %s: %w", id, err)
	}
	body.Device = &id
	if body.MAC != nil && *body.MAC != "" {
		m, err := netsapiens.NormalizeMAC(*body.MAC)
		if err != nil {
			return netsapiens.Device{}, "", errorf(ErrNotRestored, "device %s names a MAC address the PBX would refuse (%s); it was not deleted",
				id, UserMessage(err))
		}
		body.MAC = &m
	}
	var notOpened []string
	why := map[string]bool{}
	for _, f := range sortedKeys(snap.Sealed) {
		v, err := r.e.cfg.Keys.Unseal(snap.BoundTo(r.inc.ID), sealField(id, f), snap.Sealed[f])
		switch {
		case errors.Is(err, session.ErrNoKey):
			notOpened, why["no SNAPSHOT_KEY"] = append(notOpened, f), true
			continue
		case errors.Is(err, session.ErrKeyMismatch):
			notOpened, why["sealed under another SNAPSHOT_KEY"] = append(notOpened, f), true
			continue
		case errors.Is(err, session.ErrBadSeal):
			notOpened, why["the sealed value is damaged"] = append(notOpened, f), true
			continue
		case err != nil:
			return netsapiens.Device{}, "", fmt.Errorf("open sealed %s of device %s: %w", f, id, err)
		}
		switch f {
		case fieldProvUser:
			body.ProvisioningUsername = &v
		case fieldProvPassword:
			body.ProvisioningPassword = netsapiens.SecretPtr(v)
		case fieldOverrides:
			body.Overrides = &v
		}
	}
	if len(notOpened) > 0 {
		unopened = joinComma(notOpened) + " not opened (" + strings.Join(sortedKeys(why), "; ") + ")"
	}
	return body, unopened, nil
}

// createDevice creates the device from its body, with no SIP password, so the PBX generates a
// new one. A device already present means an earlier create whose reply was lost: its
// password is unknown, so it is rotated. A refused create is retried with the minimal body.
func (r *runner) createDevice(id string, body netsapiens.Device) (*netsapiens.Secret, string, error) {
	e := r.e
	var got netsapiens.Device
	create := func(b netsapiens.Device) error {
		return r.write("create device "+id, func(ctx context.Context) error {
			var err error
			got, err = e.pbx.CreateDevice(ctx, r.domain(), r.user(), b)
			return err
		})
	}
	note := ""
	err := create(body)
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
	want := normMAC(snap.PhoneMAC) // an older snapshot may hold the MAC as the device spelt it
	for _, p := range phones {
		if p.MAC == nil || normMAC(*p.MAC) != want {
			continue
		}
		if l, ok := p.HasAOR(aor); ok && l == snap.PhoneLine {
			return nil
		}
		if cur := p.LineURI[snap.PhoneLine-1]; cur != nil && *cur != "" {
			return errorf(ErrNotRestored, "line %d of phone %s now holds %s; not overwritten", snap.PhoneLine, snap.PhoneMAC, *cur)
		}
		upd := netsapiens.Phone{MAC: &want}
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
