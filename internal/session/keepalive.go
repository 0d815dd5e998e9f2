package session

import (
	"context"
	"sync"
	"time"
)

// KeepAlive calls renew every `every` until the returned stop is called, ctx ends or renew
// returns false (the lease or lock is lost, nothing left to keep). stop waits for a renewal
// under way, so no renewal runs after it returns. It is the one renewal loop of the step leases,
// the lockdown runs' leases and the card's sync lock, which differ only in what one renewal does.
//
// The renewals wait in the runtime's timer heap (time.AfterFunc), the process's one renewal
// scheduler, not in a goroutine and ticker each: a burst keeps a lease alive per running step
// (≈ 80 at once at its peak), and each parked loop held a goroutine stack. A renewal runs in
// the goroutine the timer starts for it, so a slow Redis round trip of one lease delays no
// other's; the next renewal is scheduled when one has returned, so one lease's renewals never
// overlap (a ticker's dropped tick, the same).
func KeepAlive(ctx context.Context, every time.Duration, renew func(context.Context) bool) (stop func()) {
	k := &keepAlive{ctx: ctx, every: every, renew: renew}
	k.mu.Lock()
	k.t = time.AfterFunc(every, k.fire)
	k.mu.Unlock()
	return k.stop
}

// keepAlive is one KeepAlive: its timer, and whether it has ended.
type keepAlive struct {
	ctx   context.Context
	every time.Duration
	renew func(context.Context) bool

	mu      sync.Mutex
	t       *time.Timer
	ended   bool           // stopped, ctx ended or renew gave up: no renewal starts any more
	running sync.WaitGroup // the renewal under way, if any
}

// fire is one renewal, run by the timer; it schedules the next unless it has ended.
func (k *keepAlive) fire() {
	k.mu.Lock()
	if k.ended || k.ctx.Err() != nil {
		k.ended = true
		k.mu.Unlock()
		return
	}
	k.running.Add(1) // under mu, before stop's ended = true: stop's Wait sees it
	k.mu.Unlock()
	defer k.running.Done()
	ok := k.renew(k.ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	if !ok {
		k.ended = true
	}
	if !k.ended {
		k.t.Reset(k.every)
	}
}

// stop ends the renewals and waits for the one under way: none runs after it returns.
func (k *keepAlive) stop() {
	k.mu.Lock()
	k.ended = true
	k.t.Stop()
	k.mu.Unlock()
	k.running.Wait()
}
