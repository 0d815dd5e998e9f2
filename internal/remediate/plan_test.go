package remediate_test

import (
	"context"
	"testing"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// planStep returns the plan's entry for step s.
func planStep(t *testing.T, p remediate.Plan, s session.Step) remediate.PlanStep {
	t.Helper()
	for _, ps := range p.Steps {
		if ps.Step == s {
			return ps
		}
	}
	t.Fatalf("plan has no %s", s)
	return remediate.PlanStep{}
}

// The dry run goes on where a run would stop, and says so: a missing deny policy, a user
// already denied (with the original kept by an earlier incident, or unknown).
func TestPlanAlreadyDeniedAndMissingPolicy(t *testing.T) {
	v := newEnv(t)
	ctx := context.Background()
	e := v.engine("A", nil)

	inc := v.open(e, "1002", "acme.example")
	orig := inc.Live.DialPolicy
	if _, err := e.Run(ctx, inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Abort(ctx, inc.ID, "U1", "", ""); err != nil {
		t.Fatal(err)
	}
	written := len(v.writes())
	p, err := e.Plan(ctx, "1002", "acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if c := planStep(t, p, session.StepDeny).Calls; len(c) != 1 || c[0].Method != "—" || c[0].After != "Deny All" {
		t.Errorf("deny of a denied user plans %+v, want no PUT", c)
	}
	want := remediate.PlannedCall{Method: "PUT", Path: "/domains/acme.example/users/1002", Before: "Deny All", After: orig,
		Note: "the original kept from incident " + inc.ID}
	if c := planStep(t, p, session.StepRestore).Calls; len(c) != 1 || c[0] != want {
		t.Errorf("restore plans %+v, want %+v", c, want)
	}

	v.sim.SetUserField("acme.example", "1003", "dial-policy", "Deny All")
	p, err = e.Plan(ctx, "1003", "acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if c := planStep(t, p, session.StepRestore).Calls; len(c) != 1 || c[0].After != "unknown" ||
		c[0].Note != "the original is unknown: restore will ask for the policy" {
		t.Errorf("restore with no original plans %+v", c)
	}

	p, err = v.engine("B", func(c *remediate.Config) { c.DenyPolicy = "Nope" }).Plan(ctx, "1001", "acme.example")
	if err != nil {
		t.Fatal(err)
	}
	deny := planStep(t, p, session.StepDeny)
	if deny.Note != `the deny policy "Nope" does not exist: deny would fail` || len(deny.Calls) == 0 || deny.Calls[0].After != "Nope" {
		t.Errorf("deny with a missing policy plans %+v", deny)
	}
	if w := v.writes(); len(w) != written {
		t.Errorf("plans wrote to the PBX: %v", w[written:])
	}
}
