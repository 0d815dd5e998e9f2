package remediate_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

func TestRefusedCreate(t *testing.T) {
	const devices = "/domains/acme.example/users/1001/devices"
	tests := []struct {
		name      string
		refusals  int // how many creates the PBX refuses with 400
		wantErr   error
		wantAfter session.Status
	}{
		{"minimal body accepted", 1, nil, session.StatusDone},
		{"refused twice: failed, snapshot kept, retry finishes", 2, remediate.ErrNotRestored, session.StatusFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t)
			e := v.engine("A", nil)
			ctx := context.Background()
			before, oldPW := v.settings("1001", "acme.example"), v.passwords("1001", "acme.example")
			inc := v.openDenied(e, "1001", "acme.example")
			for range tc.refusals {
				v.sim.FailNext("POST", devices, 400, "device-srtp-enabled: unsupported value")
			}
			_, err := e.Run(ctx, inc.ID, session.StepRecreate, "U1", remediate.RunOptions{})
			if !errors.Is(err, tc.wantErr) && !(tc.wantErr == nil && err == nil) {
				t.Fatalf("recreate = %v, want %v", err, tc.wantErr)
			}
			got := v.get(inc.ID)
			st := got.Step(session.StepRecreate)
			if st.Status != tc.wantAfter {
				t.Fatalf("recreate status = %s, want %s", st.Status, tc.wantAfter)
			}
			if tc.wantErr != nil {
				if !strings.Contains(st.ErrMessage, "could not restore: 1001 (PBX refused") || len(got.Devices) != 2 {
					t.Errorf("failed step says %q with %d snapshot(s)", st.ErrMessage, len(got.Devices))
				}
				if _, err := e.Run(ctx, inc.ID, session.StepRecreate, "U1", remediate.RunOptions{}); err != nil {
					t.Fatalf("retry: %v", err)
				}
			}
			for _, s := range []session.Step{session.StepReset, session.StepRestore} {
				if _, err := e.Run(ctx, inc.ID, s, "U1", remediate.RunOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			checkFinal(t, v, inc.ID, before, oldPW)
		})
	}
}

func TestLostCreateReplyRotatesPassword(t *testing.T) {
	v := newEnv(t)
	e := v.engine("A", nil)
	ctx := context.Background()
	inc := v.openDenied(e, "1001", "acme.example")
	// The softphone's create is applied but its runner dies before recording it.
	e.SetHook(func(step session.Step, op string, after bool) error {
		if op == "create device 1001a" && after {
			return remediate.ErrStop
		}
		return nil
	})
	if _, err := e.Run(ctx, inc.ID, session.StepRecreate, "U1", remediate.RunOptions{}); !errors.Is(err, remediate.ErrStop) {
		t.Fatal(err)
	}
	e.SetHook(nil)
	v.clock.Advance(2 * time.Minute)
	rs, err := e.Reconcile(ctx)
	if err != nil || len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("Reconcile = %+v, %v", rs, err)
	}
	if len(rs[0].Secrets) != 1 || rs[0].Secrets[0].Device != "1001a" || rs[0].RequestedBy != "U1" {
		t.Fatalf("resumed secrets = %+v for %q", rs[0].Secrets, rs[0].RequestedBy)
	}
	if got := v.passwords("1001", "acme.example")["1001a"]; got != rs[0].Secrets[0].Value.Reveal() {
		t.Error("the rotated password is not the one delivered")
	}
	var rotations int
	for _, w := range v.writes() {
		if w == "PUT /domains/acme.example/users/1001/devices/1001a" {
			rotations++
		}
	}
	if rotations != 1 {
		t.Errorf("%d password rotation(s), want 1", rotations)
	}
}

func TestCredentials(t *testing.T) {
	v := newEnv(t)
	e := v.engine("A", nil)
	ctx := context.Background()
	inc := v.openDenied(e, "1001", "acme.example")
	if _, err := e.Credentials(ctx, inc.ID, "U1"); !errors.Is(err, remediate.ErrStepOrder) {
		t.Fatalf("Credentials before recreate = %v", err)
	}
	first, err := e.Run(ctx, inc.ID, session.StepRecreate, "U1", remediate.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Credentials(ctx, inc.ID, "U2")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Secrets) != 1 || res.Secrets[0].Device != "1001a" {
		t.Fatalf("credentials = %+v, want the softphone only", res.Secrets)
	}
	pw := v.passwords("1001", "acme.example")["1001a"]
	if pw != res.Secrets[0].Value.Reveal() || pw == first.Secrets[0].Value.Reveal() {
		t.Error("credentials did not set and return a new password")
	}
}

// countNotifier counts Changed calls per incident.
type countNotifier struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countNotifier) Changed(_ context.Context, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[id]++
}

func TestNotifierAndOpenErrors(t *testing.T) {
	v := newEnv(t)
	n := &countNotifier{n: map[string]int{}}
	e := v.engine("A", func(c *remediate.Config) { c.Notifier = n })
	ctx := context.Background()
	tests := []struct {
		user, domain string
		want         error
	}{
		{"9999", "acme.example", remediate.ErrUserNotFound},
		{"1001", "acme..example/../x", remediate.ErrInvalid},
		{"*", "acme.example", remediate.ErrInvalid},
		{"~", "acme.example", remediate.ErrInvalid},
	}
	for _, tc := range tests {
		_, _, err := e.Open(ctx, remediate.OpenRequest{User: tc.user, Domain: tc.domain, Actor: "U1"})
		if !errors.Is(err, tc.want) || remediate.UserMessage(err) == "" {
			t.Errorf("Open(%q, %q) = %v, want %v", tc.user, tc.domain, err, tc.want)
		}
	}
	inc := v.openDenied(e, "1001", "acme.example")
	if n.n[inc.ID] < 3 {
		t.Errorf("notifier called %d times for open + deny", n.n[inc.ID])
	}
	if _, err := e.SetCard(ctx, inc.ID, "C1", "1700000000.000100"); err != nil {
		t.Fatal(err)
	}
	got, err := e.Refresh(ctx, inc.ID)
	if err != nil || got.Live.DialPolicy != denyPolicy || got.MessageTS != "1700000000.000100" {
		t.Errorf("Refresh = %+v, %v", got.Live, err)
	}
	if err := e.Discard(ctx, inc.ID); err == nil {
		t.Error("Discard of an incident whose deny ran succeeded")
	}
}
