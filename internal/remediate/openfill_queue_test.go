package remediate

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/testenv"
)

// TestFillQueueBounded: 50 follow-up reads queued at once run on at most fillWorkers goroutines,
// each exactly once, and Wait returns once the queue is empty;
// the queue then starts workers again for new work.
func TestFillQueueBounded(t *testing.T) {
	e := &Engine{bg: &sync.WaitGroup{}, fills: &fillQueue{}}
	release := make(chan struct{})
	var mu sync.Mutex
	running, most := 0, 0
	ran := map[int]int{}
	const n = 50
	for i := range n {
		e.fills.add(e, func() {
			mu.Lock()
			running++
			most = max(most, running)
			ran[i]++
			mu.Unlock()
			<-release
			mu.Lock()
			running--
			mu.Unlock()
		})
	}
	// Every worker busy (the bound reached) before any job may finish.
	testenv.WaitFor(t, 10*time.Second, "fillWorkers jobs running", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return running == fillWorkers
	})
	close(release)
	done := make(chan struct{})
	go func() { e.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return")
	}
	if most != fillWorkers {
		t.Errorf("%d jobs ran at once, want %d", most, fillWorkers)
	}
	for i := range n {
		if ran[i] != 1 {
			t.Errorf("job %d ran %d times, want once", i, ran[i])
		}
	}
	if e.fills.running != 0 || len(e.fills.jobs) != 0 {
		t.Errorf("after Wait: %d workers, %d jobs left", e.fills.running, len(e.fills.jobs))
	}
	again := make(chan struct{})
	e.fills.add(e, func() { close(again) })
	select {
	case <-again:
	case <-time.After(10 * time.Second):
		t.Fatal("a job added after the queue emptied never ran")
	}
	e.Wait()
}

// TestBackgroundQueued: the background work (the containment's evidence, the restore gate, the
// opens' follow-up reads) waits in the fill queue: 30 started at once run on at most fillWorkers
// goroutines, each once, each bounded by evidenceTimeout from when it was started, not from
// its turn.
func TestBackgroundQueued(t *testing.T) {
	e := &Engine{bg: &sync.WaitGroup{}, fills: &fillQueue{}, log: zerolog.Nop()}
	release := make(chan struct{})
	var mu sync.Mutex
	running, most := 0, 0
	ran := map[int]int{}
	const n = 30
	var deadlines, latest [n]time.Time
	for i := range n {
		e.background(context.Background(), "INC-1", "test", func(ctx context.Context) error {
			mu.Lock()
			running++
			most = max(most, running)
			ran[i]++
			deadlines[i], _ = ctx.Deadline()
			mu.Unlock()
			<-release
			mu.Lock()
			running--
			mu.Unlock()
			return nil
		})
		latest[i] = time.Now().Add(evidenceTimeout) // its deadline is counted from before this
	}
	testenv.WaitFor(t, 10*time.Second, "fillWorkers jobs running", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return running == fillWorkers
	})
	close(release)
	e.Wait()
	if most != fillWorkers {
		t.Errorf("%d background jobs ran at once, want %d", most, fillWorkers)
	}
	for i := range n {
		if ran[i] != 1 {
			t.Errorf("job %d ran %d times, want once", i, ran[i])
		}
		if deadlines[i].IsZero() || deadlines[i].After(latest[i]) {
			t.Errorf("job %d: deadline %v, want by %v (evidenceTimeout from its start)", i, deadlines[i], latest[i])
		}
	}
}
