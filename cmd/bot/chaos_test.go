package main

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// TestChaos (issue 11 item 1; `make chaos` runs it with CHAOS_N=100): CHAOS_N incidents (default
// 10, the short version of `make test`) across the chaos tenant's users in five domains, driven
// through slackfake by four drivers (random steps, double clicks, redelivered envelopes), while
// the two `bot serve` replicas (real processes) are SIGKILLed and restarted, the Socket Mode link
// is dropped or refreshed, and redis-server is SIGKILLed and restarted from its AOF (appendfsync
// always). Then every incident is finished and the invariants (chaos_check_test.go) are checked
// against the simulator. The random choices come from CHAOS_SEED (printed; random when unset).
func TestChaos(t *testing.T) {
	n := envInt(t, "CHAOS_N", 10)
	seed := int64(envInt(t, "CHAOS_SEED", int(time.Now().UnixNano()%1_000_000)))
	bin := buildBot(t)
	rs := testenv.StartRedis(t)
	pbxSeed, users := chaosSeed()
	lockDomain, named := chaosLockUsers(pbxSeed, lockdownSize(n))
	rounds := lockdownRounds(n)
	w := newWorldOn(t, rs.Redis(), pbxSeed)
	w.env["AUDIT_KEY"] = testAuditKey
	w.env["LOG_LEVEL"] = "info"
	// A PBX round trip of 15 ms: a step takes long enough that a kill often lands in one.
	w.pbx.SetFaults(nstest.Faults{Latency: 15 * time.Millisecond})
	t.Logf("chaos: seed %d, %d incidents over %d users in %d domains; %d domain lockdown(s) of %d users and %d users lockdown(s) of %d (repeat: CHAOS_SEED=%d CHAOS_N=%d)",
		seed, n, len(users), chaosDomains, rounds, len(lockDomain), rounds, len(named), seed, n)

	procs := []*proc{w.startProcess(bin), w.startProcess(bin)}
	f := &chaosFigures{}
	rng := rand.New(rand.NewPCG(uint64(seed), 0))

	// The drivers: incident k is for users[k % len(users)]; driver j has the users i with
	// i % drivers == j, so no two drivers act on one user.
	const drivers = 4
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n)*20*time.Second+time.Duration(rounds)*3*time.Minute+time.Minute)
	var (
		mu  sync.Mutex
		ids []string
		wg  sync.WaitGroup
	)
	// A fault that fails the test (m.run) returns while the drivers run: stop and wait for them
	// before the test ends, so none logs after it.
	defer func() { cancel(); wg.Wait() }()
	seen := map[string]bool{}
	record := func(id string) {
		mu.Lock()
		defer mu.Unlock()
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for j := range drivers {
		d := &driver{w: w, rng: rand.New(rand.NewPCG(uint64(seed), uint64(j+1))), f: f, id: j, pAbort: 0.1}
		wg.Go(func() {
			for k := j; k < n; k += drivers {
				u := users[k%len(users)]
				inc, err := d.open(ctx, u)
				if inc.ID != "" {
					record(inc.ID)
				}
				if err != nil {
					t.Logf("driver %d: %v (left for the finish)", j, err)
					continue
				}
				if err := d.drive(ctx, inc.ID, d.rng.Float64() < d.pAbort); err != nil {
					t.Logf("driver %d: %v (left for the finish)", j, err)
				}
			}
		})
	}
	// The lockdowns (chaos_lockdown_test.go) run beside the incidents; a lockdown driver asks the
	// monkey to kill the replica running a fan-out (never waiting on it: the monkey may be busy).
	rec := &lockRecord{joiners: map[string]string{}}
	owners := make(chan string, 4)
	kill := func(owner string) {
		select {
		case owners <- owner:
		default:
		}
	}
	for s, run := range []func(*lockDriver) error{
		func(d *lockDriver) error { return d.runDomain(ctx, rounds) },
		func(d *lockDriver) error { return d.runUsers(ctx, rounds, named) },
	} {
		d := newLockDriver(w, seed, uint64(11+s), f, rec, kill)
		wg.Go(func() {
			if err := run(d); err != nil {
				t.Logf("lockdown driver %d: %v (left for the finish)", s, err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	start := time.Now()
	m := &monkey{t: t, w: w, bin: bin, rs: rs, procs: procs, rng: rng, f: f, owners: owners}
	m.run(done)
	t.Logf("chaos: drivers done after %s", time.Since(start).Round(time.Second))

	// Finish: every incident (and any open one the drivers lost track of) is restored, or aborted
	// when it cannot be.
	fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer fcancel()
	fin := &driver{w: w, rng: rand.New(rand.NewPCG(uint64(seed), 99)), f: f, id: 99}
	members, err := finishLockdowns(fctx, newLockDriver(w, seed, 98, f, rec, nil))
	if err != nil {
		t.Logf("finish lockdowns: %v", err)
	}
	for _, id := range members {
		record(id)
	}
	all := slices.Concat(users, lockDomain, named)
	for _, u := range all {
		if inc, err := w.store.FindOpen(fctx, u.user, u.domain); err == nil {
			record(inc.ID)
		}
	}
	for _, id := range ids {
		// A lockdown's own members have no card: their lockdown's finish is theirs.
		if inc, err := fin.get(fctx, id); err != nil || inc.State != session.StateOpen || inc.Lockdown != "" {
			continue
		}
		if err := fin.drive(fctx, id, false); err != nil {
			t.Logf("finish: %v; aborting it", err)
			_ = fin.drive(fctx, id, true)
		}
	}

	c := &chaosCheck{w: w, users: all}
	cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer ccancel()
	if err := c.load(cctx, ids); err != nil {
		t.Fatal(err)
	}
	c.stuck()
	c.cards()
	c.policies(cctx)
	c.devices(cctx)
	writes := c.writes(cctx, w.pbx.Calls())
	c.lockdowns(cctx, rec, lockDomain, named, w.pbx.Calls())
	verified := c.audit()
	t.Logf("chaos figures: seed %d · incidents %d opened (%d restored, %d aborted; %d commands sent again) · clicks %d (%d double, %d redelivered) · "+
		"lockdowns %d (%d members, %d clicks, %d replicas killed mid-run, %d checks of the unknown originals listed on the card) · "+
		"replica kills %d · Redis restarts %d · link drops %d · PBX writes checked %d (%d repeated on resume, allowed) · audit: %s · violations %d · %s",
		seed, len(ids), f.restored.Load(), f.aborts.Load(), f.resent.Load(), f.clicks.Load(), f.doubles.Load(), f.redelivered.Load(),
		len(rec.ids), f.members.Load(), f.lockClicks.Load(), f.midRunKills.Load(), rec.unknownOK,
		f.kills.Load(), f.redisRestarts.Load(), f.linkDrops.Load(), writes, c.repeats, verified, len(c.out), time.Since(start).Round(time.Second))
	for _, n := range c.notes {
		t.Logf("note: %s", n)
	}
	for _, v := range c.out {
		t.Errorf("violation: %s", v)
	}
	if len(ids) < n {
		t.Errorf("only %d of %d incidents were opened", len(ids), n)
	}
	// Without these the invariants above hold vacuously: no PBX write to count, or no fault met.
	if writes == 0 {
		t.Error("no PBX write of a chaos user was checked: the exactly-once check saw nothing")
	}
	if f.kills.Load()+f.redisRestarts.Load()+f.linkDrops.Load() == 0 {
		t.Error("the drivers finished before any fault was injected: nothing was tested under chaos")
	}
}

// monkey injects the faults, one at a time, each healed before the next: a replica SIGKILLed and
// started again, the Socket Mode link dropped (or refreshed by Slack), redis-server SIGKILLed and
// started again on its AOF. It runs in the test goroutine (it may fail the test).
type monkey struct {
	t     *testing.T
	w     *world
	bin   string
	rs    *testenv.TestServer
	procs []*proc
	rng   *rand.Rand
	f     *chaosFigures
	// owners: a lockdown run's owner (its replica ID) whose process to kill now.
	owners <-chan string
}

func (m *monkey) run(done <-chan struct{}) {
	// The first faults are one of each kind (two kills), in a random order, so that even a short
	// run sees them all; then kills are the most frequent.
	plan := []string{"kill", "kill", "link", "redis"}
	m.rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	for i := 0; ; i++ {
		select {
		case <-done:
			return
		case o := <-m.owners:
			m.killOwner(o)
			continue
		case <-time.After(time.Duration(300+m.rng.IntN(1700)) * time.Millisecond):
		}
		kind := ""
		switch r := m.rng.Float64(); {
		case i < len(plan):
			kind = plan[i]
		case r < 0.5:
			kind = "kill"
		case r < 0.8:
			kind = "link"
		default:
			kind = "redis"
		}
		switch kind {
		case "kill":
			m.kill(m.rng.IntN(len(m.procs)))
		case "link":
			m.dropLink()
		case "redis":
			m.restartRedis()
		}
	}
}

func (m *monkey) kill(i int) {
	p := m.procs[i]
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		m.t.Fatal(err)
	}
	<-p.done
	m.f.kills.Add(1)
	time.Sleep(time.Duration(m.rng.IntN(1500)) * time.Millisecond) // the replica stays down a moment
	m.procs[i] = m.w.startProcess(m.bin)
}

// killOwner SIGKILLs the replica whose ID (host-PID-random, see replicaID) is owner, if it runs.
func (m *monkey) killOwner(owner string) {
	parts := strings.Split(owner, "-")
	if len(parts) < 3 {
		return
	}
	pid, err := strconv.Atoi(parts[len(parts)-2])
	if err != nil {
		return
	}
	for i, p := range m.procs {
		if p.cmd.Process.Pid != pid {
			continue
		}
		select {
		case <-p.done:
		default:
			m.kill(i)
			m.f.midRunKills.Add(1)
		}
		return
	}
}

func (m *monkey) dropLink() {
	if m.rng.IntN(2) == 0 {
		m.w.slack.DropSockets()
	} else {
		m.w.slack.Disconnect("refresh_requested")
	}
	m.f.linkDrops.Add(1)
	testenv.WaitFor(m.t, 30*time.Second, "both replicas' links back", func() bool { return m.w.slack.LiveSockets() == socketsPerBot*len(m.procs) })
}

func (m *monkey) restartRedis() {
	m.rs.Kill()
	m.f.redisRestarts.Add(1)
	time.Sleep(time.Duration(200+m.rng.IntN(1500)) * time.Millisecond) // Redis stays down a moment
	m.rs.Start()
}

// envInt reads a whole number from the environment (def when unset).
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a whole number", name, v)
	}
	return n
}
