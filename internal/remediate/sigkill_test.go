package remediate_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// TestHelperProcess is the child of TestStepKilledWithSIGKILL: it runs one step against the
// parent's simulator and Redis and is killed in the middle. It does nothing in a normal run.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("REMEDIATE_HELPER") != "1" {
		t.Skip("helper process for TestStepKilledWithSIGKILL")
	}
	opt, err := session.ParseRedisURL(os.Getenv("REMEDIATE_REDIS"))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewUniversalClient(opt)
	st, err := session.New(session.Config{Client: rdb, AuditKey: testAuditKey, Prefix: os.Getenv("REMEDIATE_PREFIX")})
	if err != nil {
		t.Fatal(err)
	}
	pbx, err := netsapiens.New(netsapiens.Config{BaseURL: os.Getenv("REMEDIATE_SIM"),
		APIKey: netsapiens.Secret(os.Getenv("REMEDIATE_SIM_KEY")), Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := session.NewKeyring(testSnapshotKey, testAuditKey)
	if err != nil {
		t.Fatal(err)
	}
	e, err := remediate.New(pbx, st, remediate.Config{Owner: "child", LeaseTTL: time.Second, Logger: zerolog.Nop(), Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Run(context.Background(), os.Getenv("REMEDIATE_INCIDENT"), session.StepRecreate, "U1", remediate.RunOptions{})
	t.Fatalf("the helper should have been killed before the step ended (err %v)", err)
}

func TestStepKilledWithSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	v := newEnv(t)
	ctx := context.Background()
	parent := v.engine("parent", func(c *remediate.Config) { c.LeaseTTL = time.Second; c.Now = time.Now })
	before, oldPW := v.settings("1001", "acme.example"), v.passwords("1001", "acme.example")
	inc := v.openDenied(parent, "1001", "acme.example")
	// Hold the child inside its delete of the second device: it is killed while the request is
	// in flight.
	arrived := make(chan struct{}, 1)
	v.sim.SetFaults(nstest.Faults{Latency: time.Minute, Match: func(method, path string) bool {
		if method == "DELETE" && path == "/domains/acme.example/users/1001/devices/1001a" {
			select {
			case arrived <- struct{}{}:
			default:
			}
			return true
		}
		return false
	}})
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "REMEDIATE_HELPER=1", "REMEDIATE_REDIS="+v.redis.URL, "REMEDIATE_PREFIX="+v.redis.Prefix, "REMEDIATE_SIM="+v.simURL,
		"REMEDIATE_SIM_KEY="+v.sim.APIKey(), "REMEDIATE_INCIDENT="+inc.ID)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("the child never reached the second device")
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	v.sim.SetFaults(nstest.Faults{})

	got := v.get(inc.ID)
	if st := got.Step(session.StepRecreate); st.Status != session.StatusRunning || st.LeaseOwner != "child" {
		t.Fatalf("recreate after the kill = %s held by %q", st.Status, st.LeaseOwner)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		rs, err := parent.Reconcile(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 1 {
			if rs[0].Err != nil {
				t.Fatalf("resumed recreate: %v", rs[0].Err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child's lease never expired")
		}
		time.Sleep(100 * time.Millisecond) // waiting for the dead child's lease to run out
	}
	for _, s := range []session.Step{session.StepReset, session.StepRestore} {
		if _, err := parent.Run(ctx, inc.ID, s, "U1", remediate.RunOptions{}); err != nil {
			t.Fatalf("Run(%s): %v", s, err)
		}
	}
	checkFinal(t, v, inc.ID, before, oldPW)
}
