package session

// This file holds the store's Lua scripts, one per atomic operation. KEYS of one script always
// share a hash tag (keys.go), so each runs on one Redis Cluster slot.

import (
	"crypto/rand"

	"github.com/redis/go-redis/v9"
)

// A compare-and-set script may run twice for one call: go-redis sends a command again when its
// reply is lost (an EOF or LOADING from a Redis restart; MaxRetries 3 by default), even when
// Redis already ran it and kept its writes (AOF). A replay then finds its own write where it
// expected the old state; each script below tells that from another writer's change and answers
// as the first run did, or the caller would apply its change a second time (a version +2, its
// audit lines twice, a Begin refused against its own start).

// writeToken is a fresh random token for one compare-and-set attempt, stored with the record it
// writes ('w' of the incident and lockdown hashes): a replay of that attempt finds the new
// version with its own token, which no other writer has (two racing writers can store
// byte-identical JSON at the same version, so the data alone does not tell them apart).
func writeToken() string { return rand.Text() }

// The incident record (store.go).

// updateScript is the compare-and-set of an incident, with what the same change writes beside
// the record: the user's original, kept devices and deny policies, and the audit lines that
// record the change (Lines), so the record and its lines are stored together or not at all.
// KEYS: 1 incident hash, 2 the user's open pointer, 3 the user's original, 4 the user's kept
// devices, 5 the user's deny policies, 6 the incident's audit list, 7 its audit head, 8.. the
// incident's other keys.
// ARGV: 1 expected version, 2 new version, 3 data, 4 original op, 5 original JSON, 6 TTL ms on close (0 = not closing), 7 ID,
// 8 kept devices op, 9 kept devices JSON (ops: "" leave, "set", "del"), 10 a deny policy to add ("" = none),
// 11 the attempt's write token (writeToken), 12 the write token stored with the expected version
// ("" = none: as Open stores it), 13 the audit head's expected seq, 14 its expected MAC, 15 the
// new head seq, 16 its MAC, 17.. the audit lines' JSON (none: no audit write).
// The expected record is the version and its token: a version alone can repeat after a failover
// that lost a write (the promoted replica is a version behind, and the next writer takes the lost
// write's number), and a change decided from the lost record would then pass; every write stores a
// token of its own, so the pair names one write.
// Returns 1 written (or already written by this attempt: a replay finds the new version with its
// token, and the lines went with it), 0 version changed, 2 audit head moved, -1 no such incident,
// -2 a key of the user or of the audit holds another type. Every check comes before the first
// write: a script that fails writes nothing (Redis does not undo a script's writes before an error).
var updateScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return -1 end
local w = redis.call('HGET', KEYS[1], 'w') or ''
if v ~= ARGV[1] then
  if v == ARGV[2] and w == ARGV[11] then return 1 end
  return 0
end
if w ~= ARGV[12] then return 0 end
local lines = #ARGV >= 17
if lines then
  local seq = redis.call('HGET', KEYS[7], 'seq') or '0'
  local mac = redis.call('HGET', KEYS[7], 'mac') or ''
  if seq ~= ARGV[13] or mac ~= ARGV[14] then return 2 end
  local t = redis.call('TYPE', KEYS[6]).ok
  if t ~= 'none' and t ~= 'list' then return -2 end
end
if ARGV[10] ~= '' then
  local t = redis.call('TYPE', KEYS[5]).ok
  if t ~= 'none' and t ~= 'set' then return -2 end
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'data', ARGV[3], 'w', ARGV[11])
if ARGV[4] == 'set' then
  redis.call('SET', KEYS[3], ARGV[5])
elseif ARGV[4] == 'del' then
  redis.call('DEL', KEYS[3])
end
if ARGV[8] == 'set' then
  redis.call('SET', KEYS[4], ARGV[9])
elseif ARGV[8] == 'del' then
  redis.call('DEL', KEYS[4])
end
if ARGV[10] ~= '' then redis.call('SADD', KEYS[5], ARGV[10]) end
if lines then
  redis.call('RPUSH', KEYS[6], unpack(ARGV, 17, #ARGV))
  redis.call('HSET', KEYS[7], 'seq', ARGV[15], 'mac', ARGV[16])
  local t = redis.call('PTTL', KEYS[1])
  if t > 0 then
    redis.call('PEXPIRE', KEYS[6], t)
    redis.call('PEXPIRE', KEYS[7], t)
  end
end
local ttl = tonumber(ARGV[6])
if ttl > 0 then
  if redis.call('GET', KEYS[2]) == ARGV[7] then redis.call('DEL', KEYS[2]) end
  redis.call('PEXPIRE', KEYS[1], ttl)
  for i = 6, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1
`)

// openScript creates an incident unless the user has an open one.
// KEYS: 1 the user's open pointer, 2 the new incident hash. ARGV: 1 ID, 2 data.
// Returns {1, ID} created, {0, existing ID}, or {2, ID} when the ID is already taken.
var openScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {2, ARGV[1]} end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'v', '1', 'data', ARGV[2])
return {1, ARGV[1]}
`)

// discardScript deletes an incident if its version is unchanged. An incident already gone is
// discarded (1): by this call's first run when it is a replay, else by another discard; either
// way what the caller asked, and its indexes are the caller's to clean up.
// KEYS: 1 incident hash, 2 the user's open pointer, 3.. other keys. ARGV: 1 version, 2 ID.
var discardScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return 1 end
if v ~= ARGV[1] then return 0 end
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
for i = 3, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('DEL', KEYS[1])
return 1
`)

// The audit chains (audit.go).

// appendScript appends one entry to a chain if the chain's head is still the expected one.
// KEYS: 1 list, 2 head, 3 the key whose TTL the chain follows (the incident), 4 the global
// "mirrored" hash (global chain) or any key of the slot.
// ARGV: 1 expected head seq, 2 expected head MAC, 3 entry JSON, 4 new seq, 5 new MAC,
// 6 incident ID when copying an incident's entry into the global chain ("" otherwise), 7 its seq,
// 8 "1" when KEYS[3] must exist (an incident's chain: no entry for an incident that is gone),
// 9 the attempt's write token (writeToken), kept in the head as 'w'.
// Returns 1 appended (or already: a replay finds the head at its own entry's seq, MAC and token),
// 0 head moved (retry), 2 already copied, 3 an earlier entry is not copied yet, -1 no such
// incident. The MAC alone does not tell a replay from another writer: two writers appending
// byte-identical entries (actor, action, time) after the same head compute the same MAC.
var appendScript = redis.NewScript(`
if ARGV[8] == '1' and redis.call('EXISTS', KEYS[3]) == 0 then return -1 end
if ARGV[6] ~= '' then
  local m = tonumber(redis.call('HGET', KEYS[4], ARGV[6]) or '0')
  local want = tonumber(ARGV[7])
  if m >= want then return 2 end
  if m ~= want - 1 then return 3 end
end
local seq = redis.call('HGET', KEYS[2], 'seq') or '0'
local mac = redis.call('HGET', KEYS[2], 'mac') or ''
if seq ~= ARGV[1] or mac ~= ARGV[2] then
  if seq == ARGV[4] and mac == ARGV[5] and redis.call('HGET', KEYS[2], 'w') == ARGV[9] then return 1 end
  return 0
end
redis.call('RPUSH', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], 'seq', ARGV[4], 'mac', ARGV[5], 'w', ARGV[9])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[4], ARGV[6], ARGV[7]) end
local t = redis.call('PTTL', KEYS[3])
if t > 0 then
  redis.call('PEXPIRE', KEYS[1], t)
  redis.call('PEXPIRE', KEYS[2], t)
end
return 1
`)

// copyBatchScript appends a batch of incidents' entries to the global chain (auditcopy.go) if
// neither the head nor any of their copy marks moved since they were read.
// KEYS: 1 list, 2 head, 3 the key whose TTL the chain follows, 4 the "mirrored" hash.
// ARGV: 1 expected head seq, 2 expected head MAC, 3 new head seq, 4 new head MAC, then per
// incident: its ID, its copy mark as read, the new mark, the count n of its entries, n entry JSONs.
// Returns 1 appended, 0 the head or a mark moved (read again).
var copyBatchScript = redis.NewScript(`
local seq = redis.call('HGET', KEYS[2], 'seq') or '0'
local mac = redis.call('HGET', KEYS[2], 'mac') or ''
if seq ~= ARGV[1] or mac ~= ARGV[2] then return 0 end
local i = 5
while i <= #ARGV do
  local m = tonumber(redis.call('HGET', KEYS[4], ARGV[i]) or '0')
  if m ~= tonumber(ARGV[i+1]) then return 0 end
  i = i + 4 + tonumber(ARGV[i+3])
end
i = 5
while i <= #ARGV do
  local n = tonumber(ARGV[i+3])
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i+4, i+3+n))
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i+2])
  i = i + 4 + n
end
redis.call('HSET', KEYS[2], 'seq', ARGV[3], 'mac', ARGV[4])
local t = redis.call('PTTL', KEYS[3])
if t > 0 then
  redis.call('PEXPIRE', KEYS[1], t)
  redis.call('PEXPIRE', KEYS[2], t)
end
return 1
`)

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
	// still ours (compare-and-set: 1 moved, 0 not at ARGV[2], -1 lock lost). A cursor already at
	// ARGV[3] under our lock is our move (a replay): 1.
	syncAdvanceScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
if cur == tonumber(ARGV[3]) then return 1 end
if cur ~= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1`)
)

// The lockdown record (lockdown.go).

// lockdownCASScript is the compare-and-set of a lockdown record.
// KEYS: 1 the lockdown hash. ARGV: 1 expected version ("0" = must not exist yet), 2 new version,
// 3 data, 4 TTL ms (0 = none: the lockdown is open), 5 the attempt's write token (writeToken).
// Returns 1 written (or already written by this attempt: a replay finds the new version with its
// token), 0 version changed (or already exists), -1 no such lockdown.
var lockdownCASScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v')
if v and v == ARGV[2] and redis.call('HGET', KEYS[1], 'w') == ARGV[5] then return 1 end
if ARGV[1] == '0' then
  if v then return 0 end
elseif not v then
  return -1
elseif v ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'data', ARGV[3], 'w', ARGV[5])
local ttl = tonumber(ARGV[4])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
`)
