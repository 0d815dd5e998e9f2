package remediate_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// Provisioning credentials of the seeded softphone 1001a (test values, not secrets).
const (
	provUser      = "prov-1001a"
	provPassword  = "ProvPassw0rd-1001a"
	provOverrides = "reg.1.auth.password=OverridePassw0rd"
)

// credSeed is the demo tenant with provisioning credentials on 1001a and a second softphone 1001b.
func credSeed() *nstest.Seed {
	s := nstest.DemoSeed()
	var extra map[string]any
	for _, d := range s.Devices {
		if d["user"] == "1001" && d["device"] == "1001a" {
			d["device-provisioning-username"] = provUser
			d["device-provisioning-password"] = provPassword
			d["device-provisioning-overrides"] = provOverrides
			extra = map[string]any{}
			for k, v := range d {
				extra[k] = v
			}
		}
	}
	extra["device"], extra["device-sip-registration-password"] = "1001b", "DemoSoftPh0ne1bb"
	delete(extra, "device-provisioning-username")
	delete(extra, "device-provisioning-password")
	delete(extra, "device-provisioning-overrides")
	s.Devices = append(s.Devices, extra)
	return s
}

// TestSeq6UnsealBeforeDelete is issue 10's sequence 6: a replica with another SNAPSHOT_KEY
// resumes recreate; it must not delete a device whose credentials it cannot open and then
// fail: the device is re-created without them and flagged.
func TestSeq6UnsealBeforeDelete(t *testing.T) {
	v := newEnvSeed(t, testenv.NewRedis(t), credSeed())
	ctx := context.Background()
	a := v.engine("A", nil)
	inc := v.openDenied(a, "1001", "acme.example")
	// A dies after the snapshot, before its first delete.
	a.SetHook(func(_ session.Step, op string, after bool) error {
		if strings.HasPrefix(op, "delete device") && !after {
			return remediate.ErrStop
		}
		return nil
	})
	if _, err := a.Run(ctx, inc.ID, session.StepRecreate, "U1", remediate.RunOptions{}); !errors.Is(err, remediate.ErrStop) {
		t.Fatalf("recreate on A = %v", err)
	}
	if got := v.get(inc.ID); len(got.Devices) != 3 || len(got.Devices[1].Sealed) < 2 {
		t.Fatalf("snapshot = %+v", got.Devices)
	}
	rotated, err := session.NewKeyring([]byte(strings.Repeat("r", 32)), testAuditKey)
	if err != nil {
		t.Fatal(err)
	}
	b := v.engine("B", func(c *remediate.Config) { c.Keys = rotated })
	v.clock.Advance(2 * time.Minute)
	rs, err := b.Reconcile(ctx)
	if err != nil || len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("Reconcile on B = %+v, %v", rs, err)
	}
	d, ok := simDevice(v, "1001a")
	if !ok {
		t.Fatal("device 1001a is gone: deleted although its credentials could not be opened")
	}
	if d["device-provisioning-username"] == provUser {
		t.Error("1001a got credentials B could not have opened")
	}
	after := v.get(inc.ID)
	st := after.Step(session.StepRecreate)
	if st.Status != session.StatusWarnings {
		t.Fatalf("recreate = %s (%s), want done with warnings", st.Status, st.ErrMessage)
	}
	flagged := false
	for _, s := range st.SubResults {
		flagged = flagged || (strings.Contains(s.Name, "1001a") && strings.Contains(s.Detail, "re-created without its provisioning credentials") &&
			strings.Contains(s.Detail, "sealed under another SNAPSHOT_KEY"))
	}
	if !flagged {
		t.Errorf("the card's result does not flag 1001a: %+v", st.SubResults)
	}
}

// TestProvisioningOverridesSealed: device-provisioning-overrides (often credentials) is kept
// sealed in the snapshot, never in clear in Redis, and comes back on the re-created device.
func TestProvisioningOverridesSealed(t *testing.T) {
	v := newEnvSeed(t, testenv.NewRedis(t), credSeed())
	ctx := context.Background()
	e := v.engine("A", nil)
	inc := v.open(e, "1001", "acme.example")
	for _, s := range []session.Step{session.StepDeny, session.StepRecreate} {
		if _, err := e.Run(ctx, inc.ID, s, "U1", remediate.RunOptions{}); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	got := v.get(inc.ID)
	for _, d := range got.Devices {
		if _, ok := d.Fields["device-provisioning-overrides"]; ok {
			t.Errorf("device %s keeps its overrides in clear", d.Device)
		}
	}
	if _, ok := got.Devices[1].Sealed["device-provisioning-overrides"]; !ok {
		t.Errorf("1001a's overrides are not sealed: %+v", got.Devices[1])
	}
	keys, err := v.redis.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		// Whatever the key's type, its values as Redis returns them.
		var vals []string
		if h, err := v.redis.Client.HGetAll(ctx, k).Result(); err == nil {
			for _, x := range h {
				vals = append(vals, x)
			}
		}
		if x, err := v.redis.Client.Get(ctx, k).Result(); err == nil {
			vals = append(vals, x)
		}
		if l, err := v.redis.Client.LRange(ctx, k, 0, -1).Result(); err == nil {
			vals = append(vals, l...)
		}
		raw := strings.Join(vals, "\n")
		for _, secret := range []string{provOverrides, provPassword, provUser} {
			if strings.Contains(raw, secret) {
				t.Errorf("key %s holds %q in clear", k, secret)
			}
		}
	}
	if d, ok := simDevice(v, "1001a"); !ok || d["device-provisioning-overrides"] != provOverrides || d["device-provisioning-username"] != provUser {
		t.Errorf("re-created 1001a = %v", d)
	}
}

// jobCtx is a job's context whose deadline the test makes pass at a chosen moment.
type jobCtx struct {
	context.Context
	once sync.Once
	done chan struct{}
}

func newJobCtx() *jobCtx { return &jobCtx{Context: context.Background(), done: make(chan struct{})} }

func (c *jobCtx) expire()                     { c.once.Do(func() { close(c.done) }) }
func (c *jobCtx) Done() <-chan struct{}       { return c.done }
func (c *jobCtx) Deadline() (time.Time, bool) { return time.Now().Add(time.Hour), true }
func (c *jobCtx) Value(key any) any           { return c.Context.Value(key) }
func (c *jobCtx) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// TestSeq11JobDeadlineStopsAtBoundary is issue 10's sequence 11: the job's deadline passes
// in the middle of a recreate. The device in hand is finished, the run stops before the next
// one, the new password made so far is delivered, and the resumed run does not call it lost.
func TestSeq11JobDeadlineStopsAtBoundary(t *testing.T) {
	v := newEnvSeed(t, testenv.NewRedis(t), credSeed())
	ctx := context.Background()
	e := v.engine("A", nil)
	inc := v.openDenied(e, "1001", "acme.example")
	job := newJobCtx()
	e.SetHook(func(_ session.Step, op string, after bool) error {
		if op == "create device 1001a" && after {
			job.expire()
		}
		return nil
	})
	res, err := e.Run(job, inc.ID, session.StepRecreate, "U1", remediate.RunOptions{})
	if remediate.KindOf(err) != remediate.KindCanceled {
		t.Fatalf("recreate past the deadline = %v (kind %s), want a stop", err, remediate.KindOf(err))
	}
	if len(res.Secrets) != 1 || res.Secrets[0].Device != "1001a" {
		t.Fatalf("secrets delivered at the stop = %+v, want 1001a's", res.Secrets)
	}
	if pw := v.passwords("1001", "acme.example")["1001a"]; pw != res.Secrets[0].Value.Reveal() {
		t.Error("the delivered password is not 1001a's")
	}
	cur := v.get(inc.ID)
	st := cur.Step(session.StepRecreate)
	if st.Status != session.StatusRunning || st.Progress["device/1001a"] != string(remediate.DeviceLinked) || st.Progress["device/1001b"] != "" {
		t.Fatalf("after the stop: %s, progress %v", st.Status, st.Progress)
	}
	e.SetHook(nil)
	v.clock.Advance(2 * time.Minute)
	rs, err := e.Reconcile(ctx)
	if err != nil || len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("Reconcile = %+v, %v", rs, err)
	}
	if len(rs[0].Secrets) != 1 || rs[0].Secrets[0].Device != "1001b" {
		t.Fatalf("resumed secrets = %+v, want 1001b's", rs[0].Secrets)
	}
	final := v.get(inc.ID)
	st = final.Step(session.StepRecreate)
	if st.Status != session.StatusDone {
		t.Fatalf("recreate = %s %v, want done", st.Status, st.SubResults)
	}
}
