package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// TestSentinelFailover (issue 11 item 2): `bot serve` on a Sentinel URL (three sentinels, a
// primary and one replica on loopback, REDIS_MIN_REPLICAS auto); the primary is SIGKILLed while
// a step's PBX write is held in the simulator, so the sentinels promote the replica mid-step. The
// write-ahead record (deny's original, recreate's device snapshot) was WAITed onto the replica
// before that write, so the promoted replica still knows it: the step finishes on the new primary,
// each PBX write ran once, and the incident restores to the original.
func TestSentinelFailover(t *testing.T) {
	t.Run("between the write-ahead and the PBX write", func(t *testing.T) {
		w, set := sentinelWorld(t)
		w.start()
		w.command(alice, incChan, target)
		ts, inc := w.card("1001", "acme.example")
		// The PUT of the deny policy waits 2 s in the simulator before it lands on the PBX.
		arrived := w.holdPBX(t, 2*time.Second, func(method, path string) bool {
			return method == "PUT" && path == "/domains/acme.example/users/1001"
		})
		w.click(alice, ts, "step:deny")
		<-arrived
		if o := w.incident(inc.ID).Original; o == nil || o.Policy != "US and Canada" {
			t.Fatalf("the PUT is in flight but the original is %+v", o)
		}
		set.failover(t)
		w.waitFor("deny finished on the new primary", func() bool {
			inc, err := w.store.Get(context.Background(), inc.ID)
			return err == nil && inc.Step(session.StepDeny).Status.Finished()
		})
		w.pbx.SetFaults(nstest.Faults{})
		if o := w.incident(inc.ID).Original; o == nil || o.Policy != "US and Canada" || !o.Known {
			t.Errorf("after the failover the original is %+v, want US and Canada (known)", o)
		}
		w.cardShows(ts, "deny done") // the card follows the failover too
		w.restoreApproved(ts)
		// Deny's PUT and restore's, once each.
		w.pbxWrites(t, map[string]int{"PUT /domains/acme.example/users/1001": 2})
	})

	t.Run("after the PBX write", func(t *testing.T) {
		w, set := sentinelWorld(t)
		w.start()
		ts, inc := w.openAndDeny("")
		// The first device is deleted; its re-create waits 2 s in the simulator.
		arrived := w.holdPBX(t, 2*time.Second, func(method, path string) bool {
			return method == "POST" && strings.HasSuffix(path, "/users/1001/devices")
		})
		w.click(alice, ts, "step:recreate")
		<-arrived
		if n := len(w.incident(inc.ID).Devices); n != 2 {
			t.Fatalf("a device is deleted but the snapshot holds %d devices, want 2", n)
		}
		set.failover(t)
		w.waitFor("recreate finished on the new primary", func() bool {
			inc, err := w.store.Get(context.Background(), inc.ID)
			return err == nil && inc.Step(session.StepRecreate).Status.Finished()
		})
		w.pbx.SetFaults(nstest.Faults{})
		w.cardShows(ts, "recreate done")
		w.recreatedOnce(t, inc.ID, "the failover")
	})
}

// sentinelSet is the Sentinel set-up of a test, with a client on its sentinels.
type sentinelSet struct {
	*testenv.Sentinel
	sc *redis.SentinelClient
}

// sentinelWorld is a world (demo tenant) whose Redis is a Sentinel set-up with one replica, once
// the replica is in sync and every sentinel knows the replica and the other sentinels.
func sentinelWorld(t *testing.T) (*world, *sentinelSet) {
	t.Helper()
	set := &sentinelSet{Sentinel: testenv.StartSentinel(t, 1)}
	set.sc = redis.NewSentinelClient(&redis.Options{Addr: set.Sentinels[0].Addr})
	t.Cleanup(func() { _ = set.sc.Close() })
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: set.Replicas[0].Addr})
	defer rc.Close()
	testenv.WaitFor(t, 15*time.Second, "the replica in sync and known to every sentinel", func() bool {
		info, err := rc.Info(ctx, "replication").Result()
		if err != nil || !strings.Contains(info, "master_link_status:up") {
			return false
		}
		for _, s := range set.Sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
			reps, err1 := c.Replicas(ctx, testenv.SentinelMaster).Result()
			others, err2 := c.Sentinels(ctx, testenv.SentinelMaster).Result()
			_ = c.Close()
			if err1 != nil || err2 != nil || len(reps) != 1 || len(others) != len(set.Sentinels)-1 {
				return false
			}
		}
		return true
	})
	w := newWorldOn(t, set.Redis(), nil)
	w.env["REDIS_URL"] = set.URL()
	w.env["REDIS_MIN_REPLICAS"] = "auto"
	return w, set
}

// failover SIGKILLs the primary and waits until the sentinels name the replica as the primary.
func (s *sentinelSet) failover(t *testing.T) {
	t.Helper()
	s.Primary.Kill()
	killed := time.Now()
	testenv.WaitFor(t, 30*time.Second, "the sentinels to promote the replica", func() bool {
		addr, err := s.sc.GetMasterAddrByName(context.Background(), testenv.SentinelMaster).Result()
		return err == nil && len(addr) == 2 && addr[0]+":"+addr[1] == s.Replicas[0].Addr
	})
	t.Logf("failover to %s %s after the SIGKILL", s.Replicas[0].Addr, time.Since(killed).Round(time.Millisecond))
}

// holdPBX delays the simulator's requests that match by d; the channel is closed when the first
// of them arrives (the bot has sent it: everything before it in the step is done).
func (w *world) holdPBX(t *testing.T, d time.Duration, match func(method, path string) bool) <-chan struct{} {
	t.Helper()
	arrived := make(chan struct{})
	var once bool
	w.pbx.SetFaults(nstest.Faults{Latency: d, Match: func(method, path string) bool {
		if !match(method, path) {
			return false
		}
		if !once { // Match runs under the simulator's fault lock: one request at a time
			once = true
			close(arrived)
		}
		return true
	}})
	return arrived
}

// pbxWrites fails the test unless each "METHOD path" ran on the PBX as often as want says (any body).
func (w *world) pbxWrites(t *testing.T, want map[string]int) {
	t.Helper()
	count := map[string]int{}
	for _, c := range w.pbx.Writes() {
		count[c.Method+" "+c.Path]++
	}
	for wr, n := range want {
		if count[wr] != n {
			t.Errorf("%s ran %d times on the PBX, want %d", wr, count[wr], n)
		}
	}
}

// recreatedOnce fails the test unless target's recreate, across what (a failover, a restart), kept
// its two-device snapshot and ran each PBX write once: devices 1001 and 1001a deleted and created
// once each, and on the PBX once each.
func (w *world) recreatedOnce(t *testing.T, id, what string) {
	t.Helper()
	if n := len(w.incident(id).Devices); n != 2 {
		t.Errorf("after %s the snapshot holds %d devices, want 2", what, n)
	}
	var devs []string
	for _, d := range w.pbx.Devices("acme.example", "1001") {
		devs = append(devs, d["device"].(string))
	}
	if strings.Join(devs, ",") != "1001,1001a" {
		t.Errorf("devices after %s: %v, want 1001 and 1001a once each", what, devs)
	}
	w.pbxWrites(t, map[string]int{"DELETE /domains/acme.example/users/1001/devices/1001": 1,
		"DELETE /domains/acme.example/users/1001/devices/1001a": 1, "POST /domains/acme.example/users/1001/devices": 2})
}
