package testenv

import (
	"bytes"
	"sync"
	"time"
)

// SyncBuffer is an io.Writer that many goroutines (a run's loggers) may write to while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitFor polls cond every 10 ms until it holds, and fails the test when it does not within
// `within`. For what the test cannot be told about (a process's output, a reconciler's result);
// where a part can notify (slackfake.WaitFor), wait on that instead.
func WaitFor(tb TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond) // polling from a test, not in a request path
	}
}
