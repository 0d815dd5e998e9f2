package session_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/compromised-responder/bot/internal/session"
)

// replayScript runs the first successful script call that match accepts twice, as go-redis does
// when Redis dies after running it and before its reply reached the client: the reply's EOF is
// retried (go-redis shouldRetry, MaxRetries 3) and the script runs again on the restarted server,
// which kept the first run (AOF, appendfsync always). TestChaos's Redis restarts met exactly that.
type replayScript struct {
	match    func(keys []string) bool // the script's KEYS
	replayed atomic.Bool
}

// replayOpen replays the open script (KEYS[1]: the user's open pointer).
func replayOpen() *replayScript {
	return &replayScript{match: func(keys []string) bool { return strings.HasSuffix(keys[0], ":open") }}
}

func (h *replayScript) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *replayScript) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *replayScript) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil || !h.matches(cmd) || !h.replayed.CompareAndSwap(false, true) {
			return err
		}
		return next(ctx, cmd) // the reply the caller sees is the second run's
	}
}

// matches reports whether cmd is an EVAL/EVALSHA whose KEYS match.
func (h *replayScript) matches(cmd redis.Cmder) bool {
	if cmd.Name() != "evalsha" && cmd.Name() != "eval" {
		return false
	}
	args := cmd.Args()
	if len(args) < 3 {
		return false
	}
	n, err := strconv.Atoi(fmt.Sprint(args[2]))
	if err != nil || n < 1 || len(args) < 3+n {
		return false
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprint(args[3+i])
	}
	return h.match(keys)
}

// TestOpenReplayed: an Open whose script runs twice (its first reply lost to a Redis restart)
// creates the incident, keeps its ID index and reports it created. It used to take the second
// run's "the user has an open incident: this one" for another incident's, delete the new one's
// ID index, and return it as not created: every later read by ID (a lockdown's of its member,
// from any replica) was "incident not found".
func TestOpenReplayed(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	h := replayOpen()
	rdb.Client.AddHook(h)
	inc, created, err := s.Open(ctx, session.Incident{User: "1001", Domain: "acme.example", OpenedBy: "U1", Reason: "toll fraud"})
	if !h.replayed.Load() {
		t.Fatal("the open script was not replayed: the hook no longer matches it")
	}
	if err != nil || !created {
		t.Fatalf("Open = created %v, %v; want created", created, err)
	}
	// Another replica (a fresh store: nothing remembered) finds it by ID and as the user's open one.
	other, _ := storeOn(t, rdb.Client, withPrefix(rdb))
	if got, err := other.Get(ctx, inc.ID); err != nil || got.ID != inc.ID {
		t.Fatalf("Get(%s) from another store = %s, %v", inc.ID, got.ID, err)
	}
	if got, err := other.FindOpen(ctx, "1001", "acme.example"); err != nil || got.ID != inc.ID {
		t.Fatalf("FindOpen = %s, %v; want %s", got.ID, err, inc.ID)
	}
}
