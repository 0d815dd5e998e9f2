package remediate_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// TestSeq2WriteAheadReachesTheReplica (issue 10, sequence 2): with a replica, the original and
// the device snapshot are on the replica before the PBX write they protect; a replica that does
// not answer makes the step refuse that write with a clear error, and Retry works once it is back.
func TestSeq2WriteAheadReachesTheReplica(t *testing.T) {
	primary := testenv.StartRedis(t)
	host, port, _ := strings.Cut(primary.Addr, ":")
	replica := testenv.StartRedis(t, "--replicaof", host, port)
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr})
	defer rc.Close()
	ctx := context.Background()
	testenv.WaitFor(t, 10*time.Second, "the replica to sync", func() bool {
		info, err := rc.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	v := newEnvOn(t, primary.Redis())
	store, err := session.New(session.Config{Client: v.redis.Client, AuditKey: testAuditKey, Prefix: v.redis.Prefix,
		Logger: v.log, Now: v.clock.Now, MinReplicas: session.MinReplicasAuto, ReplicaTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	lines, warns, err := store.CheckReplication(ctx)
	if err != nil || len(lines) != 1 || !strings.Contains(lines[0], "1 connected replica") || len(warns) != 0 {
		t.Fatalf("CheckReplication = %q, %q, %v", lines, warns, err)
	}

	// The simulator, behind a handler that reads the replica before every PBX write.
	var (
		mu     sync.Mutex
		seen   []string // what the replica held at each write
		incKey string
	)
	replicaHolds := func() string {
		data, err := rc.HGet(ctx, incKey, "data").Result()
		if err != nil {
			return "nothing: " + err.Error()
		}
		var inc session.Incident
		if err := json.Unmarshal([]byte(data), &inc); err != nil {
			return "undecodable"
		}
		out := "original=none"
		if inc.Original != nil {
			out = "original=" + inc.Original.Policy
		}
		return out + " devices=" + strconv.Itoa(len(inc.Devices))
	}
	pbx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && strings.Contains(r.URL.Path, "/users/1001") {
			mu.Lock()
			seen = append(seen, r.Method+" "+strings.TrimPrefix(r.URL.Path, nstest.BasePath)+": "+replicaHolds())
			mu.Unlock()
		}
		v.sim.ServeHTTP(w, r)
	}))
	defer pbx.Close()
	e := engineWithPBX(t, v, store, "A", pbx.URL+nstest.BasePath)

	inc := v.open(e, "1001", "acme.example")
	incKey = v.redis.Key("{1001@acme.example}:inc:" + inc.ID)
	for _, s := range []session.Step{session.StepDeny, session.StepRecreate} {
		if _, err := e.Run(ctx, inc.ID, s, "U1", remediate.RunOptions{}); err != nil {
			t.Fatalf("Run(%s): %v", s, err)
		}
	}
	mu.Lock()
	if len(seen) < 2 {
		t.Fatalf("PBX writes seen: %q", seen)
	}
	for _, w := range seen {
		want := "original=" + origPolicy
		if strings.HasPrefix(w, "DELETE") || strings.HasPrefix(w, "POST") {
			want += " devices=2"
		}
		if !strings.Contains(w, want) {
			t.Errorf("at %s; want the replica to hold %s", w, want)
		}
	}
	mu.Unlock()

	// The replica stops answering (SIGSTOP): the next deny refuses its PUT.
	pinfo, err := rc.Info(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	pid := 0
	for _, l := range strings.Split(pinfo, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "process_id:"); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	if pid <= 0 {
		t.Fatal("no process_id in the replica's INFO")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	resume := func() {
		if stopped {
			_ = syscall.Kill(pid, syscall.SIGCONT)
			stopped = false
		}
	}
	defer resume()
	other := v.open(e, "1002", "acme.example")
	_, err = e.Run(ctx, other.ID, session.StepDeny, "U1", remediate.RunOptions{})
	if !errors.Is(err, session.ErrNotReplicated) || remediate.KindOf(err) != remediate.KindNotReplicated {
		t.Fatalf("deny with the replica paused = %v (kind %s), want not_replicated", err, remediate.KindOf(err))
	}
	for _, w := range v.writes() {
		if strings.Contains(w, "/users/1002") {
			t.Errorf("PBX write %s although the original was not replicated", w)
		}
	}
	st := stepOf(v, other.ID, session.StepDeny)
	if st.Status != session.StatusFailed || st.ErrKind != remediate.KindNotReplicated ||
		!strings.Contains(st.ErrMessage, "no PBX change was made") {
		t.Errorf("deny = %s %q %q; want failed with a clear not_replicated message", st.Status, st.ErrKind, st.ErrMessage)
	}
	// A Retry while the replica is still paused refuses too (the record is stored, not replicated).
	if _, err := e.Run(ctx, other.ID, session.StepDeny, "U1", remediate.RunOptions{}); !errors.Is(err, session.ErrNotReplicated) {
		t.Fatalf("Retry with the replica paused = %v, want not_replicated", err)
	}
	resume()
	if _, err := e.Run(ctx, other.ID, session.StepDeny, "U1", remediate.RunOptions{}); err != nil {
		t.Fatalf("Retry with the replica back: %v", err)
	}
	if got := v.userField("1002", "acme.example", "dial-policy"); got != denyPolicy {
		t.Errorf("1002's dial policy = %v, want %s", got, denyPolicy)
	}
}
