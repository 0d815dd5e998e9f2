package netsapiens_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/rs/zerolog"
)

// fakePBX is a scripted httptest server: handle answers every request; it records what came in.
type fakePBX struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []seenRequest
	handle func(w http.ResponseWriter, r *http.Request, body string)
}

type seenRequest struct {
	Method, Path, RawPath, Query, Body, Auth, LogTag string
}

func newFakePBX(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, body string)) *fakePBX {
	t.Helper()
	f := &fakePBX{t: t, handle: handle}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p := strings.TrimPrefix(r.URL.Path, "/ns-api/v2")
		f.mu.Lock()
		f.reqs = append(f.reqs, seenRequest{Method: r.Method, Path: p, RawPath: strings.TrimPrefix(r.URL.EscapedPath(), "/ns-api/v2"),
			Query: r.URL.RawQuery, Body: string(b), Auth: r.Header.Get("Authorization"), LogTag: r.Header.Get("X-NetSapiens-Log")})
		f.mu.Unlock()
		f.handle(w, r, string(b))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePBX) URL() string { return f.srv.URL + "/ns-api/v2" }

func (f *fakePBX) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.reqs...)
}

// count returns how many requests had this method and path.
func (f *fakePBX) count(method, path string) int {
	n := 0
	for _, r := range f.requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

// sleepRecorder replaces the backoff wait: it records the durations and returns at once.
type sleepRecorder struct {
	mu     sync.Mutex
	sleeps []time.Duration
}

func (s *sleepRecorder) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.sleeps = append(s.sleeps, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.sleeps...)
}

// newClient builds an API-key client for base with fast, recorded backoff.
func newClient(t *testing.T, base string, mod func(*netsapiens.Config)) (*netsapiens.Client, *sleepRecorder) {
	t.Helper()
	rec := &sleepRecorder{}
	cfg := netsapiens.Config{
		BaseURL: base,
		APIKey:  "nsr_testKEYtestKEY",
		Logger:  zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
		Sleep:   rec.Sleep,
		Timeout: 5 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := netsapiens.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, rec
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// dropConnection closes the connection without an answer (a lost reply).
func dropConnection(t *testing.T, w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		t.Error("response writer cannot hijack")
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	_ = conn.Close()
}
