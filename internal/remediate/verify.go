package remediate

import (
	"errors"
	"fmt"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// verifyDevices reads devices and phones back and checks every snapshot device: present with
// the same id, the snapshot's settings, its line link back, and a password that differs from
// the old one. failures lists devices that are missing or kept their old password (the step
// must not be done); warn is set when some settings differ or could not be compared.
func (r *runner) verifyDevices(oldPW map[string]netsapiens.Secret, fresh map[string]bool) (subs []session.SubResult, failures []string, warn bool, err error) {
	e := r.e
	if len(r.inc.Devices) == 0 {
		return nil, nil, false, nil
	}
	devs, err := e.pbx.ListDevices(r.pctx, r.domain(), r.user())
	if err != nil {
		return nil, nil, false, fmt.Errorf("verify devices: %w", err)
	}
	phones, err := e.pbx.ListPhones(r.pctx, r.domain())
	if err != nil {
		return nil, nil, false, fmt.Errorf("verify phones: %w", err)
	}
	live := map[string]netsapiens.Device{}
	for _, d := range devs {
		live[d.ID()] = d
	}
	for _, snap := range r.inc.Devices {
		id := snap.Device
		d, ok := live[id]
		if !ok {
			failures = append(failures, id+" (missing on the PBX)")
			continue
		}
		var notes []string
		outcome := session.OutcomeVerified
		fields, err := writableFields(d)
		if err != nil {
			return nil, nil, false, err
		}
		var differ []string
		for _, k := range sortedKeys(snap.Fields) {
			if !sameJSON(snap.Fields[k], fields[k]) {
				differ = append(differ, k)
			}
		}
		if len(differ) > 0 {
			outcome, warn = session.OutcomeFailed, true
			notes = append(notes, "settings differ from the snapshot: "+joinComma(differ))
		} else {
			notes = append(notes, "same settings")
		}
		if snap.PhoneMAC != "" {
			mac, line := phoneLink(phones, id, r.domain())
			if mac != snap.PhoneMAC || line != snap.PhoneLine {
				outcome, warn = session.OutcomeFailed, true
				notes = append(notes, fmt.Sprintf("not on line %d of phone %s", snap.PhoneLine, snap.PhoneMAC))
			} else {
				notes = append(notes, fmt.Sprintf("line %d of phone %s linked", snap.PhoneLine, snap.PhoneMAC))
			}
		}
		changed, known, err := r.passwordChanged(snap, d, oldPW[id])
		if err != nil {
			return nil, nil, false, err
		}
		switch {
		case known && !changed:
			failures = append(failures, id+" (the PBX still has the old SIP password)")
			continue
		case known:
			notes = append(notes, "new SIP password")
		default:
			warn = true
			notes = append(notes, "new SIP password not compared with the old one (no SNAPSHOT_KEY or AUDIT_KEY to keep its HMAC)")
		}
		switch {
		case snap.MACProvisioned:
			notes = append(notes, "not delivered: the phone picks its new credentials up at its next provisioning check or reboot")
		case !fresh[id] && r.prog(handedPrefix+id) == "":
			warn = true
			notes = append(notes, "its new password was lost with an interrupted run: use Credentials to set and deliver a new one")
		}
		if v := r.prog(credsPrefix + id); v != "" {
			warn = true
			notes = append(notes, "re-created without its provisioning credentials ("+v+"): enter them on the phone again")
		}
		if len(snap.Unsealable) > 0 {
			warn = true
			notes = append(notes, "provisioning "+joinComma(snap.Unsealable)+" could not be kept (no SNAPSHOT_KEY): enter it on the phone again")
		}
		name := "softphone " + id
		if snap.MACProvisioned {
			name = "desk phone " + id
		}
		subs = append(subs, session.SubResult{Name: name, Outcome: outcome, Detail: joinSemi(notes)})
		if outcome == session.OutcomeVerified && Progress(r.prog(devKey(id))) != DeviceVerified {
			if err := r.progress(devKey(id), string(DeviceVerified)); err != nil {
				return nil, nil, false, err
			}
		}
	}
	return subs, failures, warn, nil
}

// passwordChanged compares the device's live SIP password with the old one: by the HMAC in
// the snapshot, else with the old value this runner still holds in memory. known is false when
// neither is available.
func (r *runner) passwordChanged(snap session.DeviceSnapshot, d netsapiens.Device, old netsapiens.Secret) (changed, known bool, err error) {
	if d.SIPPassword == nil || *d.SIPPassword == "" {
		// The PBX does not show passwords: a create without one made it generate a new one.
		return true, false, nil
	}
	if snap.PasswordHMAC != "" {
		same, err := r.e.cfg.Keys.SecretMatches(snap.BoundTo(r.inc.ID), pwField(snap.Device), d.SIPPassword.Reveal(), snap.PasswordHMAC)
		switch {
		case err == nil:
			return !same, true, nil
		case errors.Is(err, session.ErrNoKey), errors.Is(err, session.ErrKeyMismatch):
			// fall through to the in-memory comparison
		default:
			return false, false, fmt.Errorf("compare password of device %s: %w", snap.Device, err)
		}
	}
	if old != "" {
		return old.Reveal() != d.SIPPassword.Reveal(), true, nil
	}
	return true, false, nil
}

func joinSemi(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += "; "
		}
		out += v
	}
	return out
}
