package remediate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// dumpRedis returns every key and value the env's store wrote, as text.
func dumpRedis(t *testing.T, v *env) string {
	t.Helper()
	dump, err := v.redis.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for k, val := range dump {
		fmt.Fprintf(&b, "%s %s\n", k, val)
	}
	return b.String()
}

func TestNoSecretInRedisAuditOrLogs(t *testing.T) {
	v := newEnv(t)
	e := v.engine("A", nil)
	ctx := context.Background()
	secrets := map[string]string{"old PIN": origPIN}
	for dev, pw := range v.passwords("1001", "acme.example") {
		secrets["old password of "+dev] = pw
	}
	inc := v.open(e, "1001", "acme.example")
	var delivered []remediate.Secret
	for _, s := range session.Steps {
		res, err := e.Run(ctx, inc.ID, s, "U1", remediate.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		delivered = append(delivered, res.Secrets...)
	}
	cred, err := e.Credentials(ctx, inc.ID, "U1")
	if !errors.Is(err, remediate.ErrClosed) {
		t.Fatalf("Credentials on a closed incident = %v", err)
	}
	delivered = append(delivered, cred.Secrets...)
	for i, s := range delivered {
		secrets[fmt.Sprintf("delivered %d (%s)", i, s.Label)] = s.Value.Reveal()
	}
	for dev, pw := range v.passwords("1001", "acme.example") {
		secrets["new password of "+dev] = pw
	}
	secrets["new PIN"], _ = v.userField("1001", "acme.example", "voicemail-login-pin").(string)

	audit, err := v.store.Audit(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	global, err := v.store.GlobalAudit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	auditJSON, _ := json.Marshal(append(audit, global...))
	formatted := fmt.Sprintf("%v %+v %#v", delivered, delivered, delivered)
	places := map[string]string{
		"redis": dumpRedis(t, v), "audit": string(auditJSON), "logs": v.logs.String(), "formatted result": formatted,
	}
	for where, text := range places {
		if text == "" && where != "logs" {
			t.Fatalf("nothing captured from %s", where)
		}
		for what, s := range secrets {
			if s == "" {
				t.Fatalf("%s is empty", what)
			}
			if strings.Contains(text, s) {
				t.Errorf("%s found in %s", what, where)
			}
		}
	}
	if len(audit) < 10 {
		t.Errorf("only %d audit entries for a full runbook", len(audit))
	}
}

func TestPlanMakesNoWrite(t *testing.T) {
	v := newEnv(t)
	e := v.engine("A", nil)
	ctx := context.Background()
	v.sim.AddActiveCall("acme.example", "1001", "call-9", "+88299999999")
	redisBefore := dumpRedis(t, v)
	p, err := e.Plan(ctx, "1001", "Acme.Example")
	if err != nil {
		t.Fatal(err)
	}
	if w := v.writes(); len(w) != 0 {
		t.Errorf("plan wrote to the PBX: %v", w)
	}
	if diff := cmp.Diff(redisBefore, dumpRedis(t, v)); diff != "" {
		t.Errorf("plan changed Redis:\n%s", diff)
	}
	var got []string
	for _, s := range p.Steps {
		for _, c := range s.Calls {
			got = append(got, fmt.Sprintf("%s %s %s %s → %s", s.Step, c.Method, c.Path, c.Before, c.After))
		}
	}
	want := []string{
		"deny PUT /domains/acme.example/users/1001 US and Canada → Deny All",
		"deny DELETE /domains/acme.example/users/1001/calls/call-9 live call to +88299999999 → ended",
		"recreate DELETE /domains/acme.example/users/1001/devices/1001 1001 · Polycom VVX450 · MAC 0004f2aabbcc · line 1 · recording yes → deleted",
		"recreate POST /domains/acme.example/users/1001/devices SIP password •••••• → 1001 · Polycom VVX450 · MAC 0004f2aabbcc · line 1 · recording yes · new SIP password ••••••",
		"recreate PUT /domains/acme.example/phones line 1 of 0004f2aabbcc empty after the delete → line 1 = sip:1001@acme.example",
		"recreate DELETE /domains/acme.example/users/1001/devices/1001a 1001a · recording no → deleted",
		"recreate POST /domains/acme.example/users/1001/devices SIP password •••••• → 1001a · recording no · new SIP password ••••••",
		"reset DELETE /jwt/1001@acme.example sessions → revoked",
		"reset PUT /domains/acme.example/users/1001 voicemail PIN •••••• → new random 6-digit PIN ••••••",
		"reset POST /domains/acme.example/users/1001/email  → reset email to j•••@acme.example",
		"restore PUT /domains/acme.example/users/1001 Deny All → US and Canada",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	if out := fmt.Sprintf("%+v", p); strings.Contains(out, origPIN) || strings.Contains(out, "DemoSip1001Pw0rd") {
		t.Error("plan shows a secret")
	}
	if _, err := e.Plan(ctx, "9999", "acme.example"); !errors.Is(err, remediate.ErrUserNotFound) {
		t.Errorf("plan of a missing user = %v", err)
	}
	if _, err := e.Plan(ctx, "../x", "acme.example"); !errors.Is(err, remediate.ErrInvalid) {
		t.Errorf("plan of a bad user = %v", err)
	}
}

func TestProvisioningCredentialsSealed(t *testing.T) {
	seed := nstest.DemoSeed()
	for _, d := range seed.Devices {
		if d["device"] == "1001" {
			d["device-provisioning-username"] = "prov-user-1001"
			d["device-provisioning-password"] = "ProvSecretPw-1001"
		}
	}
	v := newEnvSeed(t, testenv.NewRedis(t), seed)
	e := v.engine("A", nil)
	ctx := context.Background()
	inc := v.open(e, "1001", "acme.example")
	for _, s := range []session.Step{session.StepDeny, session.StepRecreate} {
		if _, err := e.Run(ctx, inc.ID, s, "U1", remediate.RunOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var dev map[string]any
	for _, d := range v.sim.Devices("acme.example", "1001") {
		if d["device"] == "1001" {
			dev = d
		}
	}
	if dev["device-provisioning-username"] != "prov-user-1001" || dev["device-provisioning-password"] != "ProvSecretPw-1001" {
		t.Errorf("provisioning credentials not restored on the re-created device")
	}
	got := v.get(inc.ID)
	if len(got.Devices) == 0 || len(got.Devices[0].Sealed) != 2 {
		t.Fatalf("snapshot of 1001 = %+v, want both credentials sealed", got.Devices)
	}
	dump := dumpRedis(t, v)
	for _, s := range []string{"prov-user-1001", "ProvSecretPw-1001"} {
		if strings.Contains(dump, s) || strings.Contains(v.logs.String(), s) {
			t.Errorf("provisioning credential found in Redis or the logs")
		}
	}
}
