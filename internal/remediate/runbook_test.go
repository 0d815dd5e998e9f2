package remediate_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

const (
	origPIN      = "482913"
	origPolicy   = "US and Canada"
	denyPolicy   = "Deny All"
	deskPhoneMAC = "0004f2aabbcc"
)

// runAll runs every step in order and returns the secrets handed out.
func runAll(t *testing.T, e *remediate.Engine, id string) []remediate.Secret {
	t.Helper()
	var secrets []remediate.Secret
	for _, s := range session.Steps {
		res, err := e.Run(context.Background(), id, s, "U1", remediate.RunOptions{})
		if err != nil {
			t.Fatalf("Run(%s) = %v (%s)", s, err, remediate.UserMessage(err))
		}
		secrets = append(secrets, res.Secrets...)
	}
	return secrets
}

// checkFinal checks that the simulator is as the procedure says after a full runbook of
// 1001@acme.example: same devices and settings, new passwords, desk phone re-linked, new PIN,
// original policy back, incident closed.
func checkFinal(t *testing.T, v *env, id string, before map[string]map[string]any, oldPW map[string]string) {
	t.Helper()
	if got := v.userField("1001", "acme.example", "dial-policy"); got != origPolicy {
		t.Errorf("dial-policy = %v, want %q", got, origPolicy)
	}
	// The PBX fills documented defaults into fields the seed left out; compare what was there.
	after := v.settings("1001", "acme.example")
	for dev, m := range after {
		for k := range m {
			if _, ok := before[dev][k]; !ok {
				delete(m, k)
			}
		}
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("device settings changed (-before +after):\n%s", diff)
	}
	for dev, pw := range v.passwords("1001", "acme.example") {
		if pw == "" || pw == oldPW[dev] {
			t.Errorf("device %s kept its old SIP password", dev)
		}
	}
	var linked bool
	for _, p := range v.sim.Phones("acme.example") {
		if p["device-provisioning-mac-address"] == deskPhoneMAC {
			linked = p["device-provisioning-sip-uri-1"] == "sip:1001@acme.example"
		}
	}
	if !linked {
		t.Errorf("desk phone %s line 1 is not linked to 1001 again", deskPhoneMAC)
	}
	pin, _ := v.userField("1001", "acme.example", "voicemail-login-pin").(string)
	if pin == origPIN || len(pin) != 6 {
		t.Errorf("voicemail PIN not replaced by a new 6-digit one (len %d, same as old: %v)", len(pin), pin == origPIN)
	}
	if n := len(v.sim.ActiveCalls("acme.example", "1001")); n != 0 {
		t.Errorf("%d live call(s) still up", n)
	}
	inc := v.get(id)
	if inc.State != session.StateRestored {
		t.Errorf("incident state = %s, want restored", inc.State)
	}
	if inc.Original == nil || !inc.Original.Known || inc.Original.Policy != origPolicy {
		t.Errorf("incident original = %+v, want known %q", inc.Original, origPolicy)
	}
	if _, ok, err := v.store.UserOriginal(context.Background(), "1001", "acme.example"); err != nil || ok {
		t.Errorf("UserOriginal after restore = %v, %v; want cleared", ok, err)
	}
	if err := v.store.Verify(context.Background(), id); err != nil {
		t.Errorf("audit chain: %v", err)
	}
}

func TestFullRunbook(t *testing.T) {
	v := newEnv(t)
	e := v.engine("A", nil)
	ctx := context.Background()
	v.sim.AddActiveCall("acme.example", "1001", "call-1", "+88212345678")
	before, oldPW := v.settings("1001", "acme.example"), v.passwords("1001", "acme.example")
	inc := v.open(e, "1001", "ACME.example")
	if inc.Domain != "acme.example" || inc.Live == nil || inc.Live.DialPolicy != origPolicy || inc.Live.ActiveCalls != 1 {
		t.Fatalf("opened incident = %+v", inc)
	}
	if again, created, err := e.Open(ctx, remediate.OpenRequest{User: "1001", Domain: "acme.example", Actor: "U2"}); err != nil || created || again.ID != inc.ID {
		t.Fatalf("second Open = %s created %v %v; want the open %s", again.ID, created, err, inc.ID)
	}
	v.sim.ResetCalls()

	secrets := runAll(t, e, inc.ID)
	checkFinal(t, v, inc.ID, before, oldPW)

	got := v.get(inc.ID)
	if s := got.Step(session.StepDeny).Summary; s != "verified · 1 live call(s) ended" {
		t.Errorf("deny summary = %q", s)
	}
	if s := got.Step(session.StepReset).Status; s != session.StatusWarnings {
		t.Errorf("reset status = %s, want warnings", s)
	}
	outcomes := map[string]session.Outcome{}
	for _, sr := range got.Step(session.StepReset).SubResults {
		outcomes[sr.Name] = sr.Outcome
	}
	wantOutcomes := map[string]session.Outcome{"sessions": session.OutcomeRequested, "voicemail PIN": session.OutcomeVerified,
		"reset email": session.OutcomeRequested, "portal password": session.OutcomeNotPossible}
	if diff := cmp.Diff(wantOutcomes, outcomes); diff != "" {
		t.Errorf("reset sub-results (-want +got):\n%s", diff)
	}
	// Secrets: the softphone's new SIP password and the PIN, never the desk phone's.
	pws := v.passwords("1001", "acme.example")
	pin := v.userField("1001", "acme.example", "voicemail-login-pin")
	var labels []string
	for _, s := range secrets {
		labels = append(labels, s.Label)
		switch s.Device {
		case "1001a":
			if s.Value.Reveal() != pws["1001a"] {
				t.Errorf("delivered SIP password of 1001a is not the one on the PBX")
			}
		case "":
			if s.Value.Reveal() != pin {
				t.Errorf("delivered PIN is not the one on the PBX")
			}
		default:
			t.Errorf("secret for %s delivered; MAC-provisioned devices get theirs by provisioning", s.Device)
		}
	}
	if diff := cmp.Diff([]string{"softphone 1001a: SIP password", "voicemail PIN of 1001@acme.example"}, labels); diff != "" {
		t.Errorf("secret labels (-want +got):\n%s", diff)
	}
	if got := v.sim.RevokedJWTs(); len(got) != 1 || got[0] != "1001@acme.example" {
		t.Errorf("revoked JWTs = %v", got)
	}
	if got := v.sim.Emails(); len(got) != 1 || got[0].Template != "password_reset.php" {
		t.Errorf("emails = %+v", got)
	}
	// Every PBX call of the steps carries the incident ID, except the ones whose request or
	// answer can hold a secret (issue 10: the verify reads, the reset read-back, the devices).
	for _, c := range v.sim.Calls() {
		mayHoldSecret := c.Secret || c.Method == "GET" && (strings.HasSuffix(c.Path, "/users/1001") ||
			strings.Contains(c.Path, "/devices") || strings.Contains(c.Path, "/phones"))
		switch {
		case c.Secret && c.LogTag != "":
			t.Errorf("%s %s carries a secret and the log tag %q", c.Method, c.Path, c.LogTag)
		case !mayHoldSecret && c.LogTag != inc.ID:
			t.Errorf("%s %s has log tag %q, want %q", c.Method, c.Path, c.LogTag, inc.ID)
		}
	}
}

func TestStepOrderAndClosed(t *testing.T) {
	v := newEnv(t)
	e := v.engine("A", nil)
	ctx := context.Background()
	inc := v.open(e, "1001", "acme.example")
	for _, s := range []session.Step{session.StepRecreate, session.StepReset, session.StepRestore} {
		t.Run(string(s), func(t *testing.T) {
			_, err := e.Run(ctx, inc.ID, s, "U1", remediate.RunOptions{})
			if !errors.Is(err, remediate.ErrStepOrder) {
				t.Fatalf("Run(%s) before deny = %v, want ErrStepOrder", s, err)
			}
			if remediate.KindOf(err) != remediate.KindStepOrder || remediate.UserMessage(err) == "" {
				t.Errorf("Kind = %q, message %q", remediate.KindOf(err), remediate.UserMessage(err))
			}
		})
	}
	if w := v.writes(); len(w) != 0 {
		t.Fatalf("refused steps wrote to the PBX: %v", w)
	}
	if _, err := e.Run(ctx, inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := e.Run(ctx, inc.ID, session.StepDeny, "U2", remediate.RunOptions{})
	var se *session.StepError
	if !errors.Is(err, remediate.ErrAlreadyDone) || !errors.As(err, &se) || se.By != "U1" {
		t.Fatalf("second deny = %v, want already done by U1", err)
	}
	// Restore before recreate and reset: allowed, those are recorded as skipped.
	if _, err := e.Run(ctx, inc.ID, session.StepRestore, "U1", remediate.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	got := v.get(inc.ID)
	for _, s := range []session.Step{session.StepRecreate, session.StepReset} {
		if st := got.Step(s).Status; st != session.StatusSkipped {
			t.Errorf("%s = %s, want skipped", s, st)
		}
	}
	if _, err := e.Run(ctx, inc.ID, session.StepReset, "U1", remediate.RunOptions{}); !errors.Is(err, remediate.ErrClosed) {
		t.Errorf("Run on a closed incident = %v, want ErrClosed", err)
	}
}

func TestDriftBeforeRestore(t *testing.T) {
	v := newEnv(t)
	e := v.engine("A", nil)
	ctx := context.Background()
	inc := v.openDenied(e, "1001", "acme.example")
	v.sim.SetUserField("acme.example", "1001", "dial-policy", "International")
	v.sim.ResetCalls()
	_, err := e.Run(ctx, inc.ID, session.StepRestore, "U1", remediate.RunOptions{})
	var de *remediate.DriftError
	if !errors.As(err, &de) || !errors.Is(err, remediate.ErrDrift) {
		t.Fatalf("restore after drift = %v, want ErrDrift", err)
	}
	if diff := cmp.Diff(remediate.DriftError{Live: "International", Original: origPolicy, Deny: denyPolicy}, *de); diff != "" {
		t.Errorf("drift (-want +got):\n%s", diff)
	}
	if w := v.writes(); len(w) != 0 {
		t.Errorf("drifted restore wrote %v", w)
	}
	after := v.get(inc.ID)
	if st := after.Step(session.StepRestore); st.Status != session.StatusFailed || st.ErrKind != "drift" {
		t.Errorf("restore step = %s/%s, want failed/drift", st.Status, st.ErrKind)
	}
	if _, err := e.Run(ctx, inc.ID, session.StepRestore, "U1", remediate.RunOptions{Force: true}); err != nil {
		t.Fatalf("forced restore: %v", err)
	}
	if got := v.userField("1001", "acme.example", "dial-policy"); got != origPolicy {
		t.Errorf("dial-policy = %v after forced restore", got)
	}
}

func TestAbortThenNewIncidentRestoresTrueOriginal(t *testing.T) {
	v := newEnv(t)
	e := v.engine("A", nil)
	ctx := context.Background()
	first := v.openDenied(e, "1001", "acme.example")
	if _, err := e.Abort(ctx, first.ID, "U1", "wrong user?", ""); err != nil {
		t.Fatal(err)
	}
	if got := v.userField("1001", "acme.example", "dial-policy"); got != denyPolicy {
		t.Fatalf("after abort dial-policy = %v, want the user to stay denied", got)
	}
	second := v.open(e, "1001", "acme.example")
	if second.ID == first.ID {
		t.Fatal("a new incident was not opened after the abort")
	}
	if _, err := e.Run(ctx, second.ID, session.StepDeny, "U1", remediate.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if o := v.get(second.ID).Original; o == nil || !o.Known || o.Policy != origPolicy {
		t.Fatalf("second incident original = %+v, want %q", o, origPolicy)
	}
	if _, err := e.Run(ctx, second.ID, session.StepRestore, "U1", remediate.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := v.userField("1001", "acme.example", "dial-policy"); got != origPolicy {
		t.Errorf("dial-policy = %v, want the true original %q", got, origPolicy)
	}
}

func TestOriginalUnknown(t *testing.T) {
	v := newEnv(t)
	e := v.engine("A", nil)
	ctx := context.Background()
	inc := v.open(e, "1003", "acme.example") // already in Deny All, no original on record
	if _, err := e.Run(ctx, inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if o := v.get(inc.ID).Original; o == nil || o.Known {
		t.Fatalf("original = %+v, want unknown", o)
	}
	if w := v.writes(); len(w) != 0 {
		t.Errorf("deny of a denied user wrote %v", w)
	}
	tests := []struct {
		name   string
		policy string
		want   error
	}{
		{"no policy", "", remediate.ErrOriginalUnknown},
		{"policy not on the PBX", "Nowhere", remediate.ErrInvalid},
		{"the deny policy", denyPolicy, remediate.ErrInvalid},
		{"explicit", "International", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Run(ctx, inc.ID, session.StepRestore, "U1", remediate.RunOptions{RestorePolicy: tc.policy})
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("restore with %q = %v, want %v", tc.policy, err, tc.want)
			}
		})
	}
	if got := v.userField("1003", "acme.example", "dial-policy"); got != "International" {
		t.Errorf("dial-policy = %v", got)
	}
}

func TestDenyPolicyMissing(t *testing.T) {
	v := newEnv(t)
	e := v.engine("A", func(c *remediate.Config) { c.DenyPolicy = "Block Everything" })
	ctx := context.Background()
	inc := v.open(e, "1001", "acme.example")
	_, err := e.Run(ctx, inc.ID, session.StepDeny, "U1", remediate.RunOptions{})
	if !errors.Is(err, remediate.ErrDenyPolicyMissing) {
		t.Fatalf("deny = %v, want ErrDenyPolicyMissing", err)
	}
	if !strings.Contains(remediate.UserMessage(err), `"Block Everything" does not exist`) {
		t.Errorf("message = %q", remediate.UserMessage(err))
	}
	if w := v.writes(); len(w) != 0 {
		t.Errorf("deny with a missing policy wrote %v", w)
	}
	if o := v.get(inc.ID).Original; o == nil || o.Policy != origPolicy {
		t.Errorf("original = %+v, want recorded before the check", o)
	}
}

func TestApprovals(t *testing.T) {
	v := newEnv(t)
	e := v.engine("A", func(c *remediate.Config) { c.ApprovalSteps = []session.Step{session.StepRestore} })
	ctx := context.Background()
	inc := v.open(e, "1001", "acme.example")
	if _, err := e.Request(ctx, inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := e.Request(ctx, inc.ID, session.StepRestore, "U1", remediate.RunOptions{})
	if err != nil || !res.Awaiting {
		t.Fatalf("Request(restore) = awaiting %v, %v", res.Awaiting, err)
	}
	if got := v.userField("1001", "acme.example", "dial-policy"); got != denyPolicy {
		t.Fatalf("restore ran without approval: %v", got)
	}
	if _, err := e.Approve(ctx, inc.ID, session.StepRestore, "U1"); !errors.Is(err, remediate.ErrSelfApproval) {
		t.Fatalf("self approval = %v", err)
	}
	if _, err := e.Reject(ctx, inc.ID, session.StepRestore, "U2"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Request(ctx, inc.ID, session.StepRestore, "U1", remediate.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err = e.Approve(ctx, inc.ID, session.StepRestore, "U2")
	if err != nil {
		t.Fatalf("Approve: %v", err)
	}
	st := res.Incident.Step(session.StepRestore)
	if st.RequestedBy != "U1" || st.ApprovedBy != "U2" || res.Incident.State != session.StateRestored {
		t.Errorf("restore by %q approved by %q, state %s", st.RequestedBy, st.ApprovedBy, res.Incident.State)
	}
	if got := v.userField("1001", "acme.example", "dial-policy"); got != origPolicy {
		t.Errorf("dial-policy = %v", got)
	}
}

func TestDenyWarnsOnPermitRule(t *testing.T) {
	v := newEnv(t)
	e := v.engine("A", func(c *remediate.Config) { c.DenyPolicy = origPolicy }) // a policy with permit rules
	inc := v.open(e, "1002", "acme.example")
	res, err := e.Run(context.Background(), inc.ID, session.StepDeny, "U1", remediate.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := res.Incident.Step(session.StepDeny)
	if st.Status != session.StatusWarnings {
		t.Fatalf("deny with a permit rule = %s, want warnings", st.Status)
	}
	var found bool
	for _, sr := range st.SubResults {
		found = found || sr.Name == "deny policy rules" && strings.Contains(sr.Detail, "permit rule")
	}
	if !found {
		t.Errorf("no permit-rule warning in %+v", st.SubResults)
	}
}

func TestRunbookWithoutKeys(t *testing.T) {
	v := newEnv(t)
	st, err := session.New(session.Config{Client: v.redis.Client, Prefix: v.redis.Prefix, Logger: v.log, Now: v.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	v.store, v.keys = st, nil
	e := v.engine("A", nil)
	before, oldPW := v.settings("1001", "acme.example"), v.passwords("1001", "acme.example")
	inc := v.open(e, "1001", "acme.example")
	runAll(t, e, inc.ID)
	checkFinal(t, v, inc.ID, before, oldPW)
	got := v.get(inc.ID)
	for _, d := range got.Devices {
		if d.PasswordHMAC != "" || len(d.Sealed) != 0 {
			t.Errorf("device %s kept an HMAC or a sealed value without keys", d.Device)
		}
	}
}
