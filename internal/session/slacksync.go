package session

// This file holds what the Slack app keeps in Redis about its own work, so that replicas and
// restarts agree on it: which deliveries were already handled (dedupe), the per-incident sync
// lock with the two cursors it guards (the newest card stamp written, the last audit seq posted to
// the thread), and the throttle of the global audit head posted to AUDIT_CHANNEL. None of it is
// incident state; losing it re-posts a card or one audit line at worst, never a step.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DeliveryTTL is how long a delivery is remembered. Slack redelivers within minutes at most, and a
// double click arrives within seconds; a day is generous and still bounded.
const DeliveryTTL = 24 * time.Hour

// FirstDelivery records a Slack delivery (an envelope, a command's trigger, a click) by key and
// reports whether this is its first arrival within DeliveryTTL (SET NX). The engine's atomic step
// transitions are the real guarantee; this keeps the edge quiet (no second "already done" for one
// click). Errors: the Redis error (the caller decides whether to go on).
func (s *Store) FirstDelivery(ctx context.Context, key string) (bool, error) {
	firsts, err := s.FirstDeliveries(ctx, key)
	if err != nil {
		return false, err
	}
	return firsts[0], nil
}

// FirstDeliveries is FirstDelivery for several keys in one round trip, so one fsync (a click's
// envelope and the click itself, before its step starts): firsts[i] answers keys[i].
// Errors: the Redis error.
func (s *Store) FirstDeliveries(ctx context.Context, keys ...string) ([]bool, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.BoolCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.SetNX(ctx, s.k.seen(k), 1, DeliveryTTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("dedupe %q: %w", keys, err)
	}
	firsts := make([]bool, len(keys))
	for i, c := range cmds {
		firsts[i] = c.Val()
	}
	return firsts, nil
}

// SyncLockTTL bounds how long a replica that died mid-sync blocks the others' card updates. The
// holder extends it before every Slack call, so it only needs to outlast one call (10 s timeout).
const SyncLockTTL = 10 * time.Second

// ErrSyncLockLost means another replica took the incident's sync lock over: stop without writing.
var ErrSyncLockLost = errors.New("sync lock lost")

// SyncLock is one holder's claim on an incident's card and thread sync, and the only way to move
// the cursors it guards. Its keys share the incident's hash tag {INC-…}, so its scripts run on one
// Redis Cluster slot.
type SyncLock struct {
	s     *Store
	id    string
	token string
}

// TrySyncLock takes the incident's sync lock, or reports false when another sync holds it.
// Errors: the Redis error.
func (s *Store) TrySyncLock(ctx context.Context, incidentID string) (*SyncLock, bool, error) {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	l := &SyncLock{s: s, id: incidentID, token: hex.EncodeToString(b)}
	ok, err := s.rdb.SetNX(ctx, s.k.syncLock(incidentID), l.token, SyncLockTTL).Result()
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", incidentID, err)
	}
	return l, ok, nil
}

// Extend renews the lock before a slow Slack call. Errors: ErrSyncLockLost when it is no longer
// ours, else the Redis error.
func (l *SyncLock) Extend(ctx context.Context) error {
	n, err := syncExtendScript.Run(ctx, l.s.rdb, []string{l.s.k.syncLock(l.id)}, l.token, SyncLockTTL.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("extend sync lock: %w", err)
	}
	if n == 0 {
		return ErrSyncLockLost
	}
	return nil
}

// Release gives the lock up if it is still ours (best effort: it expires anyway).
func (l *SyncLock) Release(ctx context.Context) {
	_ = syncReleaseScript.Run(ctx, l.s.rdb, []string{l.s.k.syncLock(l.id)}, l.token).Err()
}

// CardStamp is the stamp of the newest render written to the incident's card (0: none yet).
// Errors: the Redis error.
func (l *SyncLock) CardStamp(ctx context.Context) (int64, error) {
	n, err := l.s.counter(ctx, l.s.k.syncCard(l.id))
	if err != nil {
		return 0, fmt.Errorf("read card stamp: %w", err)
	}
	return n, nil
}

// RaiseCardStamp records that a render with stamp is on the card; the stamp only grows (a lower
// one is ignored). Errors: ErrSyncLockLost, else the Redis error.
func (l *SyncLock) RaiseCardStamp(ctx context.Context, stamp int64) error {
	n, err := syncRaiseScript.Run(ctx, l.s.rdb, []string{l.s.k.syncLock(l.id), l.s.k.syncCard(l.id)}, l.token,
		strconv.FormatInt(stamp, 10), l.s.retention.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("record card stamp: %w", err)
	}
	if n < 0 {
		return ErrSyncLockLost
	}
	return nil
}

// ThreadPosted is the seq of the last audit entry posted to the incident's thread (0: none).
// Errors: the Redis error.
func (l *SyncLock) ThreadPosted(ctx context.Context) (int64, error) {
	n, err := l.s.counter(ctx, l.s.k.syncPosted(l.id))
	if err != nil {
		return 0, fmt.Errorf("read thread cursor: %w", err)
	}
	return n, nil
}

// AdvanceThread moves the thread cursor from seq from to seq to (compare-and-set), right after
// entry to was posted. Errors: ErrSyncLockLost; an error when the cursor is not at from (it moved
// under the lock, which only a bug can do); else the Redis error.
func (l *SyncLock) AdvanceThread(ctx context.Context, from, to int64) error {
	n, err := syncAdvanceScript.Run(ctx, l.s.rdb, []string{l.s.k.syncLock(l.id), l.s.k.syncPosted(l.id)}, l.token,
		strconv.FormatInt(from, 10), strconv.FormatInt(to, 10), l.s.retention.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("advance thread cursor: %w", err)
	}
	if n < 0 {
		return ErrSyncLockLost
	}
	if n == 0 {
		return fmt.Errorf("thread cursor of %s moved under the lock", l.id)
	}
	return nil
}

// ClaimHeadPost reports whether this replica should post the global audit head seq now: only when
// seq is past the last one posted, and at most once per every across replicas (SET NX throttle).
// Errors: the Redis error.
func (s *Store) ClaimHeadPost(ctx context.Context, seq int64, every time.Duration) (bool, error) {
	last, err := s.counter(ctx, s.k.headPosted())
	if err != nil {
		return false, fmt.Errorf("read posted audit head: %w", err)
	}
	if seq <= last {
		return false, nil
	}
	ok, err := s.rdb.SetNX(ctx, s.k.headThrottle(), 1, every).Result()
	if err != nil {
		return false, fmt.Errorf("throttle audit head post: %w", err)
	}
	return ok, nil
}

// HeadPosted records that the global audit head seq was posted. Errors: the Redis error.
func (s *Store) HeadPosted(ctx context.Context, seq int64) error {
	if err := s.rdb.Set(ctx, s.k.headPosted(), seq, s.retention).Err(); err != nil {
		return fmt.Errorf("record posted audit head: %w", err)
	}
	return nil
}

// counter reads an integer key; a missing key is 0.
func (s *Store) counter(ctx context.Context, key string) (int64, error) {
	n, err := s.rdb.Get(ctx, key).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}
