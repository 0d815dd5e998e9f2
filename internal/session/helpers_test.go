package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

func newClock() *testenv.Clock { return testenv.NewClock(time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)) }

var (
	testAuditKey    = []byte("0123456789abcdef0123456789abcdef-audit")
	testSnapshotKey = []byte("0123456789abcdef0123456789abcdef")
)

// newStore returns a store with both keys under a fresh key prefix of the shared test Redis.
func newStore(t *testing.T, mod ...func(*session.Config)) (*session.Store, *testenv.Redis, *testenv.Clock) {
	t.Helper()
	r := testenv.NewRedis(t)
	s, clk := storeOn(t, r.Client, append([]func(*session.Config){withPrefix(r)}, mod...)...)
	return s, r, clk
}

// withPrefix puts a store's keys under the test's prefix.
func withPrefix(r *testenv.Redis) func(*session.Config) {
	return func(c *session.Config) { c.Prefix = r.Prefix }
}

// storeOn returns a store on c with the default key prefix (a private server) or, by mod, another.
func storeOn(t *testing.T, c redis.UniversalClient, mod ...func(*session.Config)) (*session.Store, *testenv.Clock) {
	t.Helper()
	clk := newClock()
	cfg := session.Config{
		Client:   c,
		AuditKey: testAuditKey,
		Logger:   zerolog.New(zerolog.NewTestWriter(t)),
		Now:      clk.Now,
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

// keyring returns the Keyring of both test keys.
func keyring(t *testing.T) *session.Keyring {
	t.Helper()
	k, err := session.NewKeyring(testSnapshotKey, testAuditKey)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return k
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
func begin(t *testing.T, s *session.Store, id string, step session.Step) *session.Run {
	t.Helper()
	l, _, err := s.Begin(ctxT(t), id, step, session.BeginOptions{Actor: "U1", Owner: "w1", LeaseTTL: 30 * time.Second})
	if err != nil {
		t.Fatalf("Begin(%s): %v", step, err)
	}
	return l
}
