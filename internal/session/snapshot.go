package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// SaveOriginal records, fenced by the deny step's lease and before the deny policy is written, the
// user's dial policy as read (o.Policy, o.Known = true). It is write-once per incident: a second
// call (a retried deny) changes nothing and returns the incident with the first record.
//
// The deny policy is never recorded as an original: when o is unknown or equals denyPolicy (the
// user is already denied), the incident takes the user's last known original, if there is one
// (from an earlier, aborted incident), else an Original with Known = false ("original unknown").
// A known original also becomes the user's last known original (overwriting an older one: it is
// the newer truth), atomically with the incident, and outlives it until a restore closes it.
// lines (may be nil) are the record's audit lines, made from the incident as recorded: the
// record, the deny policy joining the user's set of them, the user's original and the lines are
// one script, one fsync. It returns once the replicas hold the record (see Replicated).
// Errors: ErrFenced, ErrNotFound, ErrConflict, *ReplicationError (ErrNotReplicated, with the
// stored incident).
func (r *Run) SaveOriginal(ctx context.Context, o Original, denyPolicy string, lines Lines) (Incident, error) {
	s, l := r.s, r.Lease()
	sent := s.nowUTC() // the lease is valid at least from here to the write (CheckFence)
	id, user, domain, cached, err := s.locateCached(ctx, l.IncidentID)
	if err != nil {
		return Incident{}, err
	}
	// One round trip, with no write, for what the record is decided from: the incident, the
	// user's last known original and every deny policy the bot set for the user. The one about to
	// be PUT joins them in the record's script, before the PUT, so a policy the bot set is never
	// taken for an original later, even after NS_DENY_POLICY names another policy.
	pipe := s.rdb.Pipeline()
	rawCmd := s.readRec(ctx, pipe, user, domain, id)
	origCmd := pipe.Get(ctx, s.k.original(user, domain))
	setCmd := pipe.SMembers(ctx, s.k.denied(user, domain))
	_, _ = pipe.Exec(ctx) // each command's error is read below
	raw, err := recOf(rawCmd)
	if errors.Is(err, redis.Nil) {
		if cached {
			s.locs.forget(id) // gone meanwhile (or never where remembered): ask the index
			return r.SaveOriginal(ctx, o, denyPolicy, lines)
		}
		return Incident{}, fmt.Errorf("incident %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Incident{}, fmt.Errorf("read incident %s: %w", id, err)
	}
	prev, havePrev, err := decodeOriginal(origCmd, user, domain)
	if err != nil {
		return Incident{}, err
	}
	set, err := setCmd.Result()
	if err != nil {
		return Incident{}, fmt.Errorf("read deny policies of %s@%s: %w", user, domain, err)
	}
	// The user's original cannot change under us: only the holder of a lease of the user's single
	// open incident writes it, and the compare-and-set below fences that.
	inc, err := s.mutateFrom(ctx, l.IncidentID, &raw, func(inc *Incident, m *mutation) error {
		if err := s.leaseValid(inc, l); err != nil {
			return err
		}
		if inc.Original != nil {
			return errNoChange
		}
		if denyPolicy != "" {
			inc.DenyPolicy = denyPolicy
		}
		m.deniedAdd = inc.DenyPolicy
		rec, fresh := PickOriginal(o, prev, havePrev, append(set, inc.DenyPolicy), inc.ID, s.nowUTC())
		if fresh {
			data, err := json.Marshal(rec)
			if err != nil {
				return fmt.Errorf("encode original: %w", err)
			}
			m.origOp, m.origJSON = "set", string(data)
		}
		inc.Original = &rec
		if lines != nil {
			m.lines = lines(inc)
		}
		return nil
	})
	if err == nil {
		r.confirm(sent)
	}
	return r.writeAhead(ctx, inc, err)
}

// writeAhead ends SaveOriginal and SaveDevices: once the record is stored (or was already), the
// replicas must acknowledge it before the PBX write it protects. On a *ReplicationError the
// stored incident is returned with it.
func (r *Run) writeAhead(ctx context.Context, inc Incident, err error) (Incident, error) {
	if err != nil {
		return inc, err
	}
	return inc, r.s.waitReplicas(ctx, r.s.k.inc(inc.User, inc.Domain, inc.ID))
}

// PickOriginal is SaveOriginal's rule, for the store and for the engine's dry run: the dial
// policy read (o) when it is known and none of the deny policies (fresh: it also becomes the
// user's last known original), else the user's last known original (prev) when it is known and
// none of them, else "original unknown". denied lists every policy the bot set as the deny
// policy for this user (DenyPolicies) and the current one: a policy the bot set is never an
// original, whatever NS_DENY_POLICY says today.
func PickOriginal(o, prev Original, havePrev bool, denied []string, incidentID string, now time.Time) (rec Original, fresh bool) {
	isDeny := func(p string) bool {
		return slices.ContainsFunc(denied, func(d string) bool {
			return strings.EqualFold(strings.TrimSpace(d), strings.TrimSpace(p))
		})
	}
	switch {
	case o.Known && o.Policy != "" && !isDeny(o.Policy):
		return Original{Policy: o.Policy, Known: true, RecordedAt: now, Source: incidentID}, true
	case havePrev && prev.Known && prev.Policy != "" && !isDeny(prev.Policy):
		return prev, false
	}
	return Original{Known: false, RecordedAt: now, Source: incidentID}, false
}

// DenyPolicies returns every dial policy the bot set as the deny policy for user@domain, in
// any incident (kept per user, like the original). Errors: ErrInvalid, Redis errors.
func (s *Store) DenyPolicies(ctx context.Context, user, domain string) ([]string, error) {
	user, domain, err := canon(user, domain)
	if err != nil {
		return nil, err
	}
	out, err := s.rdb.SMembers(ctx, s.k.denied(user, domain)).Result()
	if err != nil {
		return nil, fmt.Errorf("read deny policies of %s@%s: %w", user, domain, err)
	}
	slices.Sort(out)
	return out, nil
}

// UserOriginal returns the last known original dial policy of user@domain (ok = false if none).
// Errors: ErrInvalid, Redis errors.
func (s *Store) UserOriginal(ctx context.Context, user, domain string) (Original, bool, error) {
	user, domain, err := canon(user, domain)
	if err != nil {
		return Original{}, false, err
	}
	return decodeOriginal(s.rdb.Get(ctx, s.k.original(user, domain)), user, domain)
}

// decodeOriginal decodes the answer of a GET of a user's last known original.
func decodeOriginal(cmd *redis.StringCmd, user, domain string) (Original, bool, error) {
	data, err := cmd.Result()
	if errors.Is(err, redis.Nil) {
		return Original{}, false, nil
	}
	if err != nil {
		return Original{}, false, fmt.Errorf("read original of %s@%s: %w", user, domain, err)
	}
	var o Original
	if err := json.Unmarshal([]byte(data), &o); err != nil {
		return Original{}, false, fmt.Errorf("decode original of %s@%s: %w", user, domain, err)
	}
	return o, true, nil
}

// ClearUserOriginal forgets the user's last known original. Close(restored) already does this
// atomically; this is for an operator who restored by hand. Errors: ErrInvalid, Redis errors.
func (s *Store) ClearUserOriginal(ctx context.Context, user, domain string) error {
	user, domain, err := canon(user, domain)
	if err != nil {
		return err
	}
	if err := s.rdb.Del(ctx, s.k.original(user, domain)).Err(); err != nil {
		return fmt.Errorf("clear original of %s@%s: %w", user, domain, err)
	}
	return nil
}

// secretish are substrings of field names that hold credentials (device-sip-registration-password,
// device-provisioning-username/-password, global-one-time-pass, legacy auth_user/auth_pass/
// authentication_key, voicemail-login-pin, and device-provisioning-overrides, a free-form
// provisioning blob that often carries passwords). They never go into DeviceSnapshot.Fields in clear.
var secretish = []string{"password", "pass", "secret", "token", "authentication", "auth_user",
	"provisioning-username", "overrides", "-pin", "_pin", "pin-", "pin_"}

func secretField(name string) bool {
	n := strings.ToLower(name)
	if n == "pin" {
		return true
	}
	for _, s := range secretish {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// SaveDevices records, fenced by the recreate step's lease and before the first device is deleted,
// every device's whitelisted writable fields and phone links. It is write-once per incident (a
// second call changes nothing; a user with no devices records an empty list with DevicesAt set).
// Errors: ErrInvalid (a device without a name, a credential-looking field in Fields, a Sealed value
// not produced by Seal, a PasswordHMAC not produced by SecretHMAC), ErrFenced, ErrNotFound, ErrConflict,
// *ReplicationError (ErrNotReplicated, with the stored incident): it returns once the replicas hold it.
func (r *Run) SaveDevices(ctx context.Context, devs []DeviceSnapshot) (Incident, error) {
	if err := checkSnapshots(devs); err != nil {
		return Incident{}, err
	}
	inc, err := r.with(ctx, func(inc *Incident, _ Lease, _ *mutation) error {
		if !inc.DevicesAt.IsZero() {
			return errNoChange
		}
		inc.Devices = append([]DeviceSnapshot(nil), devs...)
		inc.DevicesAt = r.s.nowUTC()
		return nil
	})
	return r.writeAhead(ctx, inc, err)
}

// UserDevices returns the devices of user@domain that an earlier incident deleted and never
// re-created (kept by CloseKeeping until a later incident's close finds them back), each with
// From naming the incident its snapshot belongs to. Errors: ErrInvalid, Redis errors.
func (s *Store) UserDevices(ctx context.Context, user, domain string) ([]DeviceSnapshot, error) {
	user, domain, err := canon(user, domain)
	if err != nil {
		return nil, err
	}
	data, err := s.rdb.Get(ctx, s.k.keptDevices(user, domain)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read kept devices of %s@%s: %w", user, domain, err)
	}
	var devs []DeviceSnapshot
	if err := json.Unmarshal([]byte(data), &devs); err != nil {
		return nil, fmt.Errorf("decode kept devices of %s@%s: %w", user, domain, err)
	}
	return devs, nil
}

// keep sets the mutation's write of the user's kept devices: each must name the incident its
// snapshot belongs to (From) and pass SaveDevices' checks; none left deletes the key.
func (m *mutation) keep(devs []DeviceSnapshot, ok bool) error {
	if !ok {
		return nil
	}
	if len(devs) == 0 {
		m.keptOp, m.keptJSON = "del", ""
		return nil
	}
	for _, d := range devs {
		if d.From == "" {
			return fmt.Errorf("kept device %s names no incident: %w", d.Device, ErrInvalid)
		}
	}
	if err := checkSnapshots(devs); err != nil {
		return err
	}
	data, err := json.Marshal(devs)
	if err != nil {
		return fmt.Errorf("encode kept devices: %w", err)
	}
	m.keptOp, m.keptJSON = "set", string(data)
	return nil
}

// checkSnapshots refuses device snapshots that could hold a credential in clear.
func checkSnapshots(devs []DeviceSnapshot) error {
	for _, d := range devs {
		if d.Device == "" {
			return fmt.Errorf("device snapshot without a device: %w", ErrInvalid)
		}
		for f := range d.Fields {
			if secretField(f) {
				return fmt.Errorf("device %s: field %q looks like a credential; seal it: %w", d.Device, f, ErrInvalid)
			}
		}
		for f, v := range d.Sealed {
			if !strings.HasPrefix(v, sealVersion+":") {
				return fmt.Errorf("device %s: %s is not sealed: %w", d.Device, f, ErrInvalid)
			}
		}
		if d.PasswordHMAC != "" && !strings.HasPrefix(d.PasswordHMAC, "h1:") {
			return fmt.Errorf("device %s: password hmac is not an hmac: %w", d.Device, ErrInvalid)
		}
	}
	return nil
}
