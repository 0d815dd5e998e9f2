package session

import (
	"context"
	"sync"
)

// Every read and write of an incident by ID first looks up its user@domain in the ID index (the
// keys are under the user's hash tag): in a 200-user lockdown that was ≈ 50 of a member's
// ≈ 170 Redis round trips. An ID names one user@domain for the incident's whole life (the index
// is written once, with SETNX, and goes only with the incident), so the store remembers the
// answers. A remembered answer is only ever used by a read or write that sees the incident
// itself (its hash, or its chain's script checking the hash): an incident gone meanwhile
// (discarded, expired after RETENTION) is then looked up again, so the caller sees exactly what
// an uncached lookup gives.

// maxMemo bounds what a memo remembers; past it the memo forgets everything at once and learns
// again (a map and a mutex: simpler than an LRU, and a miss costs one round trip).
const maxMemo = 1 << 14

type location struct{ user, domain string }

// memo is a bounded map the store remembers Redis answers in (locations, audit heads, incident
// records). Safe for concurrent use; the zero value is empty and holds up to maxMemo entries.
type memo[V any] struct {
	mu    sync.Mutex
	m     map[string]V
	limit int // 0 = maxMemo
}

func (l *memo[V]) get(k string) (V, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.m[k]
	return v, ok
}

func (l *memo[V]) put(k string, v V) {
	l.mu.Lock()
	defer l.mu.Unlock()
	limit := l.limit
	if limit == 0 {
		limit = maxMemo
	}
	if l.m == nil || len(l.m) >= limit {
		l.m = make(map[string]V)
	}
	l.m[k] = v
}

func (l *memo[V]) forget(k string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, k)
}

// locateCached is locate answered from memory when it can; cached says so, and the caller must
// then treat "no such incident" as a stale answer: forget it and locate again.
func (s *Store) locateCached(ctx context.Context, rawID string) (id, user, domain string, cached bool, err error) {
	if norm, ok := NormalizeID(rawID); ok {
		if loc, ok := s.locs.get(norm); ok {
			return norm, loc.user, loc.domain, true, nil
		}
	}
	id, user, domain, err = s.locate(ctx, rawID)
	if err == nil {
		s.locs.put(id, location{user, domain})
	}
	return id, user, domain, false, err
}
