package remediate_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

func TestConcurrentStartsWriteOnce(t *testing.T) {
	v := newEnv(t)
	ctx := context.Background()
	engines := []*remediate.Engine{v.engine("A", nil), v.engine("B", nil)}
	inc := v.open(engines[0], "1001", "acme.example")
	v.sim.AddActiveCall("acme.example", "1001", "call-1", "+88212345678")
	for _, step := range []session.Step{session.StepDeny, session.StepRecreate} {
		t.Run(string(step), func(t *testing.T) {
			v.sim.ResetCalls()
			var wg sync.WaitGroup
			var ok, refused atomic.Int32
			errs := make(chan error, 50)
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := engines[i%2].Run(ctx, inc.ID, step, fmt.Sprintf("U%d", i), remediate.RunOptions{})
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, remediate.ErrAlreadyRunning), errors.Is(err, remediate.ErrAlreadyDone):
						refused.Add(1)
					default:
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("unexpected error: %v", err)
			}
			if ok.Load() != 1 || refused.Load() != 49 {
				t.Fatalf("%d runs succeeded and %d were refused, want 1 and 49", ok.Load(), refused.Load())
			}
			want := map[session.Step][]string{
				session.StepDeny: {"PUT /domains/acme.example/users/1001", "DELETE /domains/acme.example/users/1001/calls/call-1"},
				session.StepRecreate: {
					"DELETE /domains/acme.example/users/1001/devices/1001", "POST /domains/acme.example/users/1001/devices",
					"PUT /domains/acme.example/phones",
					"DELETE /domains/acme.example/users/1001/devices/1001a", "POST /domains/acme.example/users/1001/devices",
				},
			}[step]
			if got := v.writes(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("PBX writes = %v\nwant %v", got, want)
			}
		})
	}
}

// stopAt returns a hook that stops the runner at boundary n (counting from 1 over every
// before/after point of every write) and reports whether it did.
func stopAt(n int) (hook func(session.Step, string, bool) error, fired *atomic.Bool, count *atomic.Int32) {
	fired, count = &atomic.Bool{}, &atomic.Int32{}
	return func(step session.Step, op string, after bool) error {
		if int(count.Add(1)) == n {
			fired.Store(true)
			return fmt.Errorf("crash injected at %s %q after=%v: %w", step, op, after, remediate.ErrStop)
		}
		return nil
	}, fired, count
}

func TestCrashAtEveryWriteBoundary(t *testing.T) {
	// Count the boundaries of a clean run first.
	var total int
	{
		v := newEnv(t)
		e := v.engine("count", nil)
		hook, _, count := stopAt(-1)
		e.SetHook(hook)
		v.sim.AddActiveCall("acme.example", "1001", "call-1", "+88212345678")
		inc := v.open(e, "1001", "acme.example")
		runAll(t, e, inc.ID)
		total = int(count.Load())
	}
	if total < 20 {
		t.Fatalf("only %d write boundaries counted", total)
	}
	for n := 1; n <= total; n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			v := newEnv(t)
			ctx := context.Background()
			a, b := v.engine("A", nil), v.engine("B", nil)
			hook, fired, _ := stopAt(n)
			a.SetHook(hook)
			v.sim.AddActiveCall("acme.example", "1001", "call-1", "+88212345678")
			before, oldPW := v.settings("1001", "acme.example"), v.passwords("1001", "acme.example")
			inc := v.open(a, "1001", "acme.example")
			for _, s := range session.Steps {
				_, err := a.Run(ctx, inc.ID, s, "U1", remediate.RunOptions{})
				if fired.Load() {
					if !errors.Is(err, remediate.ErrStop) {
						t.Fatalf("stopped run of %s returned %v", s, err)
					}
					break
				}
				if err != nil {
					t.Fatalf("Run(%s): %v", s, err)
				}
			}
			if !fired.Load() {
				t.Fatalf("boundary %d was never reached", n)
			}
			// The original is never lost: whenever the user is denied, it is on record.
			if v.userField("1001", "acme.example", "dial-policy") == denyPolicy {
				if o := v.get(inc.ID).Original; o == nil || !o.Known || o.Policy != origPolicy {
					t.Fatalf("user denied but original = %+v", o)
				}
			}
			// Nothing happens before the lease expires; then B takes over.
			if rs, err := b.Reconcile(ctx); err != nil || len(rs) != 0 {
				t.Fatalf("Reconcile with a live lease = %v, %v", rs, err)
			}
			v.clock.Advance(time.Minute)
			rs, err := b.Reconcile(ctx)
			if err != nil || len(rs) != 1 || rs[0].Err != nil {
				t.Fatalf("Reconcile = %+v, %v", rs, err)
			}
			for _, s := range session.Steps {
				cur := v.get(inc.ID)
				if !cur.Open() {
					break
				}
				if st := cur.Step(s).Status; st.Finished() || st == session.StatusSkipped {
					continue
				}
				if _, err := b.Run(ctx, inc.ID, s, "U1", remediate.RunOptions{}); err != nil {
					t.Fatalf("B.Run(%s): %v", s, err)
				}
			}
			checkFinal(t, v, inc.ID, before, oldPW)
		})
	}
}

func TestFencedRunnerCannotWrite(t *testing.T) {
	v := newEnv(t)
	ctx := context.Background()
	a, b := v.engine("A", nil), v.engine("B", nil)
	a.SetRenewEvery(time.Hour) // a paused process renews nothing
	inc := v.openDenied(a, "1001", "acme.example")
	paused, release := make(chan struct{}), make(chan struct{})
	a.SetHook(func(step session.Step, op string, after bool) error {
		if op == "delete device 1001a" && !after {
			close(paused)
			<-release
		}
		return nil
	})
	done := make(chan error, 1)
	go func() {
		_, err := a.Run(ctx, inc.ID, session.StepRecreate, "U1", remediate.RunOptions{})
		done <- err
	}()
	<-paused
	v.clock.Advance(time.Minute)
	rs, err := b.Reconcile(ctx)
	if err != nil || len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("B's Reconcile = %+v, %v", rs, err)
	}
	writesBefore := len(v.sim.Writes())
	close(release)
	if err := <-done; !errors.Is(err, remediate.ErrFenced) {
		t.Fatalf("A after the takeover = %v, want ErrFenced", err)
	}
	if n := len(v.sim.Writes()); n != writesBefore {
		t.Errorf("A wrote %d time(s) after losing its lease", n-writesBefore)
	}
	var deletes int
	for _, w := range v.writes() {
		if w == "DELETE /domains/acme.example/users/1001/devices/1001a" {
			deletes++
		}
	}
	if deletes != 1 {
		t.Errorf("1001a deleted %d times", deletes)
	}
	got := v.get(inc.ID)
	if st := got.Step(session.StepRecreate); st.Status != session.StatusDone || st.LeaseOwner != "" {
		t.Errorf("recreate = %s (lease %q), want done by B", st.Status, st.LeaseOwner)
	}
}

func TestReconcileGivesUpOnARunnerThatKeepsDying(t *testing.T) {
	v := newEnv(t)
	ctx := context.Background()
	a := v.engine("A", nil)
	a.SetHook(func(session.Step, string, bool) error { return remediate.ErrStop })
	inc := v.open(a, "1001", "acme.example")
	if _, err := a.Run(ctx, inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); !errors.Is(err, remediate.ErrStop) {
		t.Fatal(err)
	}
	reconcileUntilGivenUp(t, v, a)
	st := v.get(inc.ID)
	deny := st.Step(session.StepDeny)
	if deny.Status != session.StatusFailed || deny.ErrKind != "runner_died" || deny.ErrMessage == "" {
		t.Errorf("deny = %s %q %q", deny.Status, deny.ErrKind, deny.ErrMessage)
	}
	if o := st.Original; o == nil || o.Policy != origPolicy {
		t.Errorf("original = %+v", o)
	}
}

func TestRedisKilledMidIncident(t *testing.T) {
	srv := testenv.StartRedis(t)
	v := newEnvOn(t, srv.Redis())
	ctx := context.Background()
	a, b := v.engine("A", nil), v.engine("B", nil)
	before, oldPW := v.settings("1001", "acme.example"), v.passwords("1001", "acme.example")
	inc := v.openDenied(a, "1001", "acme.example")
	// Redis dies (SIGKILL) right after the first device was created, and so does the runner.
	a.SetHook(func(step session.Step, op string, after bool) error {
		if op == "create device 1001" && after {
			srv.Kill()
			srv.Start()
			return remediate.ErrStop
		}
		return nil
	})
	if _, err := a.Run(ctx, inc.ID, session.StepRecreate, "U1", remediate.RunOptions{}); !errors.Is(err, remediate.ErrStop) {
		t.Fatalf("recreate = %v", err)
	}
	got := v.get(inc.ID)
	if got.Original == nil || got.Original.Policy != origPolicy || len(got.Devices) != 2 || got.Step(session.StepRecreate).Progress["device/1001"] != "deleted" {
		t.Fatalf("after the Redis restart: original %+v, %d device snapshot(s), progress %v",
			got.Original, len(got.Devices), got.Step(session.StepRecreate).Progress)
	}
	v.clock.Advance(time.Minute)
	rs, err := b.Reconcile(ctx)
	if err != nil || len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("Reconcile = %+v, %v", rs, err)
	}
	for _, s := range []session.Step{session.StepReset, session.StepRestore} {
		if _, err := b.Run(ctx, inc.ID, s, "U1", remediate.RunOptions{}); err != nil {
			t.Fatalf("Run(%s): %v", s, err)
		}
	}
	checkFinal(t, v, inc.ID, before, oldPW)
}

// reconcileUntilGivenUp advances the clock a minute per pass and reconciles the one interrupted
// run until Reconcile gives up on it (at most a dozen passes).
func reconcileUntilGivenUp(t *testing.T, v *env, a *remediate.Engine) {
	t.Helper()
	ctx := context.Background()
	for i := 0; ; i++ {
		v.clock.Advance(time.Minute)
		rs, err := a.Reconcile(ctx)
		if err != nil || len(rs) != 1 {
			t.Fatalf("Reconcile = %+v, %v", rs, err)
		}
		if rs[0].Failed {
			return
		}
		if i > 10 {
			t.Fatal("Reconcile never gave up")
		}
	}
}
