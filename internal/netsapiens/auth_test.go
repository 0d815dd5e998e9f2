package netsapiens_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

// tokenPBX is a fake with an OAuth token endpoint: it issues tok-N/ref-N and accepts only
// tokens it issued and has not revoked.
type tokenPBX struct {
	*fakePBX
	mu          sync.Mutex
	n           int
	valid       map[string]bool
	refreshOK   bool // refresh grants accepted
	noAccess    bool // answer 200 without access_token
	grants      []string
	expiresIn   int
	tokenGate   chan struct{} // when set, the token endpoint waits on it
	tokenEnters chan struct{}
}

func newTokenPBX(t *testing.T) *tokenPBX {
	p := &tokenPBX{valid: map[string]bool{}, refreshOK: true, expiresIn: 3600}
	p.fakePBX = newFakePBX(t, func(w http.ResponseWriter, r *http.Request, body string) {
		if r.URL.Path == "/ns-api/v2/tokens" {
			p.token(t, w, body)
			return
		}
		p.mu.Lock()
		ok := p.valid[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		p.mu.Unlock()
		if !ok {
			writeJSON(w, 401, `{"code":401,"message":"Unauthorized"}`)
			return
		}
		writeJSON(w, 200, `{"apiversion":"45.0","hostname":"core1"}`)
	})
	return p
}

func (p *tokenPBX) token(t *testing.T, w http.ResponseWriter, body string) {
	if p.tokenEnters != nil {
		p.tokenEnters <- struct{}{}
	}
	if p.tokenGate != nil {
		<-p.tokenGate
	}
	var req map[string]string
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Errorf("token body: %v", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.grants = append(p.grants, req["grant_type"])
	if req["client_id"] != "demo-client" || req["client_secret"] != "client-SECRET" {
		writeJSON(w, 401, `{"code":401,"message":"bad client"}`)
		return
	}
	switch req["grant_type"] {
	case "password":
		if req["username"] != "ops@acme.example" || req["password"] != "pw-SECRET" {
			writeJSON(w, 401, fmt.Sprintf(`{"code":401,"message":"bad login %s for %s"}`, req["password"], req["username"]))
			return
		}
	case "refresh_token":
		if !p.refreshOK || !strings.HasPrefix(req["refresh_token"], "ref-") {
			writeJSON(w, 400, `{"code":400,"message":"invalid refresh token"}`)
			return
		}
	default:
		writeJSON(w, 400, `{"code":400,"message":"bad grant"}`)
		return
	}
	if p.noAccess {
		writeJSON(w, 200, `{"error":"mfa_required"}`)
		return
	}
	p.n++
	tok := fmt.Sprintf("tok-%d", p.n)
	p.valid[tok] = true
	writeJSON(w, 200, fmt.Sprintf(`{"access_token":%q,"refresh_token":"ref-%d","expires_in":%d,"token_type":"Bearer"}`, tok, p.n, p.expiresIn))
}

func (p *tokenPBX) revokeAll() {
	p.mu.Lock()
	p.valid = map[string]bool{}
	p.mu.Unlock()
}

func (p *tokenPBX) grantLog() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.grants...)
}

func newOAuthClient(t *testing.T, p *tokenPBX, clock *testenv.Clock) *netsapiens.Client {
	c, _ := newClient(t, p.URL(), func(cfg *netsapiens.Config) {
		cfg.APIKey = ""
		cfg.OAuth = &netsapiens.OAuthConfig{ClientID: "demo-client", ClientSecret: "client-SECRET", Username: "ops@acme.example", Password: "pw-SECRET"}
		cfg.Now = clock.Now
	})
	return c
}

func TestOAuthTokenLifecycle(t *testing.T) {
	p := newTokenPBX(t)
	clock := testenv.NewClock(time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC))
	c := newOAuthClient(t, p, clock)
	ctx := context.Background()
	version := func() {
		t.Helper()
		if _, err := c.Version(ctx); err != nil {
			t.Fatalf("Version: %v", err)
		}
	}

	version()
	version() // cached
	if diff := cmp.Diff([]string{"password"}, p.grantLog()); diff != "" {
		t.Fatalf("grants after two calls (-want +got):\n%s", diff)
	}

	clock.Advance(3600*time.Second - 61*time.Second) // still more than 60 s before expiry
	version()
	clock.Advance(2 * time.Second) // inside the 60 s margin: refreshed
	version()
	if diff := cmp.Diff([]string{"password", "refresh_token"}, p.grantLog()); diff != "" {
		t.Fatalf("grants after expiry (-want +got):\n%s", diff)
	}

	// A refused refresh falls back to the password grant.
	p.mu.Lock()
	p.refreshOK = false
	p.mu.Unlock()
	clock.Advance(time.Hour)
	version()
	if diff := cmp.Diff([]string{"password", "refresh_token", "refresh_token", "password"}, p.grantLog()); diff != "" {
		t.Fatalf("grants after a refused refresh (-want +got):\n%s", diff)
	}

	// A 401 drops the token: one retry with a fresh one.
	p.revokeAll()
	version()
	if got := p.grantLog(); len(got) != 6 { // refresh (refused) + password
		t.Fatalf("grants after a 401: %v", got)
	}
	var bearers []string
	for _, r := range p.requests() {
		if r.Path == "/tokens" {
			if r.Auth != "" || r.LogTag != "" {
				t.Errorf("token request carried Authorization %q / tag %q", r.Auth, r.LogTag)
			}
			continue
		}
		bearers = append(bearers, r.Auth)
	}
	want := []string{"Bearer tok-1", "Bearer tok-1", "Bearer tok-1", "Bearer tok-2", "Bearer tok-3", "Bearer tok-3", "Bearer tok-4"}
	if diff := cmp.Diff(want, bearers); diff != "" {
		t.Errorf("bearer tokens used (-want +got):\n%s", diff)
	}
}

func TestOAuthFailures(t *testing.T) {
	tests := []struct {
		name     string
		mod      func(p *tokenPBX, cfg *netsapiens.OAuthConfig)
		wantKind netsapiens.Kind
	}{
		{"reply without access_token", func(p *tokenPBX, _ *netsapiens.OAuthConfig) { p.noAccess = true }, netsapiens.KindUnauthorized},
		{"wrong password", func(_ *tokenPBX, cfg *netsapiens.OAuthConfig) { cfg.Password = "wrong-SECRET" }, netsapiens.KindUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newTokenPBX(t)
			oc := &netsapiens.OAuthConfig{ClientID: "demo-client", ClientSecret: "client-SECRET", Username: "ops@acme.example", Password: "pw-SECRET"}
			tc.mod(p, oc)
			c, _ := newClient(t, p.URL(), func(cfg *netsapiens.Config) { cfg.APIKey = ""; cfg.OAuth = oc })
			_, err := c.Version(context.Background())
			if netsapiens.KindOf(err) != tc.wantKind {
				t.Fatalf("Version = %v, want kind %s", err, tc.wantKind)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error %q leaks a secret", err)
			}
			for _, r := range p.requests() {
				if r.Path != "/tokens" {
					t.Errorf("API request %s %s made without a token", r.Method, r.Path)
				}
			}
		})
	}
}

func TestOAuthConcurrentCallersShareOneFetch(t *testing.T) {
	p := newTokenPBX(t)
	p.tokenGate = make(chan struct{})
	p.tokenEnters = make(chan struct{}, 32)
	clock := testenv.NewClock(time.Now())
	c := newOAuthClient(t, p, clock)

	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Version(context.Background())
			errs <- err
		}()
	}
	<-p.tokenEnters
	// A caller that gives up while the fetch runs gets its own context error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Version(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Version with a cancelled ctx = %v", err)
	}
	close(p.tokenGate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Version: %v", err)
		}
	}
	if got := p.grantLog(); len(got) != 1 {
		t.Errorf("token requests = %v, want exactly one", got)
	}
}
