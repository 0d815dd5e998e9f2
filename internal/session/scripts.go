package session

// This file holds the store's Lua scripts, one per atomic operation. KEYS of one script always
// share a hash tag (keys.go), so each runs on one Redis Cluster slot.

import "github.com/redis/go-redis/v9"

// The Slack app's sync lock (slacksync.go). KEYS[1] is the lock; the value is the holder's token.
var (
	// syncExtend renews the lock for ARGV[2] ms if ARGV[1] still holds it (0: lost).
	syncExtendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)
	// syncRelease deletes the lock if ARGV[1] still holds it.
	syncReleaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
	// syncRaise sets KEYS[2] to ARGV[2] (TTL ARGV[3] ms) if the lock is still ours and the value
	// only grows (1 raised, 0 not higher, -1 lock lost).
	syncRaiseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) <= cur then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1`)
	// syncAdvance moves the cursor KEYS[2] from ARGV[2] to ARGV[3] (TTL ARGV[4] ms) if the lock is
	// still ours (compare-and-set: 1 moved, 0 not at ARGV[2], -1 lock lost).
	syncAdvanceScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
if cur ~= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1`)
)
