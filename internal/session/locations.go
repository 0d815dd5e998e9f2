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

// maxLocations bounds the remembered answers; past it they are dropped at once and learnt again
// (a map and a mutex: simpler than an LRU, and a miss costs one GET).
const maxLocations = 1 << 14

type location struct{ user, domain string }

// locations is the store's memory of ID → user@domain. Safe for concurrent use.
type locations struct {
	mu sync.Mutex
	m  map[string]location
}

func (l *locations) get(id string) (location, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	loc, ok := l.m[id]
	return loc, ok
}

func (l *locations) put(id string, loc location) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil || len(l.m) >= maxLocations {
		l.m = make(map[string]location)
	}
	l.m[id] = loc
}

func (l *locations) forget(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, id)
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
