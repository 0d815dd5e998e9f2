package session_test

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// TestSurvivesSIGKILL: with appendonly yes and appendfsync always, everything the store acknowledged
// before Redis is SIGKILLed is there after the restart.
func TestSurvivesSIGKILL(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := ctxT(t)
	client := func() *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	s, _ := storeOn(t, client())
	if warns, err := s.CheckDurability(ctx); err != nil || len(warns) != 0 {
		t.Fatalf("CheckDurability on an appendfsync always server = %q, %v", warns, err)
	}
	inc := open(t, s, "1001")
	l := begin(t, s, inc.ID, session.StepDeny)
	if _, err := l.SaveOriginal(ctx, session.Original{Policy: "International", Known: true}, "Deny All", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Progress(ctx, "dial-policy", "set"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"incident.opened", "step.deny.running", "original.recorded"} {
		if _, err := s.Append(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: "U1", Action: a}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := s.Get(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	auditBefore, _ := s.Audit(ctx, inc.ID)

	srv.Kill() // mid-incident: deny is running
	srv.Start()

	s2, _ := storeOn(t, client())
	after, err := s2.Get(ctx, inc.ID)
	if err != nil {
		t.Fatalf("Get after SIGKILL: %v", err)
	}
	if diff := cmp.Diff(after, before); diff != "" {
		t.Errorf("incident after SIGKILL (-got +want):\n%s", diff)
	}
	auditAfter, err := s2.Audit(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(auditAfter, auditBefore); diff != "" {
		t.Errorf("audit after SIGKILL (-got +want):\n%s", diff)
	}
	for _, id := range []string{inc.ID, ""} {
		if err := s2.Verify(ctx, id); err != nil {
			t.Errorf("Verify(%q) after SIGKILL: %v", id, err)
		}
	}
	if o, ok, err := s2.UserOriginal(ctx, "1001", "acme.example"); err != nil || !ok || o.Policy != "International" {
		t.Errorf("user original after SIGKILL = %+v, %v, %v", o, ok, err)
	}
	if list, err := s2.ListOpen(ctx); err != nil || len(list) != 1 {
		t.Errorf("ListOpen after SIGKILL = %d, %v", len(list), err)
	}
	// The lease survived too: nobody else can start deny, and the runner can finish.
	if _, _, err := s2.Begin(ctx, inc.ID, session.StepDeny, session.BeginOptions{Actor: "U2", LeaseTTL: time.Minute}); !errors.Is(err, session.ErrAlreadyRunning) {
		t.Error("Begin after restart started a running step again")
	}
	if _, err := l.Finish(ctx, session.StatusDone, "verified", nil, nil); err != nil {
		t.Errorf("Finish with the pre-crash lease: %v", err)
	}
}

func TestCheckDurabilityWarns(t *testing.T) {
	srv := testenv.StartRedis(t, "--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "allkeys-lru")
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	s, _ := storeOn(t, c)
	warns, err := s.CheckDurability(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 2 || !strings.Contains(warns[0], "appendfsync") || !strings.Contains(warns[1], "maxmemory-policy") {
		t.Errorf("warnings = %q, want appendfsync and maxmemory-policy", warns)
	}

	off := testenv.StartRedis(t, "--appendonly", "no", "--rename-command", "CONFIG", "")
	c2 := redis.NewClient(&redis.Options{Addr: off.Addr})
	t.Cleanup(func() { _ = c2.Close() })
	s2, _ := storeOn(t, c2)
	warns, err = s2.CheckDurability(ctxT(t))
	if err != nil || len(warns) != 1 || !strings.Contains(warns[0], "could not check") {
		t.Errorf("without CONFIG: %q, %v; want one 'could not check' warning", warns, err)
	}
}

// startCluster starts a 3-master Redis Cluster on loopback (testenv.StartCluster) and returns a
// client for it.
func startCluster(t *testing.T) redis.UniversalClient {
	t.Helper()
	c := testenv.StartCluster(t)
	u, err := session.NewClient(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close() })
	if _, ok := u.(*redis.ClusterClient); !ok {
		t.Fatalf("NewClient gave %T, want a cluster client", u)
	}
	return u
}

// TestCluster runs the main store operations on a 3-node Redis Cluster: every multi-key script must
// stay inside one hash slot.
func TestCluster(t *testing.T) {
	u := startCluster(t)
	s, _ := storeOn(t, u)
	ctx := ctxT(t)
	if warns, err := s.CheckDurability(ctx); err != nil || len(warns) != 0 {
		t.Errorf("CheckDurability on the cluster = %q, %v", warns, err)
	}
	var incs []session.Incident
	for _, user := range []string{"1001", "1002", "1003", "2001", "3001"} {
		incs = append(incs, open(t, s, user))
	}
	if _, created, err := s.Open(ctx, session.Incident{User: "1001", Domain: "acme.example"}); err != nil || created {
		t.Errorf("second Open on the cluster = %v, %v", created, err)
	}
	for _, inc := range incs {
		var wins atomic.Int32
		var lease *session.Run
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				l, _, err := s.Begin(ctx, inc.ID, session.StepDeny, session.BeginOptions{Actor: "U1", Owner: "w", LeaseTTL: time.Minute})
				if err == nil {
					wins.Add(1)
					lease = l
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%s: %d Begins won", inc.ID, wins.Load())
		}
		if _, err := lease.SaveOriginal(ctx, session.Original{Policy: "US", Known: true}, "Deny All", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: "U1", Action: "step.deny.done"}); err != nil {
			t.Fatal(err)
		}
		if _, err := lease.Finish(ctx, session.StatusDone, "", nil, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(ctx, inc.ID); err != nil {
			t.Error(err)
		}
	}
	if list, err := s.ListOpen(ctx); err != nil || len(list) != len(incs) {
		t.Errorf("ListOpen = %d, %v", len(list), err)
	}
	if _, err := s.Close(ctx, incs[0].ID, session.StateRestored, "U1", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Close(ctx, incs[1].ID, session.StateAborted, "U1", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.UserOriginal(ctx, "1002", "acme.example"); !ok {
		t.Error("original lost after abort on the cluster")
	}
	if err := u.SRem(ctx, "cr:open", incs[2].ID).Err(); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Repair(ctx)
	if err != nil || rep.Indexed != 1 {
		t.Errorf("Repair on the cluster = %+v, %v", rep, err)
	}
	if err := s.Verify(ctx, ""); err != nil {
		t.Error(err)
	}
	g, _ := s.GlobalAudit(ctx, 0, 0)
	if len(g) != len(incs) {
		t.Errorf("global audit has %d entries, want %d", len(g), len(incs))
	}
}
