package remediate_test

import (
	"bytes"
	"context"
	"strings"
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

// env is one test's simulator, share of Redis, store and clock (real time plus an offset the
// test advances, to expire leases at once).
type env struct {
	t      *testing.T
	sim    *nstest.Server
	simURL string
	redis  *testenv.Redis
	store  *session.Store
	keys   *session.Keyring // the engines' keys; nil = none
	clock  *testenv.Clock
	logs   *testenv.SyncBuffer
	log    zerolog.Logger
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, testenv.NewRedis(t))
}

func newEnvOn(t *testing.T, r *testenv.Redis) *env {
	t.Helper()
	return newEnvSeed(t, r, nil)
}

// newEnvSeed is newEnvOn with a simulator seed (nil = the demo tenant).
func newEnvSeed(t *testing.T, r *testenv.Redis, seed *nstest.Seed) *env {
	t.Helper()
	sim, simURL := nstest.Start(t, nstest.Options{Seed: seed})
	v := &env{t: t, sim: sim, simURL: simURL, redis: r, clock: testenv.NewRealClock(), logs: &testenv.SyncBuffer{}}
	v.log = zerolog.New(v.logs).With().Timestamp().Logger()
	v.store = v.newStore(r.Client)
	keys, err := session.NewKeyring(testSnapshotKey, testAuditKey)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	v.keys = keys
	return v
}

func (v *env) newStore(rdb redis.UniversalClient) *session.Store {
	v.t.Helper()
	st, err := session.New(session.Config{Client: rdb, AuditKey: testAuditKey,
		Prefix: v.redis.Prefix, Logger: v.log, Now: v.clock.Now})
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
	if v.keys != nil {
		cfg.Keys = v.keys
	}
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

// openDenied opens an incident for user@domain and runs deny as U1: the start of most tests.
func (v *env) openDenied(e *remediate.Engine, user, domain string) session.Incident {
	v.t.Helper()
	inc := v.open(e, user, domain)
	if _, err := e.Run(context.Background(), inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); err != nil {
		v.t.Fatal(err)
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
