package slackui

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestQueueReleaseWorker: with one worker, a job that releases it (deny at "contained") lets the
// next lane's job run while it goes on, but its own lane's next job still waits for it; after
// close every job has run once and the queue drains.
func TestQueueReleaseWorker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q := newQueue(10, NewMetrics(nil))
	var mu sync.Mutex
	var ran []string
	otherRan := make(chan struct{})
	finishA0 := make(chan struct{})
	q.start(ctx, 1, func(ctx context.Context, j job) {
		mu.Lock()
		ran = append(ran, j.envelopeID)
		mu.Unlock()
		switch j.envelopeID {
		case "a0":
			releaseWorker(ctx)
			releaseWorker(ctx) // idempotent: one replacement worker
			select {
			case <-otherRan: // b0 ran on the worker a0 gave back
			case <-ctx.Done():
				t.Error("b0 did not run while a0 (released) was still running")
			}
			select {
			case <-finishA0:
			case <-ctx.Done():
			}
		case "b0":
			close(otherRan)
		}
	})
	for _, s := range []struct{ lane, id string }{{"inc:a", "a0"}, {"inc:a", "a1"}, {"inc:b", "b0"}} {
		if !q.submit(s.lane, tagged(s.id)) {
			t.Fatalf("submit %s refused", s.id)
		}
	}
	<-otherRan
	mu.Lock()
	if got := append([]string(nil), ran...); len(got) != 2 || got[0] != "a0" || got[1] != "b0" {
		t.Errorf("ran %v while a0 still runs, want [a0 b0] (a1 waits for a0: same lane)", got)
	}
	mu.Unlock()
	close(finishA0)
	q.close()
	if !q.wait(ctx) {
		t.Fatal("the queue did not drain")
	}
	if len(ran) != 3 || ran[2] != "a1" {
		t.Errorf("ran %v, want a1 last", ran)
	}
	q.mu.Lock()
	workers := q.workers
	q.mu.Unlock()
	if workers != 1 {
		t.Errorf("queue counts %d workers, want 1 (a replacement is no new worker)", workers)
	}
}
