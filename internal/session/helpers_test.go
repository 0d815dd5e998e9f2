package session_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var (
	testAuditKey    = []byte("0123456789abcdef0123456789abcdef-audit")
	testSnapshotKey = []byte("0123456789abcdef0123456789abcdef")
)

// newStore returns a store with both keys on a fresh logical database of the shared test Redis.
func newStore(t *testing.T, mod ...func(*session.Config)) (*session.Store, *redis.Client, *clock) {
	t.Helper()
	c, _ := testenv.Redis(t)
	s, clk := storeOn(t, c, mod...)
	return s, c, clk
}

func storeOn(t *testing.T, c redis.UniversalClient, mod ...func(*session.Config)) (*session.Store, *clock) {
	t.Helper()
	clk := newClock()
	cfg := session.Config{
		Client:      c,
		AuditKey:    testAuditKey,
		SnapshotKey: testSnapshotKey,
		Logger:      zerolog.New(zerolog.NewTestWriter(t)),
		Now:         clk.Now,
	}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := session.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, clk
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// open opens an incident for user@acme.example and fails the test on error.
func open(t *testing.T, s *session.Store, user string) session.Incident {
	t.Helper()
	inc, created, err := s.Open(ctxT(t), session.Incident{User: user, Domain: "Acme.Example", OpenedBy: "U1", Reason: "toll fraud"})
	if err != nil || !created {
		t.Fatalf("Open(%s) = created %v, %v", user, created, err)
	}
	return inc
}

// begin starts a step with a 30 s lease and fails the test on error.
func begin(t *testing.T, s *session.Store, id string, step session.Step) session.Lease {
	t.Helper()
	l, _, err := s.Begin(ctxT(t), id, step, session.BeginOptions{Actor: "U1", Owner: "w1", LeaseTTL: 30 * time.Second})
	if err != nil {
		t.Fatalf("Begin(%s): %v", step, err)
	}
	return l
}

func newStoreClient(t *testing.T) (*redis.Client, string) {
	t.Helper()
	return testenv.Redis(t)
}
