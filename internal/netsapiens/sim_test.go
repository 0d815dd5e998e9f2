package netsapiens_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

const (
	demoDomain = "acme.example"
	demoUser   = "1001"
)

func startSim(t *testing.T, opts nstest.Options, mod func(*netsapiens.Config)) (*nstest.Server, *netsapiens.Client, *sleepRecorder) {
	t.Helper()
	srv, base := nstest.Start(t, opts)
	c, rec := newClient(t, base, func(cfg *netsapiens.Config) {
		cfg.APIKey = netsapiens.Secret(srv.APIKey())
		if mod != nil {
			mod(cfg)
		}
	})
	return srv, c, rec
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestSimulatorOperations(t *testing.T) {
	srv, c, _ := startSim(t, nstest.Options{}, nil)
	ctx := netsapiens.WithLogTag(context.Background(), "INC-TEST01")

	v, err := c.Version(ctx)
	must(t, err)
	if v.APIVersion == "" {
		t.Error("Version has no apiversion")
	}

	u, err := c.GetUser(ctx, demoDomain, demoUser)
	must(t, err)
	if u.User != "1001" || u.FirstName != "Jane" || u.LastName != "Doe" || u.DialPolicy != "US and Canada" || u.VoicemailPIN == "" {
		t.Errorf("GetUser = %+v", u)
	}

	t.Run("dial policies", func(t *testing.T) {
		deny, err := c.GetDialPolicy(ctx, demoDomain, "Deny All")
		must(t, err)
		if deny.Name != "Deny All" || !deny.SystemLevel {
			t.Errorf("GetDialPolicy(Deny All) = %+v", deny)
		}
		perms, err := c.ListDialPolicyPermissions(ctx, demoDomain, "Deny All")
		must(t, err)
		if len(perms) == 0 || slices.ContainsFunc(perms, netsapiens.Permission.Permits) {
			t.Errorf("Deny All permissions = %+v", perms)
		}
		perms, err = c.ListDialPolicyPermissions(ctx, demoDomain, "US and Canada")
		must(t, err)
		if !slices.ContainsFunc(perms, netsapiens.Permission.Permits) {
			t.Errorf("US and Canada has no permit rule: %+v", perms)
		}
		if _, err := c.GetDialPolicy(ctx, demoDomain, "No Such Policy"); !errors.Is(err, netsapiens.ErrNotFound) {
			t.Errorf("GetDialPolicy(missing) = %v, want ErrNotFound", err)
		}
		// The domain's own and the system's, not globex.example's.
		pols, err := c.ListDialPolicies(ctx, demoDomain)
		must(t, err)
		var got []string
		for _, p := range pols {
			got = append(got, fmt.Sprintf("%s/%v", p.Name, p.SystemLevel))
		}
		if want := []string{"Deny All/true", "US and Canada/true", "International/true", "Acme Local/false"}; !slices.Equal(got, want) {
			t.Errorf("ListDialPolicies(%s) = %q, want %q", demoDomain, got, want)
		}
		if pols, err := c.ListDialPolicies(ctx, "globex.example"); err != nil || slices.ContainsFunc(pols, func(p netsapiens.DialPolicy) bool { return p.Name == "Acme Local" }) {
			t.Errorf("ListDialPolicies(globex.example) = %+v, %v; want no acme.example policy", pols, err)
		}
	})

	t.Run("update user", func(t *testing.T) {
		must(t, c.UpdateUser(ctx, demoDomain, demoUser, netsapiens.UserUpdate{DialPolicy: netsapiens.Ptr("Deny All")}))
		must(t, c.UpdateUser(ctx, demoDomain, demoUser, netsapiens.UserUpdate{VoicemailPIN: netsapiens.SecretPtr("480923")}))
		got, _ := srv.User(demoDomain, demoUser)
		if got["dial-policy"] != "Deny All" || got["voicemail-login-pin"] != "480923" || got["name-first-name"] != "Jane" {
			t.Errorf("user after updates: dial-policy %v, pin changed %v, first name %v",
				got["dial-policy"], got["voicemail-login-pin"] == "480923", got["name-first-name"])
		}
	})

	t.Run("devices", func(t *testing.T) {
		devs, err := c.ListDevices(ctx, demoDomain, demoUser)
		must(t, err)
		var ids []string
		for _, d := range devs {
			ids = append(ids, d.ID())
		}
		if diff := cmp.Diff([]string{"1001", "1001a"}, ids); diff != "" {
			t.Fatalf("device ids (-want +got):\n%s", diff)
		}
		hard, err := c.GetDevice(ctx, demoDomain, demoUser, "1001")
		must(t, err)
		if hard.MAC == nil || *hard.MAC != "0004f2aabbcc" || hard.Model == nil {
			t.Errorf("device 1001 MAC/model = %v/%v", hard.MAC, hard.Model)
		}

		soft, err := c.GetDevice(ctx, demoDomain, demoUser, "1001a")
		must(t, err)
		old := reveal(soft.SIPPassword)
		snap := soft.Writable()
		snap.SIPPassword = nil // re-create with a new generated password
		must(t, c.DeleteDevice(ctx, demoDomain, demoUser, "1001a"))
		if _, err := c.GetDevice(ctx, demoDomain, demoUser, "1001a"); !errors.Is(err, netsapiens.ErrNotFound) {
			t.Fatalf("GetDevice after delete = %v", err)
		}
		created, err := c.CreateDevice(ctx, demoDomain, demoUser, snap)
		must(t, err)
		if created.PasswordUnknown || reveal(created.SIPPassword) == "" || reveal(created.SIPPassword) == old {
			t.Errorf("re-created device: PasswordUnknown %v, new password set %v, differs %v",
				created.PasswordUnknown, created.SIPPassword != nil, reveal(created.SIPPassword) != old)
		}
		// Every field of the snapshot came back (the PBX fills defaults for the rest).
		want, got := jsonMap(t, snap), jsonMap(t, created)
		for k, v := range want {
			if diff := cmp.Diff(v, got[k]); diff != "" {
				t.Errorf("re-created %s differs (-snapshot +created):\n%s", k, diff)
			}
		}
		if _, err := c.CreateDevice(ctx, demoDomain, demoUser, snap); !errors.Is(err, netsapiens.ErrConflict) {
			t.Errorf("second create = %v, want ErrConflict", err)
		}
		must(t, c.UpdateDevice(ctx, demoDomain, demoUser, "1001a", netsapiens.Device{SIPPassword: netsapiens.SecretPtr("Rotated0123456789")}))
		rot, err := c.GetDevice(ctx, demoDomain, demoUser, "1001a")
		must(t, err)
		if reveal(rot.SIPPassword) != "Rotated0123456789" {
			t.Error("UpdateDevice did not rotate the password")
		}
	})

	t.Run("phones", func(t *testing.T) {
		phones, err := c.ListPhones(ctx, demoDomain)
		must(t, err)
		var polycom *netsapiens.Phone
		for i := range phones {
			if line, ok := phones[i].HasAOR(netsapiens.AOR("1001", demoDomain)); ok && line == 1 {
				polycom = &phones[i]
			}
		}
		if polycom == nil {
			t.Fatalf("no phone has sip:1001@acme.example on line 1: %d phones", len(phones))
		}
		p, err := c.GetPhone(ctx, demoDomain, "00:04:F2:AA:BB:CC")
		must(t, err)
		if p.Model == nil || *p.Model != "Polycom VVX450" {
			t.Errorf("GetPhone model = %v", p.Model)
		}
		must(t, c.UpdatePhone(ctx, demoDomain, netsapiens.Phone{MAC: netsapiens.Ptr("0004f2aabbcc"), Notes: netsapiens.Ptr("re-linked by test")}))
		p, err = c.GetPhone(ctx, demoDomain, "0004f2aabbcc")
		must(t, err)
		if p.Notes == nil || *p.Notes != "re-linked by test" {
			t.Errorf("notes after UpdatePhone = %v", p.Notes)
		}
		np := netsapiens.Phone{MAC: netsapiens.Ptr("00-04-F2-11-22-33"), Model: netsapiens.Ptr("Polycom VVX450"),
			Server: netsapiens.Ptr("ndp.pbx.example"), Notes: netsapiens.Ptr("")}
		np.LineURI[0] = netsapiens.Ptr(netsapiens.AOR("1002", demoDomain))
		must(t, c.CreatePhone(ctx, demoDomain, np))
		if _, err := c.GetPhone(ctx, demoDomain, "0004f2112233"); err != nil {
			t.Errorf("GetPhone after create: %v", err)
		}
		must(t, c.DeletePhone(ctx, demoDomain, "0004f2112233"))
		if _, err := c.GetPhone(ctx, demoDomain, "0004f2112233"); !errors.Is(err, netsapiens.ErrNotFound) {
			t.Errorf("GetPhone after delete = %v", err)
		}
	})

	t.Run("sessions, email, calls, cdrs", func(t *testing.T) {
		must(t, c.RevokeJWT(ctx, demoDomain, demoUser))
		if got := srv.RevokedJWTs(); !slices.Contains(got, "1001@acme.example") {
			t.Errorf("RevokedJWTs = %v", got)
		}
		must(t, c.SendEmail(ctx, demoDomain, demoUser, "password_reset.php", "Reset your password"))
		if got := srv.Emails(); len(got) != 1 || got[0].Template != "password_reset.php" {
			t.Errorf("Emails = %+v", got)
		}
		srv.AddActiveCall(demoDomain, demoUser, "call-77", "011442079460000")
		calls, err := c.ListCalls(ctx, demoDomain, demoUser)
		must(t, err)
		if len(calls) != 1 || calls[0].ID() != "call-77" || calls[0].DialedNumber == "" {
			t.Fatalf("ListCalls = %+v", calls)
		}
		must(t, c.EndCall(ctx, demoDomain, demoUser, calls[0].ID()))
		if left := srv.ActiveCalls(demoDomain, demoUser); len(left) != 0 {
			t.Errorf("calls after EndCall: %v", left)
		}
		cdrs, err := c.ListCDRs(ctx, demoDomain, demoUser, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 100)
		must(t, err)
		if len(cdrs) == 0 || cdrs[0].UID != "1001@acme.example" {
			t.Errorf("ListCDRs = %+v", cdrs)
		}
	})

	// Every call whose request or answer held a secret went untagged; the calls that can never
	// hold one (policies, deletes, revocation, calls, CDRs) carry the incident tag. The reset
	// e-mail is untagged: the message the PBX sends can hold a reset link.
	for _, call := range srv.Calls() {
		if call.Secret && call.LogTag != "" {
			t.Errorf("%s %s carries a secret and is tagged %q", call.Method, call.Path, call.LogTag)
		}
		neverSecret := call.Method == "DELETE" || call.Path == "/version" || strings.Contains(call.Path, "/dialpolicy") ||
			strings.Contains(call.Path, "/calls") || strings.HasSuffix(call.Path, "/cdrs")
		if neverSecret && call.LogTag != "INC-TEST01" {
			t.Errorf("%s %s is tagged %q, want INC-TEST01", call.Method, call.Path, call.LogTag)
		}
	}
}

func TestSimulatorErrorKinds(t *testing.T) {
	srv, c, _ := startSim(t, nstest.Options{}, nil)
	ctx := context.Background()
	tests := []struct {
		name string
		arm  func()
		call func() error
		want netsapiens.Kind
	}{
		{"missing user", nil, func() error { _, err := c.GetUser(ctx, demoDomain, "9999"); return err }, netsapiens.KindNotFound},
		{"missing device", nil, func() error { _, err := c.GetDevice(ctx, demoDomain, demoUser, "1001zz"); return err }, netsapiens.KindNotFound},
		{"conflict", nil, func() error {
			_, err := c.CreateDevice(ctx, demoDomain, demoUser, netsapiens.Device{Device: netsapiens.Ptr("1001")})
			return err
		}, netsapiens.KindConflict},
		{"forbidden", func() { srv.FailNext("GET", "/domains/*/users/*", 403, "Permission Denied") },
			func() error { _, err := c.GetUser(ctx, demoDomain, demoUser); return err }, netsapiens.KindForbidden},
		{"invalid", func() { srv.FailNext("PUT", "/domains/*/users/*", 400, "Invalid dial-policy") },
			func() error {
				return c.UpdateUser(ctx, demoDomain, demoUser, netsapiens.UserUpdate{DialPolicy: netsapiens.Ptr("Deny All")})
			}, netsapiens.KindInvalid},
		{"unauthorized", func() { srv.FailNext("GET", "/version", 401, "Unauthorized") },
			func() error { _, err := c.Version(ctx); return err }, netsapiens.KindUnauthorized},
		{"transient after retries", func() {
			for range 4 {
				srv.FailNext("GET", "/version", 503, "down")
			}
		}, func() error { _, err := c.Version(ctx); return err }, netsapiens.KindTransient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.arm != nil {
				tc.arm()
			}
			if err := tc.call(); netsapiens.KindOf(err) != tc.want {
				t.Errorf("err = %v, want kind %s", err, tc.want)
			}
		})
	}

	bad, _ := newClient(t, strings.TrimSuffix(srvURL(t, c), "/"), func(cfg *netsapiens.Config) { cfg.APIKey = "nsr_notAKey" })
	if _, err := bad.GetUser(ctx, demoDomain, demoUser); !errors.Is(err, netsapiens.ErrUnauthorized) {
		t.Errorf("wrong API key: %v, want ErrUnauthorized", err)
	}
}

// srvURL recovers the base URL from the client's String (it holds no secret).
func srvURL(t *testing.T, c *netsapiens.Client) string {
	s := c.String()
	i, j := strings.Index(s, "base: "), strings.Index(s, ", auth")
	if i < 0 || j < 0 {
		t.Fatalf("client string %q", s)
	}
	return s[i+len("base: ") : j]
}

func TestSimulatorOAuth(t *testing.T) {
	clock := testenv.NewClock(time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC))
	srv, base := nstest.Start(t, nstest.Options{TokenTTL: 10 * time.Minute, Now: clock.Now})
	c, _ := newClient(t, base, func(cfg *netsapiens.Config) {
		cfg.APIKey = ""
		cfg.OAuth = &netsapiens.OAuthConfig{ClientID: "demo-client", ClientSecret: "demo-client-secret-NOT-REAL",
			Username: "ops@acme.example", Password: "demo-password-NOT-REAL"}
		cfg.Now = clock.Now
	})
	ctx := context.Background()
	tokenCalls := func() int {
		n := 0
		for _, call := range srv.Calls() {
			if call.Path == "/tokens" {
				n++
			}
		}
		return n
	}
	for range 3 {
		if _, err := c.GetUser(ctx, demoDomain, demoUser); err != nil {
			t.Fatal(err)
		}
	}
	if n := tokenCalls(); n != 1 {
		t.Fatalf("token requests after 3 calls = %d, want 1", n)
	}
	clock.Advance(9*time.Minute + 30*time.Second) // within 60 s of expiry: refreshed before use
	if _, err := c.GetUser(ctx, demoDomain, demoUser); err != nil {
		t.Fatal(err)
	}
	if n := tokenCalls(); n != 2 {
		t.Fatalf("token requests after nearing expiry = %d, want 2", n)
	}
	var grants []string
	for _, call := range srv.Calls() {
		if call.Path == "/tokens" {
			var body struct {
				GrantType string `json:"grant_type"`
			}
			must(t, json.Unmarshal(call.Body, &body))
			grants = append(grants, body.GrantType)
		}
	}
	if diff := cmp.Diff([]string{"password", "refresh_token"}, grants); diff != "" {
		t.Errorf("grant types (-want +got):\n%s", diff)
	}
	for _, call := range srv.Calls() {
		if call.Path != "/tokens" && call.Auth != "oauth" {
			t.Errorf("%s %s auth = %q", call.Method, call.Path, call.Auth)
		}
		if call.Path == "/tokens" && (call.LogTag != "" || strings.Contains(string(call.Body), "NOT-REAL")) {
			t.Errorf("token call logged with tag %q / body %s", call.LogTag, call.Body)
		}
	}

	// The PBX drops the token early (a revoked or server-side expired token): one 401, one
	// fresh token, one retry.
	srv.FailNext("GET", "/domains/*/users/*", 401, "token expired")
	if _, err := c.GetUser(ctx, demoDomain, demoUser); err != nil {
		t.Fatalf("GetUser after a 401: %v", err)
	}
	if n := tokenCalls(); n != 3 {
		t.Errorf("token requests after a 401 = %d, want 3", n)
	}
}

func TestSimulatorFlakyConverges(t *testing.T) {
	srv, c, rec := startSim(t, nstest.Options{}, func(cfg *netsapiens.Config) { cfg.MaxRetries = 12 })
	srv.SetFaults(nstest.Faults{Rate5xx: 0.2, Rate429: 0.1, RateDrop: 0.1, RateAfter5xx: 0.2, Seed: 7})
	ctx := context.Background()
	for i := range 5 {
		must(t, c.UpdateUser(ctx, demoDomain, demoUser, netsapiens.UserUpdate{DialPolicy: netsapiens.Ptr("Deny All")}))
		must(t, c.DeleteDevice(ctx, demoDomain, demoUser, "1001a"))
		d, err := c.CreateDevice(ctx, demoDomain, demoUser, netsapiens.Device{Device: netsapiens.Ptr("1001a"), SRTP: netsapiens.Ptr("no")})
		must(t, err)
		if d.ID() != "1001a" {
			t.Fatalf("round %d: created %q", i, d.ID())
		}
		must(t, c.UpdateUser(ctx, demoDomain, demoUser, netsapiens.UserUpdate{DialPolicy: netsapiens.Ptr("US and Canada")}))
	}
	srv.SetFaults(nstest.Faults{})
	devs, err := c.ListDevices(ctx, demoDomain, demoUser)
	must(t, err)
	if len(devs) != 2 {
		t.Errorf("devices after the flaky run = %d, want 2", len(devs))
	}
	u, err := c.GetUser(ctx, demoDomain, demoUser)
	must(t, err)
	if u.DialPolicy != "US and Canada" {
		t.Errorf("dial policy = %q", u.DialPolicy)
	}
	if len(rec.all()) == 0 {
		t.Error("no retry happened: the faults did not fire")
	}
	for _, d := range rec.all() {
		if d > 61*time.Second {
			t.Errorf("waited %v", d)
		}
	}
}

func TestSimulatorCreateNeverDuplicated(t *testing.T) {
	srv, c, _ := startSim(t, nstest.Options{}, nil)
	ctx := context.Background()
	must(t, c.DeleteDevice(ctx, demoDomain, demoUser, "1001a"))
	srv.ResetCalls()
	srv.SetFaults(nstest.Faults{RateAfter5xx: 1, Match: func(method, path string) bool {
		return method == http.MethodPost && strings.HasSuffix(path, "/devices")
	}})
	d, err := c.CreateDevice(ctx, demoDomain, demoUser, netsapiens.Device{Device: netsapiens.Ptr("1001a")})
	must(t, err)
	if d.ID() != "1001a" {
		t.Errorf("created %q", d.ID())
	}
	posts := 0
	for _, call := range srv.Calls() {
		if call.Method == "POST" && call.Applied {
			posts++
			if call.Status != http.StatusBadGateway {
				t.Errorf("the create was answered %d, want the lost-reply 502", call.Status)
			}
		}
	}
	if posts != 1 {
		t.Errorf("POSTs = %d, want exactly 1", posts)
	}
	n := 0
	for _, dev := range srv.Devices(demoDomain, demoUser) {
		if dev["device"] == "1001a" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("devices named 1001a = %d, want 1", n)
	}
}

func TestSimulatorRefusedSegmentsMakeNoRequest(t *testing.T) {
	srv, c, _ := startSim(t, nstest.Options{}, nil)
	ctx := context.Background()
	_, e1 := c.GetUser(ctx, "acme.example/../globex.example", demoUser)
	_, e2 := c.GetDevice(ctx, demoDomain, demoUser, "1001a/../../x")
	e3 := c.EndCall(ctx, demoDomain, demoUser, "x?y")
	_, e4 := c.GetDialPolicy(ctx, demoDomain, "Deny\nAll")
	_, e5 := c.ListDevices(ctx, "~", "~")
	for i, err := range []error{e1, e2, e3, e4, e5} {
		if !errors.Is(err, netsapiens.ErrInvalid) {
			t.Errorf("call %d: %v, want ErrInvalid", i+1, err)
		}
	}
	if calls := srv.Calls(); len(calls) != 0 {
		t.Errorf("refused calls reached the PBX: %+v", calls)
	}
}

func TestSimulatorContextCancel(t *testing.T) {
	srv, c, _ := startSim(t, nstest.Options{}, nil)
	srv.SetFaults(nstest.Faults{Latency: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetUser(ctx, demoDomain, demoUser)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GetUser = %v, want context.DeadlineExceeded", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("GetUser took %v after its context ended", time.Since(start))
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := c.UpdateUser(ctx2, demoDomain, demoUser, netsapiens.UserUpdate{DialPolicy: netsapiens.Ptr("Deny All")}); !errors.Is(err, context.Canceled) {
		t.Errorf("UpdateUser with a cancelled ctx = %v", err)
	}
}

// jsonMap returns v's JSON object as a map.
func jsonMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	var m map[string]any
	must(t, json.Unmarshal(b, &m))
	return m
}
