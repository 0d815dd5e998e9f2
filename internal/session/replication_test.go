package session_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// TestSeq2ReplicaWaitOnTheKeysPrimary (issue 10, sequence 2): the wait for replicas goes to the
// primary that holds the incident. WAIT has no key, so on a Redis Cluster (make test-cluster:
// three primaries, no replicas) go-redis would send it to any node; the wait's marker write (an
// EVAL on the incident's key, on the same connection) answers MOVED on any other node, so a
// wrong node fails here with that instead of the ReplicationError of a wait that found no
// replica. Several users put incidents on several slots, so on the cluster on several nodes.
// With REDIS_MIN_REPLICAS=auto and no replica anywhere no WAIT is sent, and the start-up line
// says why.
func TestSeq2ReplicaWaitOnTheKeysPrimary(t *testing.T) {
	ctx := ctxT(t)
	s, r, _ := newStore(t, func(c *session.Config) { c.MinReplicas = 1; c.ReplicaTimeout = 50 * time.Millisecond })
	auto, _ := storeOn(t, r.Client, withPrefix(r), func(c *session.Config) { c.MinReplicas = session.MinReplicasAuto })
	for _, user := range []string{"1001", "1002", "1003", "1004", "1005", "1006"} {
		inc := open(t, s, user)
		run, _, err := s.Begin(ctx, inc.ID, session.StepDeny, session.BeginOptions{Actor: "U1", LeaseTTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		var re *session.ReplicationError
		if err := run.Replicated(ctx); !errors.As(err, &re) || re.Want != 1 || re.Acked != 0 {
			t.Errorf("%s: Replicated with REDIS_MIN_REPLICAS=1 and no replica = %v, want 0 of 1 acknowledged", user, err)
		}
		if err := auto.WaitReplicas(ctx, inc.ID); err != nil {
			t.Errorf("%s: Replicated with REDIS_MIN_REPLICAS=auto and no replica = %v, want nil (no wait)", user, err)
		}
	}
	lines, _, err := auto.CheckReplication(ctx)
	if err != nil || len(lines) == 0 {
		t.Fatalf("CheckReplication = %q, %v", lines, err)
	}
	for _, l := range lines {
		if !strings.Contains(l, "0 connected replica(s); write-ahead records do not wait for replicas (no WAIT: no replica is connected and REDIS_MIN_REPLICAS is auto)") {
			t.Errorf("start-up line %q does not say why no WAIT is sent", l)
		}
	}
}
