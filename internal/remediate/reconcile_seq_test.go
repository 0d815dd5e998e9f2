package remediate_test

// Issue 10's reconcile sequences: 3 (Repair is run, from the per-user pointers), 10 (resumes run
// concurrently; an undecodable incident is skipped) and 12 (the resume counter is per run).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// TestSeq12RetryResetsTheResumeCounter: after one "runner died" failure, a manual Retry is a new
// run whose runner may die once and be resumed, not failed at once.
func TestSeq12RetryResetsTheResumeCounter(t *testing.T) {
	v := newEnv(t)
	ctx := context.Background()
	a := v.engine("A", nil)
	var dying atomic.Bool
	dying.Store(true)
	a.SetHook(func(session.Step, string, bool) error {
		if dying.Load() {
			return remediate.ErrStop
		}
		return nil
	})
	inc := v.open(a, "1001", "acme.example")
	if _, err := a.Run(ctx, inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); !errors.Is(err, remediate.ErrStop) {
		t.Fatal(err)
	}
	reconcileUntilGivenUp(t, v, a)
	if k := stepOf(v, inc.ID, session.StepDeny).ErrKind; k != remediate.KindRunnerDied {
		t.Fatalf("deny failed with %q, want runner_died", k)
	}

	// Retry: this run's runner dies once, then the PBX is fine again.
	if _, err := a.Run(ctx, inc.ID, session.StepDeny, "U2", remediate.RunOptions{}); !errors.Is(err, remediate.ErrStop) {
		t.Fatalf("Retry = %v, want the injected stop", err)
	}
	dying.Store(false)
	v.clock.Advance(time.Minute)
	rs, err := a.Reconcile(ctx)
	if err != nil || len(rs) != 1 {
		t.Fatalf("Reconcile after the Retry = %+v, %v", rs, err)
	}
	if rs[0].Failed || rs[0].Err != nil {
		t.Fatalf("the Retry's first takeover failed=%v err=%v; want it resumed", rs[0].Failed, rs[0].Err)
	}
	if st := stepOf(v, inc.ID, session.StepDeny); !st.Status.Finished() {
		t.Fatalf("deny = %s (%s), want done", st.Status, st.ErrMessage)
	}
	if got := v.userField("1001", "acme.example", "dial-policy"); got != denyPolicy {
		t.Errorf("dial policy = %v, want %s", got, denyPolicy)
	}
}

// TestSeq3RepairRunsInReconcile: the add to the open index is lost (Redis blip) and the runner
// dies; Reconcile finds the incident by the user's open pointer, resumes the step, abort works
// and a new /compromised for the user gets the same, no longer stuck, incident.
func TestSeq3RepairRunsInReconcile(t *testing.T) {
	v := newEnv(t)
	ctx := context.Background()
	a, b := v.engine("A", nil), v.engine("B", nil)
	a.SetHook(func(step session.Step, op string, after bool) error {
		if op == "put user dial-policy" && after {
			return remediate.ErrStop
		}
		return nil
	})
	inc := v.open(a, "1001", "acme.example")
	// What a failed SADD after the open script leaves behind.
	if err := v.redis.Client.SRem(ctx, v.redis.Key("open"), inc.ID).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run(ctx, inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); !errors.Is(err, remediate.ErrStop) {
		t.Fatalf("deny = %v, want the injected stop", err)
	}
	v.clock.Advance(time.Minute)
	rs, err := b.Reconcile(ctx)
	if err != nil || len(rs) != 1 || rs[0].Err != nil || rs[0].IncidentID != inc.ID {
		t.Fatalf("Reconcile = %+v, %v; want the deny resumed", rs, err)
	}
	if st := stepOf(v, inc.ID, session.StepDeny); !st.Status.Finished() {
		t.Fatalf("deny = %s, want done", st.Status)
	}
	// A new /compromised for the user returns the incident, which now moves on.
	again, created, err := b.Open(ctx, remediate.OpenRequest{User: "1001", Domain: "acme.example", Reason: "again", Actor: "U2", Channel: "C1"})
	if err != nil || created || again.ID != inc.ID {
		t.Fatalf("second Open = %s created=%v, %v; want the open incident %s", again.ID, created, err, inc.ID)
	}
	if _, err := b.Run(ctx, inc.ID, session.StepRecreate, "U1", remediate.RunOptions{}); err != nil {
		t.Fatalf("recreate after the repair: %v", err)
	}
	if _, err := b.Abort(ctx, inc.ID, "U1", "kept blocked", ""); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	fresh, created, err := b.Open(ctx, remediate.OpenRequest{User: "1001", Domain: "acme.example", Reason: "new", Actor: "U2", Channel: "C1"})
	if err != nil || !created || fresh.ID == inc.ID {
		t.Fatalf("Open after the abort = %s created=%v, %v; want a new incident", fresh.ID, created, err)
	}
}

// TestSeq10ReconcileResumesConcurrently: a resumed step that takes long (its PBX write waits)
// does not hold up the resume of another incident, and an incident that no longer decodes does
// not stop the resumes.
func TestSeq10ReconcileResumesConcurrently(t *testing.T) {
	v := newEnv(t)
	ctx := context.Background()
	a := v.engine("A", nil)
	a.SetHook(func(step session.Step, op string, after bool) error {
		if op == "put user dial-policy" && !after {
			return remediate.ErrStop
		}
		return nil
	})
	slow, quick := v.open(a, "1001", "acme.example"), v.open(a, "1002", "acme.example")
	bad := v.open(a, "1003", "acme.example")
	for _, inc := range []session.Incident{slow, quick} {
		if _, err := a.Run(ctx, inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); !errors.Is(err, remediate.ErrStop) {
			t.Fatalf("deny of %s = %v", inc.User, err)
		}
	}
	// 1003's record no longer decodes.
	if err := v.redis.Client.HSet(ctx, v.redis.Key("{1003@acme.example}:inc:"+bad.ID), "data", "{not json").Err(); err != nil {
		t.Fatal(err)
	}
	// B's resume of 1001 waits in its PUT until 1002's PUT is answered: serial resumes would
	// wait for ever (bounded here: the held request goes on after a while and the test fails).
	quickDone, held := make(chan struct{}), make(chan bool, 1)
	var once atomic.Bool
	pbx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/users/1001") {
			select {
			case <-quickDone:
				held <- true
			case <-time.After(10 * time.Second): // a deadlock guard, not a measure of speed
				held <- false
			}
		}
		v.sim.ServeHTTP(w, r)
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/users/1002") && once.CompareAndSwap(false, true) {
			close(quickDone)
		}
	}))
	defer pbx.Close()
	b := engineWithPBX(t, v, v.store, "B", pbx.URL+nstest.BasePath)
	v.clock.Advance(time.Minute)
	rs, err := b.Reconcile(ctx)
	if err != nil {
		t.Fatalf("Reconcile with an undecodable incident: %v", err)
	}
	if !<-held {
		t.Error("the resume of 1001 held up the resume of 1002 (resumes are serial)")
	}
	if len(rs) != 2 {
		t.Fatalf("Reconcile resumed %d step(s), want 2: %+v", len(rs), rs)
	}
	for _, inc := range []session.Incident{slow, quick} {
		if st := stepOf(v, inc.ID, session.StepDeny); !st.Status.Finished() {
			t.Errorf("deny of %s = %s (%s), want done", inc.User, st.Status, st.ErrMessage)
		}
	}
	if got := v.store.Undecodable(); fmt.Sprint(got) != fmt.Sprint([]string{bad.ID}) {
		t.Errorf("Undecodable() = %v, want [%s]", got, bad.ID)
	}
	if !strings.Contains(v.logs.String(), "does not decode") || !strings.Contains(v.logs.String(), bad.ID) {
		t.Errorf("no log line names the undecodable incident %s", bad.ID)
	}
	open, err := v.store.ListOpen(ctx)
	if err != nil || len(open) != 2 {
		t.Errorf("ListOpen = %d incidents, %v; want the 2 that decode", len(open), err)
	}
}

// engineWithPBX is an Engine named owner over the env's store whose PBX is at baseURL (the
// simulator behind a test's handler).
func engineWithPBX(t *testing.T, v *env, st remediate.Store, owner, baseURL string) *remediate.Engine {
	t.Helper()
	c, err := netsapiens.New(netsapiens.Config{BaseURL: baseURL, APIKey: netsapiens.Secret(v.sim.APIKey()),
		MaxRetries: 2, RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond, Logger: v.log})
	if err != nil {
		t.Fatalf("netsapiens.New: %v", err)
	}
	e, err := remediate.New(c, st, remediate.Config{Owner: owner, Logger: v.log.With().Str("owner", owner).Logger(),
		Now: v.clock.Now, Keys: v.keys, ResetEmailTemplate: "password_reset.php"})
	if err != nil {
		t.Fatalf("remediate.New: %v", err)
	}
	return e
}

// stepOf is the stored state of one step of an incident.
func stepOf(v *env, id string, step session.Step) *session.StepState {
	v.t.Helper()
	inc := v.get(id)
	return inc.Step(step)
}
