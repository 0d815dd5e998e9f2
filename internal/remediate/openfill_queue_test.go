package remediate

import (
	"sync"
	"testing"
	"time"

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
