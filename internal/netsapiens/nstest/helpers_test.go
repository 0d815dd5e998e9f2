package nstest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
)

// Keys of the demo seed (demo values, not credentials).
const (
	resellerKey = "nsr_demoDEMOdemoDEMOdemoDEMOdemoDEMOdemoDEMOdemoDEMO0000demo"
	acmeOnlyKey = "nsd_acmeONLYacmeONLYacmeONLYacmeONLYacmeONLYacmeONLY0000demo"
)

type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r reply) obj(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("reply %d is not a JSON object: %v: %s", r.Status, err, r.Body)
	}
	return m
}

func (r reply) list(t testing.TB) []map[string]any {
	t.Helper()
	var l []map[string]any
	if err := json.Unmarshal(r.Body, &l); err != nil {
		t.Fatalf("reply %d is not a JSON array: %v: %s", r.Status, err, r.Body)
	}
	return l
}

// call sends one request; body is JSON-encoded unless it is a string (sent as is).
func call(t testing.TB, ctx context.Context, method, url, token string, body any, headers ...string) (reply, error) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: raw}, nil
}

// mustCall is call with a 10 s deadline that fails the test on a transport error.
func mustCall(t testing.TB, method, url, token string, body any, headers ...string) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := call(t, ctx, method, url, token, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// start runs a simulator on the demo seed; violations fail the test at cleanup.
func start(t *testing.T, opts nstest.Options) (*nstest.Server, string) {
	t.Helper()
	return nstest.Start(t, opts)
}

// expectViolations checks that the server recorded at least one violation whose problem
// contains want, then forgets them all so Start's cleanup does not fail the test.
func expectViolations(t *testing.T, s *nstest.Server, want string) {
	t.Helper()
	vs := s.Violations()
	s.ResetViolations()
	for _, v := range vs {
		if strings.Contains(v.Problem, want) {
			return
		}
	}
	t.Errorf("no violation mentions %q; got %+v", want, vs)
}
