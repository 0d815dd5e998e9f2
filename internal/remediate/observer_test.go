package remediate_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// outcomes records what an Observer is told, as "step result kind".
type outcomes struct {
	mu  sync.Mutex
	got []string
	// denied is the incident as reported with deny's first verified outcome.
	denied session.Incident
}

func (o *outcomes) StepEnded(_ context.Context, inc session.Incident, step session.Step, result string, kind remediate.Kind) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, string(step)+" "+result+" "+string(kind))
	if step == session.StepDeny && result == remediate.ResultDone && o.denied.ID == "" {
		o.denied = inc
	}
}

func (o *outcomes) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	got := o.got
	o.got = nil
	return got
}

func TestObserverSeesEveryOutcome(t *testing.T) {
	v := newEnv(t)
	obs := &outcomes{}
	e := v.engine("A", func(c *remediate.Config) {
		c.Observer = obs
		c.ApprovalSteps = []session.Step{session.StepRestore}
	})
	ctx := context.Background()
	inc := v.open(e, "1001", "acme.example")

	if _, err := e.Request(ctx, inc.ID, session.StepReset, "U1", remediate.RunOptions{}); !errors.Is(err, remediate.ErrStepOrder) {
		t.Fatalf("reset before deny = %v", err)
	}
	if _, err := e.Request(ctx, inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Request(ctx, inc.ID, session.StepDeny, "U2", remediate.RunOptions{}); !errors.Is(err, remediate.ErrAlreadyDone) {
		t.Fatalf("second deny = %v", err)
	}
	if diff := cmp.Diff([]string{"reset refused step_order", "deny done ", "deny refused already_done"}, obs.take()); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if d := obs.denied.Step(session.StepDeny); obs.denied.ID != inc.ID || d.FinishedAt.IsZero() || obs.denied.CreatedAt.IsZero() {
		t.Errorf("deny reported with incident %s, finished %v, created %v: time to containment cannot be computed",
			obs.denied.ID, d.FinishedAt, obs.denied.CreatedAt)
	}

	// A drifted restore fails (after its approval); self-approval is refused; the approval
	// request itself is no outcome.
	v.sim.SetUserField("acme.example", "1001", "dial-policy", "International")
	if res, err := e.Request(ctx, inc.ID, session.StepRestore, "U1", remediate.RunOptions{}); err != nil || !res.Awaiting {
		t.Fatalf("request restore = %+v, %v", res.Awaiting, err)
	}
	if _, err := e.Approve(ctx, inc.ID, session.StepRestore, "U1"); !errors.Is(err, remediate.ErrSelfApproval) {
		t.Fatalf("self approval = %v", err)
	}
	if _, err := e.Approve(ctx, inc.ID, session.StepRestore, "U2"); !errors.Is(err, remediate.ErrDrift) {
		t.Fatalf("drifted restore = %v", err)
	}
	if diff := cmp.Diff([]string{"restore refused self_approval", "restore failed drift"}, obs.take()); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

// A deny whose runner died is reported by the replica that resumes and verifies it, so time to
// containment is recorded for resumed denies too.
func TestObserverSeesResumedDeny(t *testing.T) {
	v := newEnv(t)
	obsA, obsB := &outcomes{}, &outcomes{}
	a := v.engine("A", func(c *remediate.Config) { c.Observer = obsA })
	b := v.engine("B", func(c *remediate.Config) { c.Observer = obsB })
	ctx := context.Background()
	inc := v.open(a, "1001", "acme.example")
	hook, _, _ := stopAt(1)
	a.SetHook(hook)
	if _, err := a.Run(ctx, inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); !errors.Is(err, remediate.ErrStop) {
		t.Fatalf("deny with a dying runner = %v", err)
	}
	v.clock.Advance(time.Minute)
	rs, err := b.Reconcile(ctx)
	if err != nil || len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("Reconcile = %+v, %v", rs, err)
	}
	if got := obsA.take(); len(got) != 0 {
		t.Errorf("the stopped runner reported %v", got)
	}
	if diff := cmp.Diff([]string{"deny done "}, obsB.take()); diff != "" {
		t.Errorf("resuming replica's outcomes (-want +got):\n%s", diff)
	}
	if obsB.denied.ID != inc.ID {
		t.Errorf("resumed deny reported for %q", obsB.denied.ID)
	}
}
