package nstest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/testenv"
)

func TestLatencyHonoursContext(t *testing.T) {
	s, base := start(t, nstest.Options{})
	s.SetFaults(nstest.Faults{Latency: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := call(t, ctx, "GET", base+"/version", "", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the client's deadline", err)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	// The handler notices the client is gone and stops waiting; poll for its log entry.
	testenv.WaitFor(t, 10*time.Second, "the unanswered call's log entry", func() bool { return len(s.Calls()) > 0 })
	if c := s.Calls(); len(c) != 1 || c[0].Status != 0 {
		t.Errorf("calls = %+v, want one unanswered call", c)
	}

	s.SetFaults(nstest.Faults{Latency: 50 * time.Millisecond})
	began = time.Now()
	if r := mustCall(t, "GET", base+"/version", "", nil); r.Status != 200 || time.Since(began) < 50*time.Millisecond {
		t.Errorf("status %d after %v, want 200 after ≥ 50ms", r.Status, time.Since(began))
	}
}

func TestFaultRates(t *testing.T) {
	tests := []struct {
		name   string
		faults nstest.Faults
		check  func(t *testing.T, r reply, err error)
	}{
		{"5xx", nstest.Faults{Rate5xx: 1}, func(t *testing.T, r reply, err error) {
			if err != nil || (r.Status != 500 && r.Status != 502 && r.Status != 503) {
				t.Errorf("status %d err %v, want 500/502/503", r.Status, err)
			}
		}},
		{"429", nstest.Faults{Rate429: 1}, func(t *testing.T, r reply, err error) {
			if err != nil || r.Status != 429 || r.Header.Get("Retry-After") != "1" {
				t.Errorf("status %d Retry-After %q err %v", r.Status, r.Header.Get("Retry-After"), err)
			}
		}},
		{"drop", nstest.Faults{RateDrop: 1}, func(t *testing.T, r reply, err error) {
			if err == nil {
				t.Errorf("status %d, want a transport error", r.Status)
			}
		}},
		{"match excludes", nstest.Faults{Rate5xx: 1, Match: func(m, p string) bool { return m == "PUT" }}, func(t *testing.T, r reply, err error) {
			if err != nil || r.Status != 200 {
				t.Errorf("status %d err %v, want 200", r.Status, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, base := start(t, nstest.Options{})
			s.SetFaults(tc.faults)
			r, err := call(t, context.Background(), "GET", base+"/domains/acme.example/users/1001", s.APIKey(), nil)
			tc.check(t, r, err)
		})
	}
}

func TestFaultRateIsAFraction(t *testing.T) {
	s, base := start(t, nstest.Options{})
	s.SetFaults(nstest.Faults{Rate5xx: 0.3, Seed: 7})
	failed := 0
	for range 200 {
		if r := mustCall(t, "GET", base+"/version", "", nil); r.Status >= 500 {
			failed++
		}
	}
	if failed < 30 || failed > 90 {
		t.Errorf("%d of 200 failed, want about 60", failed)
	}
}

func TestAfter5xxAppliesTheWrite(t *testing.T) {
	s, base := start(t, nstest.Options{})
	s.SetFaults(nstest.Faults{RateAfter5xx: 1})
	r := mustCall(t, "POST", base+"/domains/acme.example/users/1001/devices", s.APIKey(), map[string]any{"device": "1001z"})
	if r.Status != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", r.Status)
	}
	if n := len(s.Devices("acme.example", "1001")); n != 3 {
		t.Errorf("%d devices, want 3: the write must be applied", n)
	}
	c := s.Calls()
	if !c[0].Applied || len(s.Writes()) != 0 {
		t.Errorf("call = %+v, writes = %d; want Applied and no 2xx write", c[0], len(s.Writes()))
	}
	if r := mustCall(t, "GET", base+"/version", "", nil); r.Status != 200 {
		t.Errorf("a read lost its reply: %d", r.Status)
	}
}

func TestFailNext(t *testing.T) {
	s, base := start(t, nstest.Options{})
	s.FailNext("POST", "/domains/*/users/*/devices", 409, "Device already exists")
	s.FailNext("", "/domains/*/users/1001", 429, "slow down")
	dev := base + "/domains/acme.example/users/1001/devices"

	if r := mustCall(t, "GET", dev, s.APIKey(), nil); r.Status != 200 {
		t.Errorf("GET devices hit the POST failure: %d", r.Status)
	}
	r := mustCall(t, "POST", dev, s.APIKey(), map[string]any{"device": "1001z"})
	if r.Status != 409 || !strings.Contains(string(r.Body), "Device already exists") {
		t.Errorf("first POST: %d %s", r.Status, r.Body)
	}
	if n := len(s.Devices("acme.example", "1001")); n != 2 {
		t.Errorf("the failed POST created a device")
	}
	if r := mustCall(t, "POST", dev, s.APIKey(), map[string]any{"device": "1001z"}); r.Status != 202 {
		t.Errorf("second POST: %d (FailNext is one-shot)", r.Status)
	}
	r = mustCall(t, "GET", base+"/domains/acme.example/users/1001", s.APIKey(), nil)
	if r.Status != 429 || r.Header.Get("Retry-After") != "1" {
		t.Errorf("GET user: %d, Retry-After %q", r.Status, r.Header.Get("Retry-After"))
	}
}

func TestAfterDropAppliesTheWrite(t *testing.T) {
	s, base := start(t, nstest.Options{})
	s.SetFaults(nstest.Faults{RateAfterDrop: 1})
	_, err := call(t, context.Background(), "POST", base+"/domains/acme.example/users/1001/devices", s.APIKey(), map[string]any{"device": "1001z"})
	if err == nil {
		t.Fatal("the reply arrived, want a reset connection")
	}
	if n := len(s.Devices("acme.example", "1001")); n != 3 {
		t.Errorf("%d devices, want 3: the write must be applied", n)
	}
	// The server logs the call as its handler unwinds from the dropped connection, which can
	// be just after the client saw the reset: wait for it (bounded) rather than race it.
	c := s.Calls()
	for deadline := time.Now().Add(5 * time.Second); len(c) == 0 && time.Now().Before(deadline); c = s.Calls() {
		time.Sleep(5 * time.Millisecond)
	}
	if len(c) != 1 || !c[0].Applied || c[0].Status != 0 {
		t.Errorf("calls = %+v, want one applied call without an answer", c)
	}
	if r := mustCall(t, "GET", base+"/version", "", nil); r.Status != 200 {
		t.Errorf("a read lost its reply: %d", r.Status)
	}
}

func TestDown(t *testing.T) {
	s, base := start(t, nstest.Options{})
	s.SetDown(true)
	for range 3 {
		if _, err := call(t, context.Background(), "POST", base+"/domains/acme.example/users/1001/devices", s.APIKey(),
			map[string]any{"device": "1001z"}); err == nil {
			t.Fatal("a down PBX answered")
		}
	}
	if n := len(s.Devices("acme.example", "1001")); n != 2 {
		t.Errorf("a down PBX applied a write: %d devices", n)
	}
	s.SetDown(false)
	if r := mustCall(t, "GET", base+"/version", "", nil); r.Status != 200 {
		t.Errorf("back up: %d", r.Status)
	}
}

func TestExpireTokensAndRevokeAPIKey(t *testing.T) {
	s, base := start(t, nstest.Options{})
	user := base + "/domains/globex.example/users/2001"
	tok := mustCall(t, "POST", base+"/tokens", "", passwordGrant(nil)).obj(t)
	access, _ := tok["access_token"].(string)
	if r := mustCall(t, "GET", user, access, nil); r.Status != 200 {
		t.Fatalf("GET with a fresh token: %d", r.Status)
	}
	s.ExpireTokens()
	if r := mustCall(t, "GET", user, access, nil); r.Status != 401 || !strings.Contains(string(r.Body), "expired") {
		t.Errorf("GET with an expired token: %d %s", r.Status, r.Body)
	}
	r := mustCall(t, "POST", base+"/tokens", "", map[string]any{"grant_type": "refresh_token", "client_id": "demo-client",
		"client_secret": "demo-client-secret-NOT-REAL", "refresh_token": tok["refresh_token"]})
	if r.Status != 200 {
		t.Errorf("refresh after ExpireTokens: %d %s", r.Status, r.Body)
	}

	acme := base + "/domains/acme.example/users/1001"
	s.RevokeAPIKey(s.APIKey(), true)
	if r := mustCall(t, "GET", acme, s.APIKey(), nil); r.Status != 401 {
		t.Errorf("GET with a revoked key: %d", r.Status)
	}
	if c := s.Calls(); c[len(c)-1].Auth != "apikey" {
		t.Errorf("call log auth %q, want apikey", c[len(c)-1].Auth)
	}
	s.RevokeAPIKey(s.APIKey(), false)
	if r := mustCall(t, "GET", acme, s.APIKey(), nil); r.Status != 200 {
		t.Errorf("GET with the reinstated key: %d", r.Status)
	}
}
