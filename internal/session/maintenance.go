package session

// This file holds what an operator runs on the store itself, not on an incident: the /readyz
// ping, the durability check of the Redis configuration, Repair (run by the engine's Reconcile
// once per period across replicas) and the list of open incidents that no longer decode.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Ping checks that Redis answers (for /readyz). Errors: the Redis error.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// masters is what a Cluster client offers to reach every master.
type masters interface {
	ForEachMaster(ctx context.Context, fn func(ctx context.Context, client *redis.Client) error) error
}

// eachNode runs fn on every master of a Cluster, or once on the client itself.
func (s *Store) eachNode(ctx context.Context, fn func(ctx context.Context, c redis.Cmdable, name string) error) error {
	if m, ok := s.rdb.(masters); ok {
		return m.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return fn(ctx, c, c.Options().Addr)
		})
	}
	return fn(ctx, s.rdb, "redis")
}

// CheckDurability reads appendonly, appendfsync and maxmemory-policy of every master and returns one
// warning per setting that can lose an acknowledged write (the caller logs them and shows them on
// /readyz). A server that refuses CONFIG (managed Redis often does) gives a warning that it could not
// be checked, not an error (replication: CheckReplication). Errors: connection failures.
func (s *Store) CheckDurability(ctx context.Context) ([]string, error) {
	var (
		mu    sync.Mutex
		warns []string
	)
	warn := func(w string) {
		mu.Lock()
		defer mu.Unlock()
		warns = append(warns, w)
	}
	err := s.eachNode(ctx, func(ctx context.Context, c redis.Cmdable, name string) error {
		cfg, err := c.ConfigGet(ctx, "*").Result()
		if err != nil {
			var rerr redis.Error
			if errors.As(err, &rerr) {
				warn(fmt.Sprintf("%s: could not check durability (CONFIG GET refused: %v); make sure appendonly is yes, appendfsync always and maxmemory-policy noeviction", name, err))
				return nil
			}
			return fmt.Errorf("read config of %s: %w", name, err)
		}
		if v := cfg["appendonly"]; v != "yes" {
			warn(fmt.Sprintf("%s: appendonly is %q: a restart loses every write since the last snapshot; set appendonly yes", name, v))
		} else if v := cfg["appendfsync"]; v != "always" {
			warn(fmt.Sprintf("%s: appendfsync is %q: a crash can lose acknowledged writes (up to a second with everysec); set appendfsync always", name, v))
		}
		if v := cfg["maxmemory-policy"]; v != "noeviction" {
			warn(fmt.Sprintf("%s: maxmemory-policy is %q: under memory pressure Redis may evict incidents or audit; set noeviction", name, v))
		}
		return nil
	})
	if err != nil {
		return warns, err
	}
	sort.Strings(warns)
	for _, w := range warns {
		s.log.Warn().Str("check", "durability").Msg(w)
	}
	return warns, nil
}

// RepairClaimed runs Repair when no replica has run it in the last `every` (a SET NX claim that
// expires after every, so that a replica dying mid-pass delays the next one by a period at most).
// ran is false when another replica holds the claim. Errors: as Repair, and the claim's Redis error.
func (s *Store) RepairClaimed(ctx context.Context, every time.Duration) (rep RepairReport, ran bool, err error) {
	ok, err := s.rdb.SetNX(ctx, s.k.repairClaim(), s.nowUTC().Format(time.RFC3339), every).Result()
	if err != nil {
		return rep, false, fmt.Errorf("claim repair: %w", err)
	}
	if !ok {
		return rep, false, nil
	}
	rep, err = s.Repair(ctx)
	return rep, true, err
}

// RepairReport counts what Repair fixed.
type RepairReport struct {
	Indexed  int // open incidents whose ID index or open-index entry was missing
	Removed  int // IDs removed from the open index (closed, discarded or expired)
	Mirrored int // audit entries copied into the global chain
}

// Repair redoes the idempotent global steps a crash may have left undone: every incident that is
// open (by its user's open pointer) gets its ID index, its open-index entry and its audit copied to
// the global chain; IDs of incidents that are no longer open leave the open index. It is safe to run
// at any time and from several replicas. Errors: Redis errors, *AuditError if an incident's chain
// cannot be copied (joined, the pass continues).
func (s *Store) Repair(ctx context.Context) (RepairReport, error) {
	var rep RepairReport
	var errs []error
	pattern := s.k.openPtrPattern()
	var (
		mu   sync.Mutex
		ptrs []string
	)
	err := s.eachNode(ctx, func(ctx context.Context, c redis.Cmdable, _ string) error {
		it := c.Scan(ctx, 0, pattern, 200).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			ptrs = append(ptrs, it.Val())
			mu.Unlock()
		}
		return it.Err()
	})
	if err != nil {
		return rep, fmt.Errorf("scan open incidents: %w", err)
	}
	open := map[string]bool{}
	for _, ptr := range ptrs {
		user, domain, ok := s.k.openPtrUser(ptr)
		if !ok {
			continue
		}
		id, err := s.rdb.Get(ctx, ptr).Result()
		if errors.Is(err, redis.Nil) {
			continue // closed meanwhile
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", ptr, err))
			continue
		}
		open[id] = true
		ud, err := s.rdb.Get(ctx, s.k.idIndex(id)).Result()
		member, merr := s.rdb.SIsMember(ctx, s.k.openSet(), id).Result()
		if merr != nil {
			errs = append(errs, fmt.Errorf("check open index for %s: %w", id, merr))
			continue
		}
		if err != nil || ud != user+"@"+domain || !member {
			if err := s.rdb.Set(ctx, s.k.idIndex(id), user+"@"+domain, 0).Err(); err != nil {
				errs = append(errs, fmt.Errorf("index %s: %w", id, err))
				continue
			}
			if err := s.rdb.SAdd(ctx, s.k.openSet(), id).Err(); err != nil {
				errs = append(errs, fmt.Errorf("add %s to the open index: %w", id, err))
				continue
			}
			rep.Indexed++
		}
		n, err := s.mirror(ctx, user, domain, id)
		rep.Mirrored += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	ids, err := s.rdb.SMembers(ctx, s.k.openSet()).Result()
	if err != nil {
		return rep, errors.Join(append(errs, fmt.Errorf("list open index: %w", err))...)
	}
	for _, id := range ids {
		if open[id] {
			continue
		}
		inc, err := s.Get(ctx, id)
		if err == nil && inc.Open() {
			continue // opened after the scan
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		if err == nil { // closed: make sure its audit reached the global chain before it expires
			n, merr := s.mirror(ctx, inc.User, inc.Domain, inc.ID)
			rep.Mirrored += n
			if merr != nil {
				errs = append(errs, merr)
			}
		}
		if err := s.rdb.SRem(ctx, s.k.openSet(), id).Err(); err != nil {
			errs = append(errs, fmt.Errorf("remove %s from the open index: %w", id, err))
			continue
		}
		rep.Removed++
	}
	return rep, errors.Join(errs...)
}

// undecodable remembers the incidents the last ListOpen skipped because they do not decode.
type undecodable struct {
	mu  sync.Mutex
	ids []string
}

// set replaces the list, logging each ID not in the previous one (once, not at every pass).
func (u *undecodable) set(log zerolog.Logger, ids []string) {
	sort.Strings(ids)
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, id := range ids {
		if !slices.Contains(u.ids, id) {
			log.Error().Str("incident", id).Err(ErrUndecodable).
				Msg("open incident does not decode: skipped by resume, list and reminders until it is repaired by hand")
		}
	}
	u.ids = ids
}

// Undecodable lists the IDs of the open incidents the last ListOpen skipped because their record
// does not decode (for /readyz and the metrics).
func (s *Store) Undecodable() []string {
	s.undecodable.mu.Lock()
	defer s.undecodable.mu.Unlock()
	return slices.Clone(s.undecodable.ids)
}
