package nstest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

func passwordGrant(overrides map[string]any) map[string]any {
	b := map[string]any{"grant_type": "password", "client_id": "demo-client", "client_secret": "demo-client-secret-NOT-REAL",
		"username": "ops@acme.example", "password": "demo-password-NOT-REAL"}
	for k, v := range overrides {
		b[k] = v
	}
	return b
}

func TestAPIKeyScopes(t *testing.T) {
	_, base := start(t, nstest.Options{})
	tests := []struct {
		name, token, path string
		wantStatus        int
		wantMessage       string
	}{
		{"reseller key, acme", resellerKey, "/domains/acme.example/users/1001", 200, ""},
		{"reseller key, globex", resellerKey, "/domains/globex.example/users/2001", 200, ""},
		{"domain key, own domain", acmeOnlyKey, "/domains/acme.example/users/1001", 200, ""},
		{"domain key, other domain", acmeOnlyKey, "/domains/globex.example/users/2001", 403, "Domain not found or access denied"},
		{"domain key, unknown domain", acmeOnlyKey, "/domains/nope.example/users/2001", 403, "Domain not found or access denied"},
		{"no token", "", "/domains/acme.example/users/1001", 401, "Authentication Required"},
		{"unknown token", "nsr_nope", "/domains/acme.example/users/1001", 401, "Invalid or unknown access token"},
		{"version needs no token", "", "/version", 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustCall(t, "GET", base+tc.path, tc.token, nil)
			if r.Status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.wantStatus, r.Body)
			}
			if tc.wantMessage != "" {
				if diff := cmp.Diff(map[string]any{"code": float64(tc.wantStatus), "message": tc.wantMessage}, r.obj(t)); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestOAuth(t *testing.T) {
	clk := testenv.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	s, base := start(t, nstest.Options{Now: clk.Now, TokenTTL: 10 * time.Minute})
	user := base + "/domains/globex.example/users/2001"

	r := mustCall(t, "POST", base+"/tokens", "", passwordGrant(nil))
	if r.Status != http.StatusOK {
		t.Fatalf("password grant: %d %s", r.Status, r.Body)
	}
	tok := r.obj(t)
	if tok["expires_in"] != 600.0 || tok["token_type"] != "Bearer" || tok["scope"] != "Reseller" || tok["refresh_token"] == "" {
		t.Errorf("token reply = %v", tok)
	}
	access, _ := tok["access_token"].(string)
	if r := mustCall(t, "GET", user, access, nil); r.Status != 200 {
		t.Fatalf("GET with access token: %d %s", r.Status, r.Body)
	}
	if c := s.Calls(); c[len(c)-1].Auth != "oauth" {
		t.Errorf("call log auth = %q, want oauth", c[len(c)-1].Auth)
	}

	clk.Advance(10 * time.Minute)
	r = mustCall(t, "GET", user, access, nil)
	if diff := cmp.Diff(map[string]any{"code": 401.0, "message": "Access token expired"}, r.obj(t)); diff != "" || r.Status != 401 {
		t.Errorf("expired token: status %d (-want +got):\n%s", r.Status, diff)
	}

	r = mustCall(t, "POST", base+"/tokens", "", map[string]any{"grant_type": "refresh_token", "client_id": "demo-client",
		"client_secret": "demo-client-secret-NOT-REAL", "refresh_token": tok["refresh_token"]})
	if r.Status != http.StatusOK {
		t.Fatalf("refresh grant: %d %s", r.Status, r.Body)
	}
	fresh, _ := r.obj(t)["access_token"].(string)
	if fresh == access || fresh == "" {
		t.Fatalf("refresh returned access token %q", fresh)
	}
	if r := mustCall(t, "GET", user, fresh, nil); r.Status != 200 {
		t.Errorf("GET with refreshed token: %d %s", r.Status, r.Body)
	}
}

func TestOAuthRefusals(t *testing.T) {
	s, base := start(t, nstest.Options{})
	tests := []struct {
		name       string
		body       map[string]any
		wantStatus int
	}{
		{"wrong client secret", passwordGrant(map[string]any{"client_secret": "nope"}), 401},
		{"unknown client", passwordGrant(map[string]any{"client_id": "nope"}), 401},
		{"wrong password", passwordGrant(map[string]any{"password": "nope"}), 401},
		{"unknown login", passwordGrant(map[string]any{"username": "nobody@acme.example"}), 401},
		{"unknown refresh token", map[string]any{"grant_type": "refresh_token", "client_id": "demo-client",
			"client_secret": "demo-client-secret-NOT-REAL", "refresh_token": "nope"}, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustCall(t, "POST", base+"/tokens", "", tc.body)
			if r.Status != tc.wantStatus || r.obj(t)["access_token"] != nil {
				t.Errorf("status %d, want %d: %s", r.Status, tc.wantStatus, r.Body)
			}
		})
	}
	t.Run("grant without password", func(t *testing.T) {
		b := passwordGrant(nil)
		delete(b, "password")
		if r := mustCall(t, "POST", base+"/tokens", "", b); r.Status != 400 {
			t.Errorf("status %d, want 400: %s", r.Status, r.Body)
		}
		expectViolations(t, s, "missing required field")
	})
}

func TestReadOnlyKey(t *testing.T) {
	seed := nstest.DemoSeed()
	seed.APIKeys[1].ReadOnly = "yes"
	s, base := start(t, nstest.Options{Seed: seed})
	u := base + "/domains/acme.example/users/1001"
	if r := mustCall(t, "GET", u, acmeOnlyKey, nil); r.Status != 200 {
		t.Errorf("read with read-only key: %d", r.Status)
	}
	if r := mustCall(t, "PUT", u, acmeOnlyKey, map[string]any{"dial-policy": "Deny All"}); r.Status != 403 {
		t.Errorf("write with read-only key: %d, want 403", r.Status)
	}
	if got, _ := s.User("acme.example", "1001"); got["dial-policy"] != "US and Canada" {
		t.Errorf("read-only key changed the user")
	}
}
