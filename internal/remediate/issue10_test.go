package remediate_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// errTransient stands for a PBX write that failed for a passing reason (a 503, a timeout).
var errTransient = errors.New("PBX timed out")

// TestSeq4ForceAppliesToOneRun: a forced restore that fails transiently does not leave the step
// forced: a later plain Retry refuses the drifted policy instead of overwriting it.
func TestSeq4ForceAppliesToOneRun(t *testing.T) {
	v := newEnv(t)
	e := v.engine("A", nil)
	ctx := context.Background()
	inc := v.openDenied(e, "1001", "acme.example")
	v.sim.SetUserField("acme.example", "1001", "dial-policy", "International")
	if _, err := e.Run(ctx, inc.ID, session.StepRestore, "U1", remediate.RunOptions{}); !errors.Is(err, remediate.ErrDrift) {
		t.Fatalf("restore after drift = %v, want ErrDrift", err)
	}
	if live := v.get(inc.ID).Live; live == nil || live.DialPolicy != "International" {
		t.Errorf("after the drift the stored live state is %+v, want International (what the Force dialog shows)", live)
	}
	e.SetHook(func(step session.Step, op string, after bool) error {
		if step == session.StepRestore && !after {
			return errTransient
		}
		return nil
	})
	if _, err := e.Run(ctx, inc.ID, session.StepRestore, "U1", remediate.RunOptions{Force: true}); !errors.Is(err, errTransient) {
		t.Fatalf("forced restore with a failing PBX = %v", err)
	}
	e.SetHook(nil)
	_, err := e.Run(ctx, inc.ID, session.StepRestore, "U2", remediate.RunOptions{})
	if !errors.Is(err, remediate.ErrDrift) {
		t.Fatalf("plain Retry after a failed forced run = %v, want ErrDrift", err)
	}
	if got := v.userField("1001", "acme.example", "dial-policy"); got != "International" {
		t.Errorf("a plain Retry overwrote the drifted policy: dial-policy = %v", got)
	}
}

// TestSeq5RenamedDenyPolicyIsNotAnOriginal: incident 1 denies to Deny All and is aborted; with
// NS_DENY_POLICY renamed to Block All, incident 2 finds the user in Deny All and must not record
// it as the original: the kept original stays, and restore sets it.
func TestSeq5RenamedDenyPolicyIsNotAnOriginal(t *testing.T) {
	seed := nstest.DemoSeed()
	seed.DialPolicies = append(seed.DialPolicies, nstest.DialPolicy{DialPolicy: "Block All", Domain: "*",
		Description: "blocks every call", Permissions: []map[string]any{}})
	v := newEnvSeed(t, testenv.NewRedis(t), seed)
	ctx := context.Background()
	e1 := v.engine("A", nil)
	first := v.openDenied(e1, "1001", "acme.example")
	if _, err := e1.Abort(ctx, first.ID, "U1", "", ""); err != nil {
		t.Fatal(err)
	}
	e2 := v.engine("B", func(c *remediate.Config) { c.DenyPolicy = "Block All" })
	second := v.openDenied(e2, "1001", "acme.example")
	if o := v.get(second.ID).Original; o == nil || !o.Known || o.Policy != origPolicy {
		t.Fatalf("second incident's original = %+v, want the kept %q (Deny All was set by the bot)", o, origPolicy)
	}
	if o, ok, err := v.store.UserOriginal(ctx, "1001", "acme.example"); err != nil || !ok || o.Policy != origPolicy {
		t.Errorf("user's last known original = %+v %v %v, want %q", o, ok, err, origPolicy)
	}
	if got, err := v.store.DenyPolicies(ctx, "1001", "acme.example"); err != nil || !slices.Equal(got, []string{"Block All", "Deny All"}) {
		t.Errorf("deny policies on record = %v, %v", got, err)
	}
	if _, err := e2.Run(ctx, second.ID, session.StepRestore, "U1", remediate.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := v.userField("1001", "acme.example", "dial-policy"); got != origPolicy {
		t.Errorf("dial-policy = %v after restore, want %q", got, origPolicy)
	}
}

// TestSeq9ResetRetryRevokesAgain: a reset that failed after revoking the sessions revokes them
// again on Retry (a session opened since must end too).
func TestSeq9ResetRetryRevokesAgain(t *testing.T) {
	v := newEnv(t)
	e := v.engine("A", nil)
	ctx := context.Background()
	inc := v.openDenied(e, "1001", "acme.example")
	e.SetHook(func(step session.Step, op string, after bool) error {
		if step == session.StepReset && strings.Contains(op, "pin") && !after {
			return errTransient
		}
		return nil
	})
	if _, err := e.Run(ctx, inc.ID, session.StepReset, "U1", remediate.RunOptions{}); !errors.Is(err, errTransient) {
		t.Fatalf("reset with a failing PIN write = %v", err)
	}
	if n := len(v.sim.RevokedJWTs()); n != 1 {
		t.Fatalf("first attempt revoked %d times, want 1", n)
	}
	e.SetHook(nil)
	if _, err := e.Run(ctx, inc.ID, session.StepReset, "U1", remediate.RunOptions{}); err != nil {
		t.Fatalf("Retry of reset: %v", err)
	}
	if n := len(v.sim.RevokedJWTs()); n != 2 {
		t.Errorf("after the Retry the sessions were revoked %d times, want 2 (the Retry revokes again)", n)
	}
	if n := len(v.sim.Emails()); n != 1 {
		t.Errorf("reset emails sent = %d, want 1 (by the Retry)", n)
	}
}
