package session_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// TestKeepAlive: renewals run until renew gives up, and none runs after stop returns.
func TestKeepAlive(t *testing.T) {
	var n atomic.Int32
	gaveUp := make(chan struct{})
	stop := session.KeepAlive(context.Background(), time.Millisecond, func(context.Context) bool {
		if n.Add(1) == 3 {
			close(gaveUp)
			return false
		}
		return true
	})
	select {
	case <-gaveUp:
	case <-time.After(10 * time.Second):
		t.Fatal("renew was not called three times")
	}
	stop()
	if got := n.Load(); got != 3 {
		t.Errorf("renew called %d times, want 3 (none after it returned false)", got)
	}

	n.Store(0)
	stop = session.KeepAlive(context.Background(), time.Millisecond, func(context.Context) bool { n.Add(1); return true })
	stop()
	after := n.Load()
	time.Sleep(20 * time.Millisecond) // twenty ticks of the stopped loop
	if got := n.Load(); got != after {
		t.Errorf("renew ran %d times after stop returned", got-after)
	}
	stop() // idempotent
}

// TestKeepAliveMany: many leases are kept alive at once, each renewed in turn and never two
// renewals of one lease at a time; while they wait no goroutine is parked for them (the
// runtime's timers are the scheduler); after stop returns no renewal of any of them runs, and
// ending ctx ends a keep-alive.
func TestKeepAliveMany(t *testing.T) {
	const n = 200
	base := runtime.NumGoroutine()
	idle := make([]func(), n)
	for i := range idle {
		idle[i] = session.KeepAlive(context.Background(), time.Hour, func(context.Context) bool {
			t.Error("an hourly renewal ran")
			return true
		})
	}
	if got := runtime.NumGoroutine() - base; got > n/10 {
		t.Errorf("%d keep-alives waiting hold %d goroutines, want none", n, got)
	}
	for _, stop := range idle {
		stop()
	}

	var renewed [n]atomic.Int32
	var busy [n]atomic.Int32
	var overlap, late atomic.Bool
	var stopped atomic.Bool // set once every stop has returned
	stops := make([]func(), n)
	for i := range stops {
		stops[i] = session.KeepAlive(context.Background(), time.Millisecond, func(context.Context) bool {
			if stopped.Load() {
				late.Store(true)
			}
			if busy[i].Add(1) > 1 {
				overlap.Store(true)
			}
			renewed[i].Add(1)
			busy[i].Add(-1)
			return true
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	for i := range renewed {
		for renewed[i].Load() < 3 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := renewed[i].Load(); got < 3 {
			t.Fatalf("lease %d renewed %d times, want ≥ 3", i, got)
		}
	}
	for _, stop := range stops {
		stop()
	}
	stopped.Store(true)
	time.Sleep(20 * time.Millisecond) // twenty periods of the stopped keep-alives
	if late.Load() {
		t.Error("a renewal ran after its stop returned")
	}
	if overlap.Load() {
		t.Error("two renewals of one lease ran at once")
	}

	ctx, cancel := context.WithCancel(context.Background())
	var afterEnd atomic.Int32
	var ended atomic.Bool
	stop := session.KeepAlive(ctx, time.Millisecond, func(context.Context) bool {
		if ended.Load() {
			afterEnd.Add(1)
		}
		return true
	})
	defer stop()
	cancel()
	ended.Store(true)
	time.Sleep(20 * time.Millisecond)
	if got := afterEnd.Load(); got > 1 { // one may have started before cancel returned
		t.Errorf("%d renewals after ctx ended", got)
	}
}

// TestKeepAliveStopWaits: stop returns only after the renewal under way has returned.
func TestKeepAliveStopWaits(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	stop := session.KeepAlive(context.Background(), time.Millisecond, func(context.Context) bool {
		if calls.Add(1) == 1 {
			close(started)
			<-release
		}
		return true
	})
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("renew was not called")
	}
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
		t.Fatal("stop returned while a renewal was under way")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	<-done
	if got := calls.Load(); got != 1 {
		t.Errorf("renew called %d times, want 1 (none after stop)", got)
	}
}
