package lockdown

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// With one place, a member that gives its place back lets the next one start while it is still
// running (a deny fan-out releases at "contained"), and each still returns only when all have run.
func TestEachReleasedFreesThePlace(t *testing.T) {
	e := &Engine{cfg: Config{Parallel: 1}}
	started := make(chan int, 3)
	finish := make(chan struct{})
	var done atomic.Int32
	returned := make(chan struct{})
	go func() {
		e.eachReleased(context.Background(), 3, func(i int, release func()) {
			started <- i
			release()
			release() // idempotent: a second call must not free a place twice
			<-finish
			done.Add(1)
		})
		close(returned)
	}()
	for want := range 3 {
		select {
		case got := <-started:
			if got != want {
				t.Fatalf("started %d, want %d", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("member %d did not start while the earlier ones still run: the place was not released", want)
		}
	}
	select {
	case <-returned:
		t.Fatal("eachReleased returned before its members finished")
	default:
	}
	close(finish)
	<-returned
	if done.Load() != 3 {
		t.Fatalf("%d of 3 finished", done.Load())
	}
}

// Without a release, the place is held until fn returns: one place runs one member at a time.
func TestEachHoldsThePlace(t *testing.T) {
	e := &Engine{cfg: Config{Parallel: 1}}
	var running, most atomic.Int32
	e.each(context.Background(), 20, func(int) {
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(time.Millisecond) // a test's stand-in for a member's work, not a request path
		running.Add(-1)
	})
	if most.Load() != 1 {
		t.Fatalf("%d members ran at once with one place", most.Load())
	}
}
