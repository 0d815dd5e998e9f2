// Package session is the incident store on Redis: the incident record and its snapshots, atomic
// step transitions with fenced leases, one open incident per user, the last known original dial
// policy per user, tamper-evident audit chains, sealing of the few credentials a snapshot keeps,
// and retention.
//
// Every state change is a compare-and-set on the incident's version, done by a Lua script, so two
// replicas, a double click or a redelivered envelope can never run a step twice. All keys of one
// user share the Redis Cluster hash tag {user@domain}; the few global keys (ID index, open index,
// global audit chain) are written as separate idempotent steps that Repair redoes.
//
// Durability is Redis's: with appendonly yes and appendfsync always, an acknowledged write survives
// a SIGKILL (CheckDurability warns when Redis is configured otherwise).
package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// DefaultRetention is how long a closed incident and its audit are kept when Config.Retention is 0.
const DefaultRetention = 2160 * time.Hour

// maxCAS bounds the compare-and-set retries of one update before it gives up with ErrConflict.
const maxCAS = 64

// Config configures a Store. Only Client is required.
type Config struct {
	// Client is any go-redis client: single node, Sentinel (failover) or Cluster.
	Client redis.UniversalClient
	// AuditKey keys the audit chain's HMAC (AUDIT_KEY, ≥ 32 bytes); nil = plain SHA-256 chain, which
	// detects edits but not a forger with write access to Redis.
	AuditKey []byte
	// Retention is how long closed incidents and their audit are kept; 0 = DefaultRetention.
	Retention time.Duration
	Logger    zerolog.Logger
	// Now is the clock (tests inject one); nil = time.Now. Stored times are UTC.
	Now func() time.Time
	// Prefix of every key; "" = "cr".
	Prefix string
	// MinReplicas is how many replicas must acknowledge a write-ahead record (original, device
	// snapshot) before the PBX write it protects (REDIS_MIN_REPLICAS): 0 = none, MinReplicasAuto
	// = as many as the primary reports connected.
	MinReplicas int
	// ReplicaTimeout bounds that wait; 0 = DefaultReplicaTimeout.
	ReplicaTimeout time.Duration
}

// Store is the incident store. It is safe for concurrent use by many goroutines and processes.
type Store struct {
	rdb       redis.UniversalClient
	k         keys
	auditKey  []byte
	retention time.Duration
	log       zerolog.Logger
	now       func() time.Time

	minReplicas    int
	replicaTimeout time.Duration

	undecodable undecodable // incidents ListOpen skipped

	copier globalCopier    // batches the copies into the global audit chain (auditcopy.go)
	locs   memo[location]  // ID → user@domain, as the ID index says (locations.go)
	heads  memo[auditHead] // incident ID → its audit chain's head as this store last wrote it (audit.go)
	recs   memo[rec]       // incident ID → its record as this store last read or wrote it (mutateFrom)
}

// rec is an incident's record as stored: its JSON and the write token stored with it ("" = none,
// as Open stores it). The two are the expected record of a compare-and-set (updateScript).
type rec struct {
	data string
	w    string
}

// maxRecs bounds the incident records a store remembers (≈ 1–2 KB each): more than the incidents
// one burst keeps open at once.
const maxRecs = 1024

// New returns a Store. It returns ErrInvalid (wrapped) for a missing client or a short AuditKey; it
// does not talk to Redis (see Ping and CheckDurability). The snapshot key is the Keyring's.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("session: no redis client: %w", ErrInvalid)
	}
	if cfg.AuditKey != nil && len(cfg.AuditKey) < 32 {
		return nil, fmt.Errorf("session: audit key has %d bytes, need at least 32: %w", len(cfg.AuditKey), ErrInvalid)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "cr"
	}
	if !validName(cfg.Prefix, 32) {
		return nil, fmt.Errorf("session: key prefix %q: %w", cfg.Prefix, ErrInvalid)
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MinReplicas < MinReplicasAuto {
		return nil, fmt.Errorf("session: min replicas %d: %w", cfg.MinReplicas, ErrInvalid)
	}
	if cfg.ReplicaTimeout <= 0 {
		cfg.ReplicaTimeout = DefaultReplicaTimeout
	}
	s := &Store{
		minReplicas:    cfg.MinReplicas,
		replicaTimeout: cfg.ReplicaTimeout,
		rdb:            cfg.Client,
		k:              keys{p: cfg.Prefix},
		retention:      cfg.Retention,
		log:            cfg.Logger,
		now:            cfg.Now,
		recs:           memo[rec]{limit: maxRecs},
	}
	if cfg.AuditKey != nil {
		s.auditKey = append([]byte(nil), cfg.AuditKey...)
	}
	return s, nil
}

// nowUTC is the store's clock in UTC, without a monotonic reading (so that stored and compared
// times agree after a JSON round trip).
func (s *Store) nowUTC() time.Time { return s.now().UTC().Round(0) }

// errNoChange, returned by a mutation, ends it without a write (write-once fields already set).
var errNoChange = errors.New("no change")

// mutation carries the side effects an incident write makes in the same script.
type mutation struct {
	origOp   string // "" | "set" | "del": the user's last known original
	origJSON string
	keptOp   string // "" | "set" | "del": the user's kept devices (Incident.Kept)
	keptJSON string
	close    bool // the incident closes: retention TTL on its keys, open pointer removed
	// deniedAdd is a deny policy to add to the user's set of them (SaveOriginal); "" = none.
	deniedAdd string
	// lines are audit entries that record the change, appended to the incident's chain in the
	// same script (Lines).
	lines []AuditEntry
}

// Open stores a new open incident for inc.User@inc.Domain, or returns the user's open incident
// (created = false) if there is one: at most one open incident per user, decided atomically.
// It fills ID (when empty), CreatedAt, State = open, every step ready and Version = 1; the domain is
// lower-cased. Errors: ErrInvalid for a bad user/domain or ID.
func (s *Store) Open(ctx context.Context, inc Incident) (Incident, bool, error) {
	user, domain, err := canon(inc.User, inc.Domain)
	if err != nil {
		return Incident{}, false, err
	}
	inc.User, inc.Domain = user, domain
	givenID := inc.ID != ""
	if givenID {
		id, ok := NormalizeID(inc.ID)
		if !ok {
			return Incident{}, false, fmt.Errorf("incident id %q: %w", inc.ID, ErrInvalid)
		}
		inc.ID = id
	}
	inc.CreatedAt = s.nowUTC()
	inc.State = StateOpen
	inc.ClosedBy, inc.ClosedAt, inc.CloseNote = "", time.Time{}, ""
	inc.Steps = make(map[Step]*StepState, len(Steps))
	for _, st := range Steps {
		inc.Steps[st] = &StepState{Step: st, Status: StatusReady}
	}
	inc.Version = 1

	for attempt := 0; attempt < 8; attempt++ {
		if !givenID {
			if inc.ID, err = NewID(); err != nil {
				return Incident{}, false, err
			}
		}
		// The ID index first: once the incident exists, Get always finds it.
		ok, err := s.rdb.SetNX(ctx, s.k.idIndex(inc.ID), inc.Key(), 0).Result()
		if err != nil {
			return Incident{}, false, fmt.Errorf("index incident %s: %w", inc.ID, err)
		}
		if !ok {
			if givenID {
				return Incident{}, false, fmt.Errorf("incident id %s already used: %w", inc.ID, ErrInvalid)
			}
			continue // collision of random IDs
		}
		data, err := json.Marshal(inc)
		if err != nil {
			return Incident{}, false, fmt.Errorf("encode incident: %w", err)
		}
		res, err := openScript.Run(ctx, s.rdb, []string{s.k.openPtr(user, domain), s.k.inc(user, domain, inc.ID)},
			inc.ID, data).Slice()
		if err != nil {
			return Incident{}, false, fmt.Errorf("open incident for %s: %w", inc.Key(), err)
		}
		code, _ := res[0].(int64)
		other, _ := res[1].(string)
		// {0, our own ID}: the script ran and go-redis sent it again (its reply was lost when
		// Redis went down, see shouldRetry: an EOF is retried), so the second run found the
		// pointer the first set. Only this call holds the ID's index (SETNX above), so no other
		// Open made that incident: it is ours, created. Taken for another user's (code 0), its
		// index would be deleted below and the incident never found by ID again.
		if code == 0 && other == inc.ID {
			code = 1
		}
		if code == 1 {
			s.locs.put(inc.ID, location{user, domain}) // as the index just written says
			s.recs.put(inc.ID, rec{data: string(data)})
			if err := s.rdb.SAdd(ctx, s.k.openSet(), inc.ID).Err(); err != nil {
				// The incident is stored and indexed by ID; Repair re-adds it to the open index.
				s.log.Warn().Err(err).Str("incident", inc.ID).Msg("add incident to the open index; Repair will")
			}
			return inc, true, nil
		}
		if err := s.rdb.Del(ctx, s.k.idIndex(inc.ID)).Err(); err != nil {
			s.log.Warn().Err(err).Str("incident", inc.ID).Msg("remove unused incident id index")
		}
		if code == 2 {
			if givenID {
				return Incident{}, false, fmt.Errorf("incident id %s already used: %w", inc.ID, ErrInvalid)
			}
			continue
		}
		existing, err := s.load(ctx, user, domain, other)
		if errors.Is(err, ErrNotFound) || err == nil && !existing.Open() {
			continue // closed in between: try again
		}
		if err != nil {
			return Incident{}, false, err
		}
		return existing, false, nil
	}
	return Incident{}, false, fmt.Errorf("open incident for %s: %w", inc.Key(), ErrConflict)
}

// Get returns an incident by ID (any case; see NormalizeID). Errors: ErrNotFound (also for a
// malformed ID or an incident expired after RETENTION).
func (s *Store) Get(ctx context.Context, rawID string) (Incident, error) {
	id, user, domain, cached, err := s.locateCached(ctx, rawID)
	if err != nil {
		return Incident{}, err
	}
	inc, err := s.load(ctx, user, domain, id)
	if cached && errors.Is(err, ErrNotFound) {
		s.locs.forget(id) // gone meanwhile (or never where remembered): ask the index
		return s.Get(ctx, rawID)
	}
	return inc, err
}

// FindOpen returns the open incident of user@domain. Errors: ErrNotFound, ErrInvalid.
func (s *Store) FindOpen(ctx context.Context, user, domain string) (Incident, error) {
	user, domain, err := canon(user, domain)
	if err != nil {
		return Incident{}, err
	}
	id, err := s.rdb.Get(ctx, s.k.openPtr(user, domain)).Result()
	if errors.Is(err, redis.Nil) {
		return Incident{}, fmt.Errorf("open incident for %s@%s: %w", user, domain, ErrNotFound)
	}
	if err != nil {
		return Incident{}, fmt.Errorf("find open incident for %s@%s: %w", user, domain, err)
	}
	inc, err := s.load(ctx, user, domain, id)
	if err == nil && !inc.Open() {
		return Incident{}, fmt.Errorf("open incident for %s@%s: %w", user, domain, ErrNotFound)
	}
	return inc, err
}

// ListOpen returns every open incident, oldest first. It reads the open index; Repair fixes that
// index if a crash left it behind. An incident that no longer decodes is skipped, logged when
// first seen and listed by Undecodable until it decodes again or leaves the index.
func (s *Store) ListOpen(ctx context.Context) ([]Incident, error) {
	ids, err := s.rdb.SMembers(ctx, s.k.openSet()).Result()
	if err != nil {
		return nil, fmt.Errorf("list open incidents: %w", err)
	}
	out := make([]Incident, 0, len(ids))
	var bad []string
	for _, id := range ids {
		inc, err := s.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if errors.Is(err, ErrUndecodable) {
			// One bad record must not stop every resume, list and reminder: skip and report it.
			bad = append(bad, id)
			continue
		}
		if err != nil {
			return nil, err
		}
		if inc.Open() {
			out = append(out, inc)
		}
	}
	s.undecodable.set(s.log, bad)
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Update changes an incident with fn under compare-and-set on its version: fn gets a fresh copy
// (its Version already holds the version this write creates) and may be called several times when
// writers race; fn returning an error aborts with that error. fn must not change the ID, user,
// domain or state (use Close). Errors: ErrNotFound, ErrInvalid, ErrConflict, fn's error.
func (s *Store) Update(ctx context.Context, id string, fn func(*Incident) error) (Incident, error) {
	return s.update(ctx, id, func(inc *Incident, _ *mutation) error { return fn(inc) })
}

// update is Update whose fn may also say what the write makes beside the record (its audit lines).
func (s *Store) update(ctx context.Context, id string, fn func(*Incident, *mutation) error) (Incident, error) {
	return s.mutate(ctx, id, func(inc *Incident, m *mutation) error {
		id, user, domain, state, v := inc.ID, inc.User, inc.Domain, inc.State, inc.Version
		if err := fn(inc, m); err != nil {
			return err
		}
		if inc.ID != id || inc.User != user || inc.Domain != domain || inc.State != state {
			return fmt.Errorf("update of incident %s changes its identity or state: %w", id, ErrInvalid)
		}
		inc.Version = v
		return nil
	})
}

// mutate is the compare-and-set loop under every change. On an error from fn it returns the
// incident as last read, so callers can show the current state with the refusal.
func (s *Store) mutate(ctx context.Context, rawID string, fn func(*Incident, *mutation) error) (Incident, error) {
	return s.mutateFrom(ctx, rawID, nil, fn)
}

// mutateFrom is mutate whose first attempt starts from first, the incident's record as the caller
// has just read it (nil = read it), one round trip less.
//
// Without first, the first attempt starts from the record this store last read or wrote for the
// incident (recs), when it remembers one: the compare-and-set on the version and its write token
// makes a stale one harmless (the script refuses it, and the next attempt reads the incident),
// and fn's refusal of a remembered state is not trusted either (fn is asked again about the
// stored one). Most changes of an incident follow a read or a write of it by this process: one
// round trip less each, ≈ 7 per incident of a burst.
func (s *Store) mutateFrom(ctx context.Context, rawID string, first *rec, fn func(*Incident, *mutation) error) (Incident, error) {
	id, user, domain, cached, err := s.locateCached(ctx, rawID)
	if err != nil {
		return Incident{}, err
	}
	stale := func() bool { // a remembered location whose incident is gone: ask the index again
		if !cached {
			return false
		}
		s.locs.forget(id)
		return true
	}
	remembered := false // first is from recs, not read by the caller: maybe stale
	if r, ok := s.recs.get(id); first == nil && ok {
		first, remembered = &r, true
	}
	for attempt := 0; attempt < maxCAS; attempt++ {
		var cur rec
		var err error
		if first != nil {
			cur = *first
		} else {
			cur, err = s.loadRaw(ctx, user, domain, id)
			remembered = false
		}
		first = nil
		raw := cur.data
		if errors.Is(err, ErrNotFound) && stale() {
			return s.mutate(ctx, rawID, fn)
		}
		if err != nil {
			return Incident{}, err
		}
		inc, err := decodeIncident(id, raw)
		if err != nil {
			if remembered {
				continue
			}
			return Incident{}, err
		}
		old := inc.Version
		inc.Version = old + 1
		var m mutation
		if err := fn(&inc, &m); err != nil {
			if remembered {
				continue // decided from memory: decide from the stored incident
			}
			stored, derr := decodeIncident(id, raw) // fn may have changed inc in place
			if derr != nil {
				return Incident{}, derr
			}
			if errors.Is(err, errNoChange) {
				return stored, nil
			}
			return stored, err
		}
		b, err := json.Marshal(inc)
		if err != nil {
			return Incident{}, fmt.Errorf("encode incident %s: %w", id, err)
		}
		data := string(b)
		var ttl int64
		if m.close {
			ttl = s.retention.Milliseconds()
		}
		la, err := s.lineArgs(ctx, user, domain, id, m.lines) // lines.go
		if err != nil {
			return Incident{}, err
		}
		token := writeToken()
		res, err := updateScript.Run(ctx, s.rdb,
			[]string{s.k.inc(user, domain, id), s.k.openPtr(user, domain), s.k.original(user, domain),
				s.k.keptDevices(user, domain), s.k.denied(user, domain), s.k.audit(user, domain, id),
				s.k.auditHead(user, domain, id)},
			append([]any{old, inc.Version, data, m.origOp, m.origJSON, ttl, id, m.keptOp, m.keptJSON, m.deniedAdd,
				token, cur.w}, la.args...)...).Int()
		if err != nil {
			s.recs.forget(id) // the script may have run
			if len(m.lines) > 0 {
				s.heads.forget(id) // the script may have run: read the head next time
			}
			return Incident{}, fmt.Errorf("update incident %s: %w", id, err)
		}
		switch res {
		case 1:
			if m.close {
				s.recs.forget(id) // closed: no more changes to speed up
			} else {
				s.recs.put(id, rec{data, token})
			}
			s.linesWritten(user, domain, id, la)
			return inc, nil
		case 0:
			s.recs.forget(id)
			if remembered {
				continue // our memory was behind: read the incident, no writer to wait for
			}
		case 2: // the audit head moved (another writer): read it
			s.heads.forget(id)
			if la.remembered {
				continue
			}
		case -2:
			// Edited outside the bot: a Redis error as far as the caller is concerned.
			return Incident{}, fmt.Errorf("update incident %s: its audit chain or %s@%s's deny policies hold another type of key",
				id, user, domain)
		case -1:
			s.recs.forget(id)
			if stale() {
				return s.mutate(ctx, rawID, fn)
			}
			return Incident{}, fmt.Errorf("incident %s: %w", id, ErrNotFound)
		}
		if err := pause(ctx, attempt); err != nil {
			return Incident{}, fmt.Errorf("update incident %s: %w", id, err)
		}
	}
	return Incident{}, fmt.Errorf("update incident %s: %w", id, ErrConflict)
}

// pause waits a short random time before a compare-and-set retry, so racing writers spread out.
func pause(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(min(attempt+1, 20)) * int64(time.Millisecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// locate normalizes an ID and finds the incident's user and domain through the ID index.
func (s *Store) locate(ctx context.Context, rawID string) (id, user, domain string, err error) {
	id, ok := NormalizeID(rawID)
	if !ok {
		return "", "", "", fmt.Errorf("incident %q: %w", rawID, ErrNotFound)
	}
	ud, err := s.rdb.Get(ctx, s.k.idIndex(id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", "", "", fmt.Errorf("incident %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", "", "", fmt.Errorf("look up incident %s: %w", id, err)
	}
	user, domain, ok = splitKey(ud)
	if !ok {
		return "", "", "", fmt.Errorf("incident %s: index holds %q: %w", id, ud, ErrNotFound)
	}
	return id, user, domain, nil
}

// load reads and decodes one incident.
func (s *Store) load(ctx context.Context, user, domain, id string) (Incident, error) {
	r, err := s.loadRaw(ctx, user, domain, id)
	if err != nil {
		return Incident{}, err
	}
	return decodeIncident(id, r.data)
}

// loadRaw reads one incident's record.
func (s *Store) loadRaw(ctx context.Context, user, domain, id string) (rec, error) {
	return s.rawOf(id, s.readRec(ctx, s.rdb, user, domain, id))
}

// readRec is the HMGET of an incident hash's record, on its own or in a pipeline: its data and
// write token (recOf reads it).
func (s *Store) readRec(ctx context.Context, c redis.Cmdable, user, domain, id string) *redis.SliceCmd {
	return c.HMGet(ctx, s.k.inc(user, domain, id), "data", "w")
}

// recOf is an incident's record as cmd (readRec) read it: redis.Nil when there is none.
func recOf(cmd *redis.SliceCmd) (rec, error) {
	vals, err := cmd.Result()
	if err != nil {
		return rec{}, err
	}
	data, ok := vals[0].(string)
	if !ok {
		return rec{}, redis.Nil
	}
	w, _ := vals[1].(string)
	return rec{data, w}, nil
}

// rawOf is an incident's record as cmd (readRec) read it, remembered for its next change.
func (s *Store) rawOf(id string, cmd *redis.SliceCmd) (rec, error) {
	r, err := recOf(cmd)
	if errors.Is(err, redis.Nil) {
		s.recs.forget(id)
		return rec{}, fmt.Errorf("incident %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return rec{}, fmt.Errorf("read incident %s: %w", id, err)
	}
	s.recs.put(id, r)
	return r, nil
}

// decodeIncident decodes a stored incident; every step is present afterwards.
func decodeIncident(id, data string) (Incident, error) {
	var inc Incident
	if err := json.Unmarshal([]byte(data), &inc); err != nil {
		return Incident{}, fmt.Errorf("decode incident %s: %w: %w", id, ErrUndecodable, err)
	}
	if inc.Steps == nil {
		inc.Steps = map[Step]*StepState{}
	}
	for _, st := range Steps {
		if inc.Steps[st] == nil {
			inc.Steps[st] = &StepState{Step: st, Status: StatusReady}
		}
	}
	return inc, nil
}
