package session

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// AppendIncidentOnly appends to an incident's chain without the copy into the global chain, as a
// process that crashed between the two steps would leave it.
func (s *Store) AppendIncidentOnly(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	e.At = s.nowUTC()
	id, user, domain, err := s.locate(ctx, e.IncidentID)
	if err != nil {
		return AuditEntry{}, err
	}
	e.IncidentID = id
	out, _, err := s.appendChain(ctx, s.incidentChain(user, domain, id), e, "", 0)
	return out, err
}

// WaitReplicas is Run.Replicated for an incident no run of this store holds.
func (s *Store) WaitReplicas(ctx context.Context, rawID string) error {
	id, user, domain, err := s.locate(ctx, rawID)
	if err != nil {
		return err
	}
	return s.waitReplicas(ctx, s.k.inc(user, domain, id))
}

// CopyToGlobal copies, in one batch, the incidents' chains up to the given entries (as Appends
// queued together would) and returns each incident's outcome.
func (s *Store) CopyToGlobal(ctx context.Context, es ...AuditEntry) (map[string]error, error) {
	var batch []*copyReq
	for _, e := range es {
		id, user, domain, err := s.locate(ctx, e.IncidentID)
		if err != nil {
			return nil, err
		}
		batch = append(batch, &copyReq{user: user, domain: domain, id: id, seq: e.Seq, entry: e, done: make(chan error, 1)})
	}
	return s.flush(ctx, batch), nil
}

// LoadSyncScripts loads the sync lock's scripts on every primary, as their first use there
// would: a test that counts round trips would otherwise count the NOSCRIPT fallback of a script's
// first run on a node (EVALSHA, then EVAL), which on a fresh Redis Cluster falls on whichever
// test runs first.
func LoadSyncScripts(ctx context.Context, c redis.Scripter) error {
	for _, sc := range []*redis.Script{syncExtendScript, syncReleaseScript, syncRaiseScript, syncAdvanceScript} {
		if err := sc.Load(ctx, c).Err(); err != nil {
			return err
		}
	}
	return nil
}
