package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// TestClusterRestart (issue 11 item 3): `bot serve` on a private three-primary Redis Cluster; in
// the middle of recreate (a device deleted, its re-create held in the simulator) all three nodes
// are SIGKILLed and started again from their AOF (appendfsync always) and nodes.conf. The step
// resumes from its recorded progress once the cluster is ok again; each device is deleted and
// created once; the incident restores to its original; every audit chain verifies; and no
// operation of the bot met CROSSSLOT or a script's non-local key (a multi-key operation whose
// keys are on two hash slots fails on a Cluster with one of those errors, so the step would not
// have finished either).
//
// It runs under `make test-cluster` (scripts/cluster.sh), which is where the suite checks the
// Cluster's rules; it starts a cluster of its own, because killing the shared one would break the
// other packages' tests running at the same time.
func TestClusterRestart(t *testing.T) {
	if !strings.Contains(os.Getenv("TEST_REDIS_URL"), "addr=") {
		t.Skip("runs under make test-cluster (TEST_REDIS_URL names a Redis Cluster); it starts a private cluster")
	}
	cl := testenv.StartCluster(t)
	w := newWorldOn(t, cl.Redis(), nil)
	w.env["AUDIT_KEY"] = testAuditKey
	// The rule the last check relies on: one command on keys of two slots fails with CROSSSLOT.
	if err := w.redis.Client.MGet(context.Background(), w.redis.Prefix+":{a}", w.redis.Prefix+":{b}").Err(); err == nil ||
		!strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("MGET of two slots on the cluster: %v, want CROSSSLOT", err)
	}
	w.start()
	ts, inc := w.openAndDeny("")

	w.slowDeviceCreates(1500 * time.Millisecond)
	w.click(alice, ts, "step:recreate")
	w.waitFor("a device deleted", func() bool {
		return w.step(inc.ID, session.StepRecreate).Progress["device/1001"] != ""
	})
	cl.Kill()
	killed := time.Now()
	w.pbx.SetFaults(nstest.Faults{})
	cl.Start()
	t.Logf("cluster ok again %s after the SIGKILL of all three nodes", time.Since(killed).Round(time.Millisecond))
	w.waitFor("recreate resumed and finished", func() bool {
		inc, err := w.store.Get(context.Background(), inc.ID)
		return err == nil && inc.Step(session.StepRecreate).Status.Finished()
	})
	t.Logf("recreate finished %s after the SIGKILL", time.Since(killed).Round(time.Millisecond))
	w.recreatedOnce(t, inc.ID, "the restart")
	w.cardShows(ts, "recreate done")
	w.restoreApproved(ts)
	w.pbxWrites(t, map[string]int{"PUT /domains/acme.example/users/1001": 2})
	w.cli(w.cliEnv(), "audit", "--verify-all").want(t, exitOK, "audit --verify-all after the restart")

	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.logs {
		for _, bad := range []string{"CROSSSLOT", "non local key"} {
			if i := strings.Index(l.String(), bad); i >= 0 {
				t.Errorf("the bot met %s: …%s…", bad, l.String()[max(0, i-200):min(len(l.String()), i+200)])
			}
		}
	}
}
