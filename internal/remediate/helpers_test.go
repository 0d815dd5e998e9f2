package remediate_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

var (
	_ remediate.PBX   = (*netsapiens.Client)(nil)
	_ remediate.Store = (*session.Store)(nil)
)

// Test keys (not secrets: fixed test values).
var (
	testAuditKey    = bytes.Repeat([]byte("a"), 32)
	testSnapshotKey = bytes.Repeat([]byte("s"), 32)
)

// clock is real time plus an offset the test advances (to expire leases at once).
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// syncBuf collects log output from many goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one test's simulator, Redis database, store and clock.
type env struct {
	t        *testing.T
	sim      *nstest.Server
	simURL   string
	rdb      *redis.Client
	redisURL string
	store    *session.Store
	clock    *clock
	logs     *syncBuf
	log      zerolog.Logger
}

func newEnv(t *testing.T) *env {
	t.Helper()
	rdb, url := testenv.Redis(t)
	return newEnvOn(t, rdb, url)
}

func newEnvOn(t *testing.T, rdb *redis.Client, redisURL string) *env {
	t.Helper()
	return newEnvSeed(t, rdb, redisURL, nil)
}

// newEnvSeed is newEnvOn with a simulator seed (nil = the demo tenant).
func newEnvSeed(t *testing.T, rdb *redis.Client, redisURL string, seed *nstest.Seed) *env {
	t.Helper()
	sim, simURL := nstest.Start(t, nstest.Options{Seed: seed})
	v := &env{t: t, sim: sim, simURL: simURL, rdb: rdb, redisURL: redisURL, clock: &clock{}, logs: &syncBuf{}}
	v.log = zerolog.New(v.logs).With().Timestamp().Logger()
	v.store = v.newStore(rdb)
	return v
}

func (v *env) newStore(rdb redis.UniversalClient) *session.Store {
	v.t.Helper()
	st, err := session.New(session.Config{Client: rdb, AuditKey: testAuditKey, SnapshotKey: testSnapshotKey,
		Logger: v.log, Now: v.clock.Now})
	if err != nil {
		v.t.Fatalf("session.New: %v", err)
	}
	return st
}

func (v *env) client() *netsapiens.Client {
	v.t.Helper()
	c, err := netsapiens.New(netsapiens.Config{BaseURL: v.simURL, APIKey: netsapiens.Secret(v.sim.APIKey()),
		MaxRetries: 2, RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond, Logger: v.log})
	if err != nil {
		v.t.Fatalf("netsapiens.New: %v", err)
	}
	return c
}

// engine returns an Engine named owner over the env's PBX and store.
func (v *env) engine(owner string, mod func(*remediate.Config)) *remediate.Engine {
	v.t.Helper()
	return v.engineOn(owner, v.store, mod)
}

func (v *env) engineOn(owner string, st remediate.Store, mod func(*remediate.Config)) *remediate.Engine {
	v.t.Helper()
	cfg := remediate.Config{Owner: owner, Logger: v.log.With().Str("owner", owner).Logger(), Now: v.clock.Now,
		ResetEmailTemplate: "password_reset.php"}
	if mod != nil {
		mod(&cfg)
	}
	e, err := remediate.New(v.client(), st, cfg)
	if err != nil {
		v.t.Fatalf("remediate.New: %v", err)
	}
	return e
}

func (v *env) open(e *remediate.Engine, user, domain string) session.Incident {
	v.t.Helper()
	inc, created, err := e.Open(context.Background(), remediate.OpenRequest{User: user, Domain: domain,
		Reason: "intl calls", Actor: "U1", Channel: "C1"})
	if err != nil || !created {
		v.t.Fatalf("Open(%s@%s) = created %v, %v", user, domain, created, err)
	}
	return inc
}

func (v *env) get(id string) session.Incident {
	v.t.Helper()
	inc, err := v.store.Get(context.Background(), id)
	if err != nil {
		v.t.Fatalf("Get(%s): %v", id, err)
	}
	return inc
}

func (v *env) userField(user, domain, field string) any {
	v.t.Helper()
	u, ok := v.sim.User(domain, user)
	if !ok {
		v.t.Fatalf("simulator has no user %s@%s", user, domain)
	}
	return u[field]
}

// settings returns the writable, non-secret fields of the user's devices as the simulator
// shows them, keyed by device id, keeping only the keys of keep (nil = all writable keys).
func (v *env) settings(user, domain string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, d := range v.sim.Devices(domain, user) {
		m := map[string]any{}
		for _, k := range netsapiens.WritableDeviceFields {
			if strings.Contains(k, "password") || strings.Contains(k, "username") {
				continue
			}
			if val, ok := d[k]; ok {
				m[k] = val
			}
		}
		out[d["device"].(string)] = m
	}
	return out
}

func (v *env) passwords(user, domain string) map[string]string {
	out := map[string]string{}
	for _, d := range v.sim.Devices(domain, user) {
		out[d["device"].(string)], _ = d["device-sip-registration-password"].(string)
	}
	return out
}

// writes returns the simulator's accepted writes as "METHOD path".
func (v *env) writes() []string {
	var out []string
	for _, c := range v.sim.Writes() {
		out = append(out, c.Method+" "+c.Path)
	}
	return out
}

// redisClient connects to url (a private server) and closes the client at the end.
func redisClient(t *testing.T, url string) (*redis.Client, string) {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c, url
}
