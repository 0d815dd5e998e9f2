package remediate_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// writeLog records, in order, the Redis writes that touch one user's keys (every write a step
// makes for its incident carries the user's hash tag) and the PBX calls of deny.
type writeLog struct {
	tag string // "{user@domain}"
	mu  sync.Mutex
	log []string
}

func (w *writeLog) add(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = append(w.log, s)
}

func (w *writeLog) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.log)
}

func (w *writeLog) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = nil
}

// readOnly are the commands a step's store reads with; any other command is a write.
var readOnly = map[string]bool{"get": true, "hget": true, "hmget": true, "smembers": true, "lrange": true,
	"exists": true, "pttl": true, "info": true, "ping": true, "hello": true, "client": true}

func (w *writeLog) DialHook(next redis.DialHook) redis.DialHook { return next }

func (w *writeLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		w.cmd(cmd, err)
		return err
	}
}

func (w *writeLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			w.cmd(c, c.Err())
		}
		return err
	}
}

// cmd logs a write that touches the user's keys and was carried out (a script refused with
// NOSCRIPT, then sent again by go-redis, counts once).
func (w *writeLog) cmd(cmd redis.Cmder, err error) {
	if err != nil && !errors.Is(err, redis.Nil) {
		return
	}
	for _, a := range cmd.Args()[1:] {
		if s, ok := a.(string); ok && strings.Contains(s, w.tag) {
			if readOnly[cmd.Name()] {
				w.add("read " + cmd.Name())
			} else {
				w.add("redis " + cmd.Name())
			}
			return
		}
	}
}

// writesPBX is the real client, logging deny's user read answers and its PUT into the write log.
type writesPBX struct {
	*netsapiens.Client
	w *writeLog
}

func (p *writesPBX) GetUser(ctx context.Context, domain, user string) (netsapiens.User, error) {
	u, err := p.Client.GetUser(ctx, domain, user)
	p.w.add("pbx get-user")
	return u, err
}

func (p *writesPBX) UpdateUser(ctx context.Context, domain, user string, u netsapiens.UserUpdate) error {
	p.w.add("pbx put-user")
	return p.Client.UpdateUser(ctx, domain, user, u)
}

// TestDenyWritesBeforePUT: from the click to the deny PUT, deny writes to Redis twice: the start
// with its "started" line, and the original (write-ahead) with the deny policy joining the user's
// set and its "original" line. Each is one script, so one fsync; no audit line or deny policy is a
// write of its own, and the PUT follows the record with no fence read between (the record's
// script checked the lease). The audit chain has the lines in order and verifies.
func TestDenyWritesBeforePUT(t *testing.T) {
	v := newEnv(t)
	rdb, err := session.NewClient(v.redis.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	w := &writeLog{tag: "{1001@acme.example}"}
	rdb.AddHook(w)
	st := v.newStore(rdb)
	cfg := remediate.Config{Owner: "A", Logger: v.log, Now: v.clock.Now, Keys: v.keys}
	e, err := remediate.New(&writesPBX{Client: v.client(), w: w}, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	inc := v.open(e, "1001", "acme.example")
	e.Wait() // the open's evidence reads
	w.reset()
	if _, err := e.Run(context.Background(), inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	log := w.lines()
	put := slices.Index(log, "pbx put-user")
	if put < 0 {
		t.Fatalf("no PUT: %q", log)
	}
	var before []string
	for _, l := range log[:put] {
		if strings.HasPrefix(l, "redis ") {
			before = append(before, l)
		}
	}
	if want := []string{"redis evalsha", "redis evalsha"}; !slices.Equal(before, want) {
		t.Errorf("Redis writes before the PUT = %q, want %q (the start, the original: one script each)", before, want)
	}
	if !slices.Contains(log[:put], "pbx get-user") {
		t.Errorf("the user was not read before the PUT: %q", log)
	}
	// The write-ahead record's script found the lease valid just before: the PUT follows it with
	// no Redis round trip (no fence read) in between.
	if last := log[:put]; len(last) == 0 || last[len(last)-1] != "redis evalsha" {
		t.Errorf("the PUT does not follow the write-ahead record at once: %q", log[:put])
	}

	ctx := context.Background()
	if err := v.store.Verify(ctx, inc.ID); err != nil {
		t.Fatal(err)
	}
	es, err := v.store.Audit(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, e := range es {
		if strings.HasPrefix(e.Action, "step.deny.") {
			acts = append(acts, e.Action+" "+e.After)
		}
	}
	want := []string{"step.deny.started running", "step.deny.original " + origPolicy, "step.deny.policy " + denyPolicy}
	if len(acts) < len(want) || !slices.Equal(acts[:len(want)], want) {
		t.Errorf("deny's audit lines = %q, want them to start %q", acts, want)
	}
	if err := v.store.Verify(ctx, ""); err != nil {
		t.Errorf("global chain: %v", err)
	}
}
