package netsapiens_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
)

func TestV1BaseFor(t *testing.T) {
	for in, want := range map[string]string{
		"https://pbx.example.com/ns-api/v2":  "https://pbx.example.com/ns-api/",
		"https://pbx.example.com/ns-api/v2/": "https://pbx.example.com/ns-api/",
		"http://127.0.0.1:9/ns-api/V2":       "http://127.0.0.1:9/ns-api/",
		"https://pbx.example.com/api":        "https://pbx.example.com/api/",
	} {
		if got := netsapiens.V1BaseFor(in); got != want {
			t.Errorf("V1BaseFor(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestSetPortalPassword: the v1 update reaches the simulator form-encoded with the password,
// which is in no call log, tag or error.
func TestSetPortalPassword(t *testing.T) {
	srv, c, _ := startSim(t, nstest.Options{}, nil)
	const pw = "Portal-Pw-9x7Q2m"
	ctx := netsapiens.WithLogTag(context.Background(), "INC-TEST01")
	if err := c.SetPortalPassword(ctx, "acme.example", "1001", netsapiens.Secret(pw)); err != nil {
		t.Fatal(err)
	}
	if got, ok := srv.PortalPassword("acme.example", "1001"); !ok || got != pw {
		t.Fatalf("portal password on the PBX = %q, %v", got, ok)
	}
	err := c.SetPortalPassword(ctx, "acme.example", "9999", netsapiens.Secret(pw))
	if !errors.Is(err, netsapiens.ErrNotFound) || strings.Contains(err.Error(), pw) {
		t.Errorf("unknown user: %v", err)
	}
	if err := c.SetPortalPassword(ctx, "acme.example", "1001", ""); !errors.Is(err, netsapiens.ErrInvalid) {
		t.Errorf("empty password: %v", err)
	}
	v1 := 0
	for _, call := range srv.Calls() {
		if call.Path != nstest.V1Path {
			continue
		}
		v1++
		if call.LogTag != "" || !call.Secret || strings.Contains(string(call.Body)+call.Query.Encode(), pw) {
			t.Errorf("v1 call logged %+v", call)
		}
	}
	if v1 != 2 { // the update and the unknown user's; the empty password is refused before any call
		t.Errorf("%d v1 calls in the simulator's log, want 2", v1)
	}
	if v := srv.Violations(); len(v) != 0 {
		t.Errorf("violations: %v", v)
	}
}

// TestSetPortalPasswordEchoScrubbed: a PBX that echoes the form it got in its error text (the
// password form-encoded, as sent) leaks it into no error.
func TestSetPortalPasswordEchoScrubbed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		http.Error(w, "bad request: "+string(b), http.StatusBadRequest)
	}))
	t.Cleanup(srv.Close)
	c, err := netsapiens.New(netsapiens.Config{BaseURL: srv.URL + "/ns-api/v2", APIKey: "k", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	const pw = "p@ss word/9x7Q"
	err = c.SetPortalPassword(context.Background(), "acme.example", "1001", netsapiens.Secret(pw))
	if err == nil {
		t.Fatal("want the PBX's error")
	}
	for _, leak := range []string{pw, url.QueryEscape(pw), "9x7Q"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q leaks the password (%q)", err, leak)
		}
	}
}
