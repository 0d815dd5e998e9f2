package slackui

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestQueueDetach: with one worker, a job that detaches (deny at "contained") and returns gives
// the worker to the other lanes' jobs, but its own lane's next job waits until its done is
// called (from another goroutine, more than once); the queue drains once it is; no worker is
// added for it, and every job runs once.
func TestQueueDetach(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q := newQueue(10, NewMetrics(nil))
	var mu sync.Mutex
	var ran []string
	ranCh := map[string]chan struct{}{"b0": make(chan struct{}), "c0": make(chan struct{}), "a1": make(chan struct{})}
	var done func()
	detached := make(chan struct{})
	q.start(ctx, 1, func(ctx context.Context, j job) {
		mu.Lock()
		ran = append(ran, j.envelopeID)
		mu.Unlock()
		switch j.envelopeID {
		case "a0":
			done = detachJob(ctx)
			if again := detachJob(ctx); again == nil {
				t.Error("a second detachJob gave no done")
			}
			close(detached) // and a0 returns with its work still to do
		default:
			close(ranCh[j.envelopeID])
		}
	})
	for _, s := range []struct{ lane, id string }{{"inc:a", "a0"}, {"inc:a", "a1"}, {"inc:b", "b0"}} {
		if !q.submit(s.lane, tagged(s.id)) {
			t.Fatalf("submit %s refused", s.id)
		}
	}
	wait := func(id string) {
		t.Helper()
		select {
		case <-ranCh[id]:
		case <-ctx.Done():
			t.Fatalf("%s did not run (ran %v)", id, ran)
		}
	}
	<-detached
	wait("b0") // on the one worker a0 gave back
	if !q.submit("inc:c", tagged("c0")) {
		t.Fatal("submit c0 refused")
	}
	wait("c0") // submitted after a1, run before it: a1's lane is still a0's
	mu.Lock()
	if got := append([]string(nil), ran...); len(got) != 3 || got[0] != "a0" || got[1] != "b0" || got[2] != "c0" {
		t.Errorf("ran %v while a0 is detached, want [a0 b0 c0] (a1 waits for a0: same lane)", got)
	}
	mu.Unlock()
	q.close()
	go func() { done(); done() }() // a0's work ends elsewhere
	wait("a1")
	if !q.wait(ctx) {
		t.Fatal("the queue did not drain")
	}
	q.mu.Lock()
	workers, lanes := q.workers, len(q.lanes)
	q.mu.Unlock()
	if workers != 1 || lanes != 0 || len(ran) != 4 {
		t.Errorf("after the drain: %d workers (want 1), %d lanes left (want 0), ran %v", workers, lanes, ran)
	}
	detachJob(context.Background())() // outside a job: a no-op
}
