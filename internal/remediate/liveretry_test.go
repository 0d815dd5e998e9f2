package remediate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/remediate"
)

const devicesPath = "/domains/acme.example/users/1001/devices"

// reconcile runs e's Reconcile and waits for the reads it started.
func reconcile(t *testing.T, e *remediate.Engine) {
	t.Helper()
	if _, err := e.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Wait()
}

// TestLiveReadRetried: a card-first open whose devices read failed is read again by the
// maintenance pass (Reconcile) once its backoff has passed, not before, and the card's
// incident fills in.
func TestLiveReadRetried(t *testing.T) {
	v := newEnv(t)
	pbx := &priorityPBX{Client: v.client()}
	e := cardFirstEngine(t, v, pbx)
	v.sim.FailNext("GET", devicesPath, 403, "Forbidden")
	inc := openCardFirst(t, e)
	e.Wait()
	if l := v.get(inc.ID).Live; l.ReadErr == "" {
		t.Fatalf("live state after a refused devices read = %+v, want ReadErr", l)
	}
	reads := func() int { return count(pbx.calls(), fmt.Sprintf("list-devices %d", netsapiens.Low)) }
	reconcile(t, e) // the backoff has not passed
	if n := reads(); n != 1 {
		t.Fatalf("%d devices reads right after the failed one, want 1 (no retry yet)", n)
	}
	v.clock.Advance(time.Minute)
	reconcile(t, e)
	got := v.get(inc.ID)
	if l := got.Live; l.ReadErr != "" || l.Pending || len(l.Devices) != len(v.sim.Devices("acme.example", "1001")) || l.Tries != 1 {
		t.Fatalf("live state after the retry = %+v, want the devices read", l)
	}
	if n := reads(); n != 2 {
		t.Errorf("%d devices reads, want 2", n)
	}
	reconcile(t, e) // a complete read is not read again
	v.clock.Advance(time.Hour)
	reconcile(t, e)
	if n := reads(); n != 2 {
		t.Errorf("%d devices reads after the read completed, want 2", n)
	}
}

// TestLiveReadRetriesBounded: a devices read that keeps failing is retried a few times, backing
// off, and then left as it is: the card keeps saying it could not be read.
func TestLiveReadRetriesBounded(t *testing.T) {
	v := newEnv(t)
	pbx := &priorityPBX{Client: v.client()}
	e := cardFirstEngine(t, v, pbx)
	for range 50 {
		v.sim.FailNext("GET", devicesPath, 403, "Forbidden")
	}
	inc := openCardFirst(t, e)
	e.Wait()
	for range 20 {
		v.clock.Advance(time.Hour)
		reconcile(t, e)
	}
	l := v.get(inc.ID).Live
	if l.ReadErr == "" || l.Pending {
		t.Fatalf("live state after the retries = %+v, want ReadErr", l)
	}
	n := count(pbx.calls(), fmt.Sprintf("list-devices %d", netsapiens.Low))
	if n < 3 || n > 10 || l.Tries != n-1 {
		t.Errorf("%d devices reads, %d tries recorded: want a few retries", n, l.Tries)
	}
	v.clock.Advance(24 * time.Hour)
	reconcile(t, e)
	if m := count(pbx.calls(), fmt.Sprintf("list-devices %d", netsapiens.Low)); m != n {
		t.Errorf("%d devices reads after the last retry, want %d (no more)", m, n)
	}
}

// TestLiveReadInterruptedPickedUp: an open's devices read whose process died (here: held at the
// PBX for good, the record left Pending) is read by another Engine's maintenance pass once the
// read's timeout has passed; the first read, if it ever returns, leaves the complete read alone.
func TestLiveReadInterruptedPickedUp(t *testing.T) {
	v := newEnv(t)
	held := &heldPBX{priorityPBX: &priorityPBX{Client: v.client()}, entered: make(chan struct{}), release: make(chan struct{})}
	a := cardFirstEngine(t, v, held)
	inc := openCardFirst(t, a)
	<-held.entered
	b := v.engine("B", nil)
	reconcile(t, b) // the read may still be running
	if l := v.get(inc.ID).Live; !l.Pending || l.Tries != 0 {
		t.Fatalf("live state while the read may still run = %+v, want it left Pending", l)
	}
	v.clock.Advance(time.Minute)
	if remediate.LiveReading(v.get(inc.ID).Live, v.clock.Now()) {
		t.Fatal("LiveReading = true past the read's timeout")
	}
	reconcile(t, b)
	got := v.get(inc.ID)
	if l := got.Live; l.Pending || l.ReadErr != "" || len(l.Devices) != len(v.sim.Devices("acme.example", "1001")) {
		t.Fatalf("live state after the other engine's pass = %+v, want the devices read", l)
	}
	close(held.release)
	a.Wait()
	if after := v.get(inc.ID); after.Live.ReadAt != got.Live.ReadAt || after.Live.Tries != 1 {
		t.Errorf("live state after the first read returned = %+v, want %+v", after.Live, got.Live)
	}
}
