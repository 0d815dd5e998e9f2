package session

import (
	"context"
	"sync"
	"time"
)

// KeepAlive calls renew every `every` until the returned stop is called, ctx ends or renew
// returns false (the lease or lock is lost, nothing left to keep). stop waits for the loop, so
// no renewal runs after it returns. It is the one renewal loop of the step leases, the lockdown
// runs' leases and the card's sync lock, which differ only in what one renewal does.
func KeepAlive(ctx context.Context, every time.Duration, renew func(context.Context) bool) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if !renew(ctx) {
					return
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
