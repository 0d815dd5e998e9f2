package lockdown_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/lockdown"
	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

var (
	_ lockdown.PBX       = (*netsapiens.Client)(nil)
	_ lockdown.Incidents = (*remediate.Engine)(nil)
	_ lockdown.Store     = (*session.Store)(nil)
)

const bulk = "bulk.example"

// rig is a simulator with the demo tenant plus bulk.example (n users, the first `denied` of
// them already in Deny All), a store on the test Redis and a runbook engine over both.
type rig struct {
	t     *testing.T
	sim   *nstest.Server
	store *session.Store
	pbx   *netsapiens.Client
	inc   *remediate.Engine
	users []string
	log   zerolog.Logger
}

func newRig(t *testing.T, n, denied int) *rig {
	t.Helper()
	seed := nstest.DemoSeed()
	users := seed.AddDomain(bulk, n, 3000, "US and Canada")
	for i := range denied {
		seed.Users[len(seed.Users)-n+i]["dial-policy"] = "Deny All"
	}
	sim, base := nstest.Start(t, nstest.Options{Seed: seed})
	r := testenv.NewRedis(t)
	log := zerolog.Nop()
	store, err := session.New(session.Config{Client: r.Client, Prefix: r.Prefix, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	pbx, err := netsapiens.New(netsapiens.Config{BaseURL: base, APIKey: netsapiens.Secret(sim.APIKey()), MaxInflight: 8,
		MaxRetries: 2, RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	inc, err := remediate.New(pbx, store, remediate.Config{Owner: "A", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, sim: sim, store: store, pbx: pbx, inc: inc, users: users, log: log}
}

// engine is a lockdown engine named owner; the secrets it hands out are counted in got.
func (r *rig) engine(owner string, got *secrets) *lockdown.Engine {
	r.t.Helper()
	e, err := lockdown.New(r.pbx, r.inc, r.store, lockdown.Config{Owner: owner, Logger: r.log, LeaseTTL: 3 * time.Second})
	if err != nil {
		r.t.Fatal(err)
	}
	if got != nil {
		e.SetDeliver(got.add)
	}
	r.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		e.Shutdown(ctx)
	})
	return e
}

type secrets struct {
	mu sync.Mutex
	n  map[string]int // recipient → secrets
}

func (s *secrets) add(_ context.Context, _ session.Incident, to string, _ session.Step, got []remediate.Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[string]int{}
	}
	s.n[to] += len(got)
}

// writes counts the simulator's PBX writes.
func (r *rig) writes() int {
	n := 0
	for _, c := range r.sim.Calls() {
		if c.Method != "GET" {
			n++
		}
	}
	return n
}

// waitRun waits until the lockdown's run seq has finished and returns the lockdown.
func (r *rig) waitRun(e *lockdown.Engine, id string, seq int) session.Lockdown {
	r.t.Helper()
	var l session.Lockdown
	testenv.WaitFor(r.t, 60*time.Second, fmt.Sprintf("run %d of %s", seq, id), func() bool {
		var err error
		l, err = e.Get(context.Background(), id)
		return err == nil && len(l.Runs) >= seq && l.Runs[seq-1].Done()
	})
	return l
}

func (r *rig) policy(key string) string {
	r.t.Helper()
	u, err := r.pbx.GetUser(context.Background(), bulk, key[:len(key)-len("@"+bulk)])
	if err != nil {
		r.t.Fatal(err)
	}
	return u.DialPolicy
}

func TestLockdownDomainDenyRestore(t *testing.T) {
	const n, denied = 60, 2
	r := newRig(t, n, denied)
	ctx := context.Background()
	got := &secrets{}
	e := r.engine("A", got)

	p, err := e.Plan(ctx, lockdown.Target{Scope: session.ScopeDomain, Domain: "BULK.example"})
	if err != nil {
		t.Fatal(err)
	}
	if members, devices, already, joining := p.Totals(); members != n || devices != n || already != denied || joining != 0 {
		t.Errorf("plan totals = %d members, %d devices, %d denied, %d joining", members, devices, already, joining)
	}
	if w := r.writes(); w != 0 {
		t.Fatalf("the plan made %d PBX writes", w)
	}

	l, err := e.Open(ctx, lockdown.OpenRequest{Target: lockdown.Target{Scope: session.ScopeDomain, Domain: bulk},
		Reason: "fraud wave", Actor: "U1", Channel: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Members) != n {
		t.Fatalf("%d members, want %d", len(l.Members), n)
	}
	ids := map[string]bool{}
	for _, m := range l.Members {
		if m.IncidentID == "" || ids[m.IncidentID] || m.Joined {
			t.Fatalf("member %+v: want an incident of its own", m)
		}
		ids[m.IncidentID] = true
	}
	if _, err := e.Start(ctx, l.ID, lockdown.Ask{Kind: lockdown.KindStep, Step: session.StepDeny, Actor: "U1"}); err != nil {
		t.Fatal(err)
	}
	l = r.waitRun(e, l.ID, 1)
	if c := l.Runs[0].Counts; c[lockdown.OutDone] != n {
		t.Errorf("deny counts = %v, want %d done", c, n)
	}
	for _, u := range r.users {
		if pol := r.policy(u); pol != "Deny All" {
			t.Errorf("%s in %q after deny", u, pol)
		}
	}
	sum, err := e.Summary(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Contained != n || len(sum.Unknown) != denied || len(sum.Failures) != 0 || sum.Devices != n {
		t.Errorf("summary after deny: %d contained, unknown %v, failures %v, %d devices", sum.Contained, sum.Unknown, sum.Failures, sum.Devices)
	}
	if _, err := e.Start(ctx, l.ID, lockdown.Ask{Kind: lockdown.KindStep, Step: session.StepDeny, Actor: "U1"}); err != nil {
		t.Fatal(err)
	}
	l = r.waitRun(e, l.ID, 2)
	if c := l.Runs[1].Counts; c[lockdown.OutSkipped] != n {
		t.Errorf("a second deny: counts %v, want every member skipped (exactly once)", c)
	}

	if _, err := e.Start(ctx, l.ID, lockdown.Ask{Kind: lockdown.KindStep, Step: session.StepRestore, Actor: "U1"}); err != nil {
		t.Fatal(err)
	}
	l = r.waitRun(e, l.ID, 3)
	if c := l.Runs[2].Counts; c[lockdown.OutDone] != n-denied || c[lockdown.OutUnknown] != denied {
		t.Errorf("restore counts = %v, want %d done and %d original unknown", c, n-denied, denied)
	}
	for i, u := range r.users {
		want := "US and Canada"
		if i < denied {
			want = "Deny All" // no original known: it stays denied
		}
		if pol := r.policy(u); pol != want {
			t.Errorf("%s in %q after restore, want %q", u, pol, want)
		}
	}
	if !l.Open() {
		t.Errorf("lockdown closed with %d members still denied", denied)
	}
	if _, err := e.Start(ctx, l.ID, lockdown.Ask{Kind: lockdown.KindAbort, Actor: "U1"}); err != nil {
		t.Fatal(err)
	}
	l = r.waitRun(e, l.ID, 4)
	if l.Open() || l.State != session.StateAborted {
		sum, _ := e.Summary(ctx, l)
		t.Errorf("after abort: state %s, counts %v, summary %+v", l.State, l.Runs[3].Counts, sum)
	}
	if _, err := e.Start(ctx, l.ID, lockdown.Ask{Kind: lockdown.KindStep, Step: session.StepDeny, Actor: "U1"}); !errors.Is(err, lockdown.ErrClosed) {
		t.Errorf("deny on a closed lockdown: %v", err)
	}
}

func TestLockdownUsersJoinAndRecreate(t *testing.T) {
	r := newRig(t, 5, 0)
	ctx := context.Background()
	got := &secrets{}
	e := r.engine("A", got)
	existing, _, err := r.inc.Open(ctx, remediate.OpenRequest{User: "3001", Domain: bulk, Actor: "U2", Channel: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.Open(ctx, lockdown.OpenRequest{Target: lockdown.Target{Scope: session.ScopeUsers,
		Users: []string{"3000@" + bulk, "3001@" + bulk, "1001@acme.example"}}, Actor: "U1", Channel: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	if m := l.Members[1]; m.IncidentID != existing.ID || !m.Joined {
		t.Errorf("3001 joined as %+v, want its open incident %s", m, existing.ID)
	}
	for _, step := range []session.Step{session.StepDeny, session.StepRecreate} {
		if _, err := e.Start(ctx, l.ID, lockdown.Ask{Kind: lockdown.KindStep, Step: step, Actor: "U1"}); err != nil {
			t.Fatal(err)
		}
		l = r.waitRun(e, l.ID, len(l.Runs)+1)
		if c := l.LastRun().Counts; c[lockdown.OutDone] != 3 {
			t.Errorf("%s counts = %v", step, c)
		}
	}
	// 3000a, 3001a, and 1001's softphone 1001a (its desk phone is MAC-provisioned: no password).
	if got.n["U1"] != 3 {
		t.Errorf("secrets delivered: %v, want 3 for U1", got.n)
	}
}

func TestLockdownBadInput(t *testing.T) {
	r := newRig(t, 3, 0)
	ctx := context.Background()
	e := r.engine("A", nil)
	for name, tc := range map[string]struct {
		t    lockdown.Target
		want error
	}{
		"unknown domain": {lockdown.Target{Scope: session.ScopeDomain, Domain: "nope.example"}, lockdown.ErrUnknownDomain},
		"unknown user":   {lockdown.Target{Scope: session.ScopeUsers, Users: []string{"3000@" + bulk, "9999@" + bulk}}, lockdown.ErrUnknownUsers},
		"501 users":      {lockdown.Target{Scope: session.ScopeUsers, Users: make([]string, 501)}, lockdown.ErrTooMany},
	} {
		if _, err := e.Open(ctx, lockdown.OpenRequest{Target: tc.t, Actor: "U1", Channel: "C1"}); !errors.Is(err, tc.want) {
			t.Errorf("%s: Open = %v, want %v", name, err, tc.want)
		}
		if _, err := e.Plan(ctx, tc.t); !errors.Is(err, tc.want) {
			t.Errorf("%s: Plan = %v, want %v", name, err, tc.want)
		}
	}
	if w := r.writes(); w != 0 {
		t.Errorf("bad input made %d PBX writes", w)
	}
	open, err := r.store.ListOpen(ctx)
	if err != nil || len(open) != 0 {
		t.Errorf("bad input opened %d incidents (%v)", len(open), err)
	}
}

// TestLockdownResume: a replica died while its deny fan-out ran (its run's lease expired with
// members not denied); another replica's Reconcile takes the run over and finishes it.
func TestLockdownResume(t *testing.T) {
	const n = 20
	r := newRig(t, n, 0)
	ctx := context.Background()
	dead := r.engine("dead", nil)
	l, err := dead.Open(ctx, lockdown.OpenRequest{Target: lockdown.Target{Scope: session.ScopeDomain, Domain: bulk}, Actor: "U1", Channel: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	// What the dead replica left: a run recorded and 5 members denied, the rest never started.
	for _, m := range l.Members[:5] {
		if _, err := r.inc.Run(ctx, m.IncidentID, session.StepDeny, "U1", remediate.RunOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().UTC().Add(-time.Second)
	if _, err := r.store.UpdateLockdown(ctx, l.ID, func(l *session.Lockdown) error {
		l.Runs = append(l.Runs, &session.LockdownRun{Seq: 1, Kind: lockdown.KindStep, Step: session.StepDeny, Actor: "U1",
			StartedAt: past.Add(-time.Minute), Owner: "dead", LeaseUntil: past})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b := r.engine("B", nil)
	if err := b.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	l = r.waitRun(b, l.ID, 1)
	if c := l.Runs[0].Counts; c[lockdown.OutDone] != n-5 || c[lockdown.OutSkipped] != 5 || l.Runs[0].Owner != "B" {
		t.Errorf("resumed run: owner %s, counts %v", l.Runs[0].Owner, c)
	}
	for _, u := range r.users {
		if pol := r.policy(u); pol != "Deny All" {
			t.Errorf("%s in %q after the resumed deny", u, pol)
		}
	}
	puts := 0
	for _, c := range r.sim.Calls() {
		if c.Method == "PUT" {
			puts++
		}
	}
	if puts != n {
		t.Errorf("%d PUTs for %d users: a deny ran twice", puts, n)
	}
}
