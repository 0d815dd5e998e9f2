package remediate_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/evidence"
	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// gatedPBX holds every devices and live-calls read at the PBX's door until open is closed: an
// open that waited for them could not return.
type gatedPBX struct {
	*priorityPBX
	open chan struct{}
}

func (g *gatedPBX) ListDevices(ctx context.Context, domain, user string) ([]netsapiens.Device, error) {
	<-g.open
	return g.priorityPBX.ListDevices(ctx, domain, user)
}

func (g *gatedPBX) ListCalls(ctx context.Context, domain, user string) ([]netsapiens.ActiveCall, error) {
	<-g.open
	return g.priorityPBX.ListCalls(ctx, domain, user)
}

func cardFirstEngine(t *testing.T, v *env, pbx remediate.PBX) *remediate.Engine {
	t.Helper()
	e, err := remediate.New(pbx, v.store, remediate.Config{Owner: "A", Logger: v.log, Now: v.clock.Now,
		Keys: v.keys, ResetEmailTemplate: "password_reset.php", Evidence: evidence.Default()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func openCardFirst(t *testing.T, e *remediate.Engine) session.Incident {
	t.Helper()
	inc, created, err := e.Open(context.Background(), remediate.OpenRequest{User: "1001", Domain: "acme.example",
		Reason: "intl calls", Actor: "U1", Channel: "C1", CardFirst: true})
	if err != nil || !created {
		t.Fatalf("Open(CardFirst) = created %v, %v", created, err)
	}
	return inc
}

func auditDetail(t *testing.T, v *env, id, action string) string {
	t.Helper()
	entries, err := v.store.Audit(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range entries {
		if a.Action == action {
			return a.Detail
		}
	}
	t.Errorf("no %s in the audit: %+v", action, entries)
	return ""
}

// TestOpenCardFirst: an open for a card returns (and stores its incident) with the user read
// alone, while its devices and live calls are still held at the PBX's door: the card does not wait
// on them. The incident is stored Pending; the background read then stores them (Low priority),
// audits them, and hands them to the evidence of the open, which reads neither again.
func TestOpenCardFirst(t *testing.T) {
	v := newEnv(t)
	v.sim.AddActiveCall("acme.example", "1001", "call-1", "+88212345678")
	pbx := &gatedPBX{priorityPBX: &priorityPBX{Client: v.client()}, open: make(chan struct{})}
	e := cardFirstEngine(t, v, pbx)

	inc := openCardFirst(t, e) // would hang here if the open waited for the gated reads
	stored := v.get(inc.ID)
	if l := stored.Live; l == nil || !l.Pending || l.DialPolicy == "" || l.DisplayName == "" || len(l.Devices) != 0 || l.ActiveCalls != 0 {
		t.Fatalf("stored live state before the devices and calls are read = %+v, want Pending with the user's identity", l)
	}
	if !remediate.LiveReading(stored.Live, v.clock.Now()) {
		t.Error("LiveReading = false for a read just started")
	}
	if d := auditDetail(t, v, inc.ID, "incident.opened"); !strings.Contains(d, "dial permission") || !strings.Contains(d, "being read") {
		t.Errorf("incident.opened detail = %q", d)
	}
	if slices.Contains(pbx.calls(), fmt.Sprintf("list-devices %d", netsapiens.Low)) {
		t.Fatal("the devices were read before the gate opened")
	}

	close(pbx.open)
	e.Wait() // the background read and the evidence after it
	got := v.get(inc.ID)
	if l := got.Live; l == nil || l.Pending || l.ReadErr != "" || len(l.Devices) != len(v.sim.Devices("acme.example", "1001")) || l.ActiveCalls != 1 {
		t.Fatalf("live state after the background read = %+v", l)
	}
	if d := auditDetail(t, v, inc.ID, "live.read"); !strings.Contains(d, "device(s)") || !strings.Contains(d, "1 live call(s)") {
		t.Errorf("live.read detail = %q", d)
	}
	if got.Evidence == nil || got.Evidence.Phase != session.PhaseOpen || got.Evidence.DevicesUnavailable != "" || len(got.Evidence.LiveCalls) != 1 {
		t.Errorf("evidence of the open = %+v", got.Evidence)
	}
	low := func(op string) string { return fmt.Sprintf("%s %d", op, netsapiens.Low) }
	calls := pbx.calls()
	for _, op := range []string{"list-devices", "list-calls"} {
		if n := count(calls, low(op)); n != 1 {
			t.Errorf("%d %q in %q, want 1 (the fill-in's, which the evidence reuses)", n, low(op), calls)
		}
	}
	if !slices.Contains(calls, fmt.Sprintf("get-user %d", netsapiens.Normal)) {
		t.Errorf("no Normal user read in %q", calls)
	}
}

func count(s []string, x string) int {
	n := 0
	for _, v := range s {
		if v == x {
			n++
		}
	}
	return n
}

// TestOpenCardFirstReadFails: a devices read the PBX refuses is stored as the read's error (the
// card shows it), not as a user without devices, and audited; the evidence of the open still runs.
func TestOpenCardFirstReadFails(t *testing.T) {
	v := newEnv(t)
	e := cardFirstEngine(t, v, &priorityPBX{Client: v.client()})
	v.sim.FailNext("GET", "/domains/acme.example/users/1001/devices", 403, "Forbidden")
	inc := openCardFirst(t, e)
	e.Wait()
	got := v.get(inc.ID)
	if l := got.Live; l == nil || l.Pending || l.ReadErr == "" {
		t.Fatalf("live state after a refused devices read = %+v, want ReadErr", l)
	}
	if d := auditDetail(t, v, inc.ID, "live.read"); !strings.Contains(d, "could not be read") {
		t.Errorf("live.read detail = %q", d)
	}
	if got.Evidence == nil || got.Evidence.Phase != session.PhaseOpen {
		t.Errorf("evidence of the open = %+v", got.Evidence)
	}
	// A refresh (what `/compromised status` does) reads them again and clears the error.
	if _, err := e.Refresh(context.Background(), inc.ID); err != nil {
		t.Fatal(err)
	}
	if l := v.get(inc.ID).Live; l.ReadErr != "" || l.Pending || len(l.Devices) == 0 {
		t.Errorf("live state after a refresh = %+v", l)
	}
}

// TestOpenCardFirstKept: the open's device list, read after the card, still drops from Kept a
// device an earlier incident kept that is back on the PBX (re-created by hand).
func TestOpenCardFirstKept(t *testing.T) {
	v := newEnv(t)
	e := v.engine("A", nil)
	keptButBack(t, v, e)

	inc2 := openCardFirst(t, e)
	if len(inc2.Kept) != 1 {
		t.Fatalf("kept devices at the open (devices not read yet) = %+v, want the kept 1001", inc2.Kept)
	}
	testenv.WaitFor(t, 10*time.Second, "the devices of the open", func() bool { return !v.get(inc2.ID).Live.Pending })
	if got := v.get(inc2.ID); len(got.Kept) != 0 {
		t.Errorf("kept devices after the device list = %+v, want none (1001 is back)", got.Kept)
	}
	e.Wait()
}

// keptButBack leaves 1001@acme.example with device 1001 kept by an aborted incident (deleted,
// its re-create refused) and then re-created by hand: the kept snapshot is stale.
func keptButBack(t *testing.T, v *env, e *remediate.Engine) {
	t.Helper()
	const devices = "/domains/acme.example/users/1001/devices"
	ctx := context.Background()
	inc := v.openDenied(e, "1001", "acme.example")
	v.sim.FailNext("POST", devices, 400, "device-models-model: unsupported value")
	v.sim.FailNext("POST", devices, 400, "device-models-model: unsupported value")
	if _, err := e.Run(ctx, inc.ID, session.StepRecreate, "U1", remediate.RunOptions{}); !errors.Is(err, remediate.ErrNotRestored) {
		t.Fatalf("recreate = %v, want ErrNotRestored", err)
	}
	cur := v.get(inc.ID)
	_, token := remediate.DevicesMissing(&cur)
	if _, err := e.Abort(ctx, inc.ID, "U1", "", token); err != nil {
		t.Fatal(err)
	}
	id := "1001"
	if _, err := v.client().CreateDevice(ctx, "acme.example", "1001", netsapiens.Device{Device: &id}); err != nil {
		t.Fatal(err) // re-created by hand: the kept snapshot is stale
	}
}

// heldPBX holds the first devices read at the PBX's door (entered is closed when it arrives)
// until release is closed; every later read goes through.
type heldPBX struct {
	*priorityPBX
	once             sync.Once
	entered, release chan struct{}
}

func (h *heldPBX) ListDevices(ctx context.Context, domain, user string) ([]netsapiens.Device, error) {
	first := false
	h.once.Do(func() { first = true })
	if first {
		close(h.entered)
		<-h.release
	}
	return h.priorityPBX.ListDevices(ctx, domain, user)
}

// TestRefreshDuringOpenFillKept: `/compromised status` (Refresh) runs while a card-first open's
// devices read is still held at the PBX: the refresh's read, complete, is the one stored (the
// open's fill-in then leaves it alone), so it must drop from Kept a kept device that is back on
// the PBX, as the fill-in would have.
func TestRefreshDuringOpenFillKept(t *testing.T) {
	v := newEnv(t)
	keptButBack(t, v, v.engine("A", nil))
	pbx := &heldPBX{priorityPBX: &priorityPBX{Client: v.client()}, entered: make(chan struct{}), release: make(chan struct{})}
	e := cardFirstEngine(t, v, pbx)
	inc := openCardFirst(t, e)
	if len(inc.Kept) != 1 {
		t.Fatalf("kept devices at the open = %+v, want the kept 1001", inc.Kept)
	}
	<-pbx.entered // the open's fill-in is reading the devices
	got, err := e.Refresh(context.Background(), inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Live.Pending || len(got.Kept) != 0 {
		t.Errorf("after the refresh: pending %v, kept %+v, want a complete read and no kept device (1001 is back)",
			got.Live.Pending, got.Kept)
	}
	close(pbx.release)
	e.Wait()
	if got := v.get(inc.ID); got.Live.Pending || len(got.Kept) != 0 {
		t.Errorf("after the open's fill-in: pending %v, kept %+v, want none", got.Live.Pending, got.Kept)
	}
}
