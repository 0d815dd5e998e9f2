package session_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

func TestUserOriginal(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxT(t)
	ignoreTime := cmpopts.IgnoreFields(session.Original{}, "RecordedAt")

	// Incident 1 records the original, then is aborted after deny: the user stays denied.
	inc1 := open(t, s, "1001")
	l := begin(t, s, inc1.ID, session.StepDeny)
	got, err := l.SaveOriginal(ctx, session.Original{Policy: "US and Canada", Known: true}, "Deny All", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := session.Original{Policy: "US and Canada", Known: true, Source: inc1.ID}
	if diff := cmp.Diff(*got.Original, want, ignoreTime); diff != "" {
		t.Errorf("incident original (-got +want):\n%s", diff)
	}
	// A retried deny reads the deny policy now: the first record stays.
	got, err = l.SaveOriginal(ctx, session.Original{Policy: "Deny All", Known: true}, "Deny All", nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*got.Original, want, ignoreTime); diff != "" {
		t.Errorf("original after a second deny (-got +want):\n%s", diff)
	}
	if _, err := l.Finish(ctx, session.StatusDone, "", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Close(ctx, inc1.ID, session.StateAborted, "U1", "left in deny"); err != nil {
		t.Fatal(err)
	}
	uo, ok, err := s.UserOriginal(ctx, "1001", "ACME.example")
	if err != nil || !ok {
		t.Fatalf("UserOriginal after abort = %v, %v", ok, err)
	}
	if diff := cmp.Diff(uo, want, ignoreTime); diff != "" {
		t.Errorf("user original after abort (-got +want):\n%s", diff)
	}

	// Incident 2 finds the user in the deny policy: the deny policy is not recorded; the earlier
	// original carries over.
	inc2 := open(t, s, "1001")
	l2 := begin(t, s, inc2.ID, session.StepDeny)
	got, err = l2.SaveOriginal(ctx, session.Original{Policy: "deny all", Known: true}, "Deny All", nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*got.Original, want, ignoreTime); diff != "" {
		t.Errorf("second incident's original (-got +want):\n%s", diff)
	}
	uo, _, _ = s.UserOriginal(ctx, "1001", "acme.example")
	if diff := cmp.Diff(uo, want, ignoreTime); diff != "" {
		t.Errorf("user original after the second deny (-got +want):\n%s", diff)
	}
	if _, err := l2.Finish(ctx, session.StatusDone, "", nil, nil); err != nil {
		t.Fatal(err)
	}
	// A verified restore closes it and forgets the original.
	if _, err := s.Close(ctx, inc2.ID, session.StateRestored, "U1", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.UserOriginal(ctx, "1001", "acme.example"); ok {
		t.Error("user original kept after a restore")
	}

	// A user already denied with nothing on record: "original unknown".
	inc3 := open(t, s, "1002")
	l3 := begin(t, s, inc3.ID, session.StepDeny)
	got, err = l3.SaveOriginal(ctx, session.Original{Policy: "Deny All", Known: true}, "Deny All", nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*got.Original, session.Original{Known: false, Source: inc3.ID}, ignoreTime); diff != "" {
		t.Errorf("unknown original (-got +want):\n%s", diff)
	}
	if _, ok, _ := s.UserOriginal(ctx, "1002", "acme.example"); ok {
		t.Error("the deny policy became a user original")
	}
}

func TestSaveDevicesRefusesSecrets(t *testing.T) {
	s, _, _ := newStore(t)
	inc := open(t, s, "1001")
	l := begin(t, s, inc.ID, session.StepRecreate)
	for _, field := range []string{"device-sip-registration-password", "device-provisioning-password",
		"device-provisioning-username", "auth_pass", "authentication_key", "global-one-time-pass", "voicemail-login-pin"} {
		t.Run(field, func(t *testing.T) {
			_, err := l.SaveDevices(ctxT(t), []session.DeviceSnapshot{{Device: "1001a", Fields: map[string]any{field: "x"}}})
			if !errors.Is(err, session.ErrInvalid) {
				t.Errorf("SaveDevices with %s = %v, want ErrInvalid", field, err)
			}
		})
	}
	t.Run("unsealed credential", func(t *testing.T) {
		_, err := l.SaveDevices(ctxT(t), []session.DeviceSnapshot{{Device: "1001a", Sealed: map[string]string{"device-provisioning-password": "clear"}}})
		if !errors.Is(err, session.ErrInvalid) {
			t.Errorf("SaveDevices with a clear 'sealed' value = %v, want ErrInvalid", err)
		}
	})
}

// TestNoSecretInRedis runs a full snapshot with sealing and scans every value of every key for the
// secrets in clear.
func TestNoSecretInRedis(t *testing.T) {
	const (
		sipPassword  = "SEKRET1234567890"
		provUser     = "provuser-7731"
		provPassword = "pr0v-Pa55-9912"
		oldPIN       = "482913"
	)
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	inc := open(t, s, "1001")
	l := begin(t, s, inc.ID, session.StepRecreate)
	k := keyring(t)
	su, err := k.Seal(inc.ID, "device-provisioning-username", provUser)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := k.Seal(inc.ID, "device-provisioning-password", provPassword)
	if err != nil {
		t.Fatal(err)
	}
	dev := session.DeviceSnapshot{
		Device:       "1001a",
		Fields:       map[string]any{"device-models-model": "yealink-t54w", "device-provisioning-mac-address": "000011223344", "device-provisioning-line": 1},
		PasswordHMAC: k.SecretHMAC(inc.ID, "device/1001a", sipPassword),
		Sealed:       map[string]string{"device-provisioning-username": su, "device-provisioning-password": sp},
		PhoneMAC:     "000011223344",
		PhoneLine:    1,
	}
	if _, err := l.SaveDevices(ctx, []session.DeviceSnapshot{dev}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(ctx, session.StatusDone, "re-created", nil, nil); err != nil {
		t.Fatal(err)
	}
	lr := begin(t, s, inc.ID, session.StepReset)
	if _, err := lr.Progress(ctx, "pin.old_hmac", k.SecretHMAC(inc.ID, "pin", oldPIN)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: "U1", Action: "step.recreate.done", Detail: "1 device re-created"}); err != nil {
		t.Fatal(err)
	}

	// What was stored still works for the engine.
	got, err := s.Get(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored := got.Devices[0]
	if pw, err := k.Unseal(inc.ID, "device-provisioning-password", stored.Sealed["device-provisioning-password"]); err != nil || pw != provPassword {
		t.Errorf("Unseal = %v", err)
	}
	if same, err := k.SecretMatches(inc.ID, "device/1001a", sipPassword, stored.PasswordHMAC); err != nil || !same {
		t.Errorf("SecretMatches(old password) = %v, %v", same, err)
	}
	if same, err := k.SecretMatches(inc.ID, "device/1001a", "NEWPASSWORD00000", stored.PasswordHMAC); err != nil || same {
		t.Errorf("SecretMatches(new password) = %v, %v", same, err)
	}

	for _, secret := range []string{sipPassword, provUser, provPassword, oldPIN} {
		if where := scanFor(ctx, t, rdb, secret); where != "" {
			t.Errorf("secret %q found in clear in %s", secret[:3]+"…", where)
		}
	}
}

// scanFor returns the first of the test's keys whose name or value contains needle, or "".
func scanFor(ctx context.Context, t *testing.T, rdb *testenv.Redis, needle string) string {
	t.Helper()
	dump, err := rdb.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dump) < 5 {
		t.Fatalf("only %d keys to scan: %v", len(dump), dump)
	}
	for k, v := range dump {
		if strings.Contains(k, needle) || strings.Contains(v, needle) {
			return k
		}
	}
	return ""
}

func TestSealer(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	other := []byte("fedcba9876543210fedcba9876543210")
	a, err := session.NewSealer(key, "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := session.NewSealer(other, "")
	sealed, err := a.Seal("INC-7K2QXM", "device-provisioning-password", "hunter22")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := a.Seal("INC-7K2QXM", "device-provisioning-password", "hunter22")
	if sealed == again {
		t.Error("two seals of the same value are equal: nonce reused")
	}
	if !strings.HasPrefix(sealed, "v1:"+a.KeyID()+":") || strings.Contains(sealed, "hunter22") {
		t.Errorf("sealed = %q", sealed)
	}
	tampered := sealed[:len(sealed)-2] + "AA"
	if tampered == sealed {
		tampered = sealed[:len(sealed)-2] + "BB"
	}
	tests := []struct {
		name            string
		s               *session.Sealer
		incident, field string
		in              string
		want            error
	}{
		{"round trip", a, "INC-7K2QXM", "device-provisioning-password", sealed, nil},
		{"rotated key", b, "INC-7K2QXM", "device-provisioning-password", sealed, session.ErrKeyMismatch},
		{"other incident", a, "INC-000000", "device-provisioning-password", sealed, session.ErrBadSeal},
		{"other field", a, "INC-7K2QXM", "device-provisioning-username", sealed, session.ErrBadSeal},
		{"tampered", a, "INC-7K2QXM", "device-provisioning-password", tampered, session.ErrBadSeal},
		{"not sealed", a, "INC-7K2QXM", "device-provisioning-password", "hunter22", session.ErrBadSeal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := tc.s.Open(tc.incident, tc.field, tc.in)
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("Open = %v, want %v", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter22") {
				t.Errorf("error shows the secret: %v", err)
			}
			if tc.want == session.ErrKeyMismatch && (!strings.Contains(err.Error(), a.KeyID()) || !strings.Contains(err.Error(), b.KeyID())) {
				t.Errorf("key mismatch error does not name both key ids: %v", err)
			}
			if tc.want == nil && pt != "hunter22" {
				t.Errorf("Open = %q", pt)
			}
		})
	}
}

func TestWithoutKeys(t *testing.T) {
	s, err := session.NewKeyring(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Seal("INC-7K2QXM", "f", "v"); !errors.Is(err, session.ErrNoKey) {
		t.Errorf("Seal without key = %v, want ErrNoKey", err)
	}
	if h := s.SecretHMAC("INC-7K2QXM", "pin", "1234"); h != "" {
		t.Errorf("SecretHMAC without key = %q, want \"\"", h)
	}
	if _, err := s.SecretMatches("INC-7K2QXM", "pin", "1234", "h1:x:y"); !errors.Is(err, session.ErrNoKey) {
		t.Errorf("SecretMatches without key = %v, want ErrNoKey", err)
	}
}

// FuzzUnseal: no sealed string panics Open, and nothing opens to anything but the sealed plaintext.
func FuzzUnseal(f *testing.F) {
	sl, err := session.NewSealer([]byte("0123456789abcdef0123456789abcdef"), "k1")
	if err != nil {
		f.Fatal(err)
	}
	good, _ := sl.Seal("INC-7K2QXM", "p", "secret")
	for _, s := range []string{good, "v1:k1:", "v1:k2:AAAA", "v2:k1:AAAA", "", "v1::", "v1:k1:" + strings.Repeat("A", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pt, err := sl.Open("INC-7K2QXM", "p", s)
		if err == nil && pt != "secret" {
			t.Fatalf("Open(%q) = %q without error", s, pt)
		}
	})
}
