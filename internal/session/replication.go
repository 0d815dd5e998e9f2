package session

// This file holds the replica acknowledgement of the write-ahead records (issue 10, sequence 2):
// the original dial policy and the device snapshot are acknowledged by the primary alone, so a
// primary that dies before replicating them, followed by a Sentinel promotion, would lose them;
// the PBX write they protect then destroys the only other copy. A run therefore waits (WAIT) until
// the replicas hold the record before that write, and refuses the write when they do not answer.

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// MinReplicasAuto, as Config.MinReplicas, waits for as many replicas as the key's primary reports
// connected at the time of the write (INFO replication), so a lone node waits for none.
const MinReplicasAuto = -1

// DefaultReplicaTimeout bounds one wait for replica acknowledgement when Config.ReplicaTimeout is 0.
const DefaultReplicaTimeout = 2 * time.Second

// ReplicationError says that the replicas did not acknowledge a write-ahead record in time;
// errors.Is(err, ErrNotReplicated) matches it. Its text is plain words for the card.
type ReplicationError struct {
	Want, Acked int
	Timeout     time.Duration
}

func (e *ReplicationError) Error() string {
	return fmt.Sprintf("Redis replicas did not confirm the write-ahead record (%d of %d acknowledged within %s), "+
		"so no PBX change was made: check Redis replication, then Retry", e.Acked, e.Want, e.Timeout)
}

// Unwrap returns ErrNotReplicated.
func (e *ReplicationError) Unwrap() error { return ErrNotReplicated }

// markScript writes to the incident hash only if it exists, so that the WAIT after it on the same
// connection counts from a write that follows the record in the replication stream (WAIT counts
// the connection's own last write, and the record may have gone out on another pooled connection).
// KEYS: 1 incident hash. ARGV: 1 time (ms). Sent with EVAL, not EVALSHA: no NOSCRIPT round trip on
// the sticky connection.
const markScript = `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'acked', ARGV[1]) end
return 1`

// Replicated returns nil once the replicas acknowledge every write made so far to the run's
// incident (the write-ahead records among them): a run calls it before the PBX write a record
// protects, also when a retry finds the record already stored. Errors: *ReplicationError
// (ErrNotReplicated), ErrNotFound, Redis errors.
func (r *Run) Replicated(ctx context.Context) error {
	id, user, domain, err := r.s.locate(ctx, r.Lease().IncidentID)
	if err != nil {
		return err
	}
	return r.s.waitReplicas(ctx, r.s.k.inc(user, domain, id))
}

// waitReplicas waits until the primary holding key has its writes so far acknowledged by the
// configured number of replicas, at most the replica timeout.
func (s *Store) waitReplicas(ctx context.Context, key string) error {
	if s.minReplicas == 0 {
		return nil
	}
	node, err := s.nodeFor(ctx, key)
	if err != nil {
		return err
	}
	conn := node.Conn()
	defer conn.Close()
	want := s.minReplicas
	if want == MinReplicasAuto {
		info, err := conn.Info(ctx, "replication").Result()
		if err != nil {
			return fmt.Errorf("read replication of %s: %w", node.Options().Addr, err)
		}
		want = parseReplication(info).Replicas
		if want == 0 {
			return nil
		}
	}
	if err := conn.Eval(ctx, markScript, []string{key}, s.nowUTC().UnixMilli()).Err(); err != nil {
		return fmt.Errorf("mark write-ahead record: %w", err)
	}
	n, err := conn.Wait(ctx, want, s.replicaTimeout).Result()
	if err != nil {
		return fmt.Errorf("wait for %d replica(s): %w", want, err)
	}
	if int(n) < want {
		return &ReplicationError{Want: want, Acked: int(n), Timeout: s.replicaTimeout}
	}
	return nil
}

// nodeFor is the client of the primary that holds key: in a Cluster, the slot's master (WAIT has
// no key, so go-redis would send it to any node), else the client itself (Sentinel follows the
// promoted primary).
func (s *Store) nodeFor(ctx context.Context, key string) (*redis.Client, error) {
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		n, err := c.MasterForKey(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("find the primary of %s: %w", key, err)
		}
		return n, nil
	case *redis.Client:
		return c, nil
	}
	return nil, fmt.Errorf("redis client %T cannot wait for replicas: %w", s.rdb, ErrInvalid)
}

// NodeReplication is what INFO replication says about one primary.
type NodeReplication struct {
	Node     string // address
	Role     string // master | slave
	Replicas int    // connected_slaves
}

func parseReplication(info string) NodeReplication {
	var n NodeReplication
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch k {
		case "role":
			n.Role = v
		case "connected_slaves":
			n.Replicas, _ = strconv.Atoi(v)
		}
	}
	return n
}

// CheckReplication reads INFO replication of every primary and returns one line per primary for
// the start-up log and /readyz ("127.0.0.1:6379: 1 connected replica; write-ahead records wait
// for 1"), and warnings when the configured number can never be met or the node is a replica.
// Errors: connection failures.
func (s *Store) CheckReplication(ctx context.Context) (lines, warns []string, err error) {
	var mu sync.Mutex
	err = s.eachNode(ctx, func(ctx context.Context, c redis.Cmdable, name string) error {
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return fmt.Errorf("read replication of %s: %w", name, err)
		}
		n := parseReplication(info)
		want, how := s.minReplicas, "REDIS_MIN_REPLICAS"
		if want == MinReplicasAuto {
			want, how = n.Replicas, "the connected replicas"
		}
		line := fmt.Sprintf("%s: role %s, %d connected replica(s); write-ahead records wait for %d (%s), at most %s",
			name, n.Role, n.Replicas, want, how, s.replicaTimeout)
		if want == 0 {
			why := "REDIS_MIN_REPLICAS is 0"
			if s.minReplicas == MinReplicasAuto {
				why = "no replica is connected and REDIS_MIN_REPLICAS is auto"
			}
			line = fmt.Sprintf("%s: role %s, %d connected replica(s); write-ahead records do not wait for replicas (no WAIT: %s)",
				name, n.Role, n.Replicas, why)
		}
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, line)
		if n.Role != "" && n.Role != "master" {
			warns = append(warns, fmt.Sprintf("%s is a %s, not a primary: writes will fail", name, n.Role))
		}
		if s.minReplicas > n.Replicas {
			warns = append(warns, fmt.Sprintf("%s has %d connected replica(s) but REDIS_MIN_REPLICAS is %d: every deny and recreate is refused until enough replicas connect",
				name, n.Replicas, s.minReplicas))
		}
		return nil
	})
	sort.Strings(lines)
	sort.Strings(warns)
	for _, l := range lines {
		s.log.Info().Str("check", "replication").Msg(l)
	}
	for _, w := range warns {
		s.log.Warn().Str("check", "replication").Msg(w)
	}
	return lines, warns, err
}
