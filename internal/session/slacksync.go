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
// Each mark holds a token of this call, read back in the same pipeline: a pipeline go-redis sent
// again (its reply lost to a Redis restart, scripts.go) finds the marks its first run set, which
// are still this call's first arrival, not a duplicate to drop. Errors: the Redis error.
func (s *Store) FirstDeliveries(ctx context.Context, keys ...string) ([]bool, error) {
	token := writeToken()
	pipe := s.rdb.Pipeline()
	sets := make([]*redis.BoolCmd, len(keys))
	gets := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		sets[i] = pipe.SetNX(ctx, s.k.seen(k), token, DeliveryTTL)
		gets[i] = pipe.Get(ctx, s.k.seen(k))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("dedupe %q: %w", keys, err)
	}
	firsts := make([]bool, len(keys))
	for i, c := range sets {
		firsts[i] = c.Val() || gets[i].Val() == token
	}
	return firsts, nil
}

// SyncView is what a card and thread sync is decided from before it takes the sync lock.
type SyncView struct {
	CardStamp    int64 // the newest render on the card, as SyncLock.CardStamp
	ThreadPosted int64 // the last audit seq posted to the thread, as SyncLock.ThreadPosted
	AuditSeq     int64 // the incident's newest audit entry (0: none)
}

// GetForSync is Get with the incident's sync cursors and the head of its audit chain read in the
// same round trip, without the lock and without a write: a sync that has nothing to do ends on
// it. The cursors move only under the lock and only grow, so a holder may move them right after:
// read here they can only be behind. Errors: as Get.
func (s *Store) GetForSync(ctx context.Context, rawID string) (Incident, SyncView, error) {
	id, user, domain, cached, err := s.locateCached(ctx, rawID)
	if err != nil {
		return Incident{}, SyncView{}, err
	}
	pipe := s.rdb.Pipeline()
	rawCmd := s.readRec(ctx, pipe, user, domain, id)
	headCmd := pipe.HGet(ctx, s.k.auditHead(user, domain, id), "seq")
	cardCmd := pipe.Get(ctx, s.k.syncCard(id))
	postedCmd := pipe.Get(ctx, s.k.syncPosted(id))
	_, _ = pipe.Exec(ctx) // each command's error is read below
	r, err := s.rawOf(id, rawCmd)
	if errors.Is(err, ErrNotFound) && cached {
		s.locs.forget(id) // gone meanwhile (or never where remembered): ask the index
		return s.GetForSync(ctx, rawID)
	}
	if err != nil {
		return Incident{}, SyncView{}, err
	}
	var v SyncView
	if v.AuditSeq, err = counterOf(headCmd); err != nil {
		return Incident{}, SyncView{}, fmt.Errorf("read audit head of %s: %w", id, err)
	}
	if v.CardStamp, err = counterOf(cardCmd); err != nil {
		return Incident{}, SyncView{}, fmt.Errorf("read card stamp of %s: %w", id, err)
	}
	if v.ThreadPosted, err = counterOf(postedCmd); err != nil {
		return Incident{}, SyncView{}, fmt.Errorf("read thread cursor of %s: %w", id, err)
	}
	inc, err := decodeIncident(id, r.data)
	return inc, v, err
}

// SyncLockTTL bounds how long a replica that died mid-sync blocks the others' card updates. The
// holder extends it before every Slack call (10 s timeout), unless it took or extended it less
// than syncFresh ago, so it only needs to outlast one call after syncFresh.
const SyncLockTTL = SlackCallTimeout + syncFresh

// SlackCallTimeout bounds one Slack Web API call (the Slack app's HTTP client timeout), which
// the sync lock must outlast.
const SlackCallTimeout = 10 * time.Second

// syncFresh is how long after taking or extending the lock an Extend is answered without Redis:
// the lock still has SyncLockTTL - syncFresh = one Slack call's timeout left. A card sync
// extends right after taking the lock (its render) and again before each thread post; each was
// an fsynced write.
const syncFresh = time.Second

// ErrSyncLockLost means another replica took the incident's sync lock over: stop without writing.
var ErrSyncLockLost = errors.New("sync lock lost")

// SyncLock is one holder's claim on an incident's card and thread sync, and the only way to move
// the cursors it guards. Its keys share the incident's hash tag {INC-…}, so its scripts run on one
// Redis Cluster slot. Not safe for concurrent use: one sync holds it.
//
// The lock remembers the two cursors as read when it was taken and as it moved them since: only
// the lock's holder moves them, so they cannot change under it (a holder that lost the lock finds
// out at its next Extend or cursor write).
type SyncLock struct {
	s      *Store
	id     string
	token  string
	card   int64     // the card stamp (CardStamp)
	posted int64     // the thread cursor (ThreadPosted)
	sure   time.Time // the lock is ours until at least sure + SyncLockTTL (monotonic)
	freed  bool      // Released: every Extend asks Redis
}

// TrySyncLock takes the incident's sync lock, or reports false when another sync holds it. The
// cursors it guards are read in the same round trip. Errors: the Redis error.
func (s *Store) TrySyncLock(ctx context.Context, incidentID string) (*SyncLock, bool, error) {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	l := &SyncLock{s: s, id: incidentID, token: hex.EncodeToString(b), sure: time.Now()}
	pipe := s.rdb.Pipeline()
	lock := pipe.SetNX(ctx, s.k.syncLock(incidentID), l.token, SyncLockTTL)
	holder := pipe.Get(ctx, s.k.syncLock(incidentID)) // ours after a replay of this pipeline (scripts.go)
	card := pipe.Get(ctx, s.k.syncCard(incidentID))
	posted := pipe.Get(ctx, s.k.syncPosted(incidentID))
	_, _ = pipe.Exec(ctx) // each command's error is read below
	ok, err := lock.Result()
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", incidentID, err)
	}
	if !ok && holder.Val() != l.token {
		return l, false, nil
	}
	if l.card, err = counterOf(card); err != nil {
		l.Release(context.WithoutCancel(ctx))
		return nil, false, fmt.Errorf("read card stamp: %w", err)
	}
	if l.posted, err = counterOf(posted); err != nil {
		l.Release(context.WithoutCancel(ctx))
		return nil, false, fmt.Errorf("read thread cursor: %w", err)
	}
	return l, true, nil
}

// Extend renews the lock before a slow Slack call; within syncFresh of taking or extending it,
// it is still ours for a call, and Redis is not asked. Errors: ErrSyncLockLost when it is no
// longer ours, else the Redis error.
func (l *SyncLock) Extend(ctx context.Context) error {
	if !l.freed && time.Since(l.sure) < syncFresh {
		return nil
	}
	sent := time.Now()
	n, err := syncExtendScript.Run(ctx, l.s.rdb, []string{l.s.k.syncLock(l.id)}, l.token, SyncLockTTL.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("extend sync lock: %w", err)
	}
	if n == 0 {
		return ErrSyncLockLost
	}
	if !l.freed {
		l.sure = sent
	}
	return nil
}

// Release gives the lock up if it is still ours (best effort: it expires anyway).
func (l *SyncLock) Release(ctx context.Context) {
	l.freed = true
	_ = syncReleaseScript.Run(ctx, l.s.rdb, []string{l.s.k.syncLock(l.id)}, l.token).Err()
}

// CardStamp is the stamp of the newest render written to the incident's card (0: none yet), as
// read when the lock was taken and raised since.
func (l *SyncLock) CardStamp() int64 { return l.card }

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
	l.card = max(l.card, stamp)
	return nil
}

// ThreadPosted is the seq of the last audit entry posted to the incident's thread (0: none), as
// read when the lock was taken and advanced since.
func (l *SyncLock) ThreadPosted() int64 { return l.posted }

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
	l.posted = to
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
	return counterOf(s.rdb.Get(ctx, key))
}

// counterOf is an integer key's value as cmd read it; a missing key is 0.
func counterOf(cmd *redis.StringCmd) (int64, error) {
	n, err := cmd.Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}
