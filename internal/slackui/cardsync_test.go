package slackui

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// redisRecord records the commands a Redis client sends (each command of a pipeline), as their
// arguments.
type redisRecord struct {
	mu   sync.Mutex
	cmds [][]string
}

func (r *redisRecord) add(cmds ...redis.Cmder) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cmds {
		args := make([]string, 0, len(c.Args()))
		for _, a := range c.Args() {
			args = append(args, fmt.Sprint(a))
		}
		r.cmds = append(r.cmds, args)
	}
}

// commands returns what was recorded so far.
func (r *redisRecord) commands() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]string(nil), r.cmds...)
}

func (r *redisRecord) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *redisRecord) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.add(cmd); return next(ctx, cmd) }
}
func (r *redisRecord) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.add(cmds...); return next(ctx, cmds) }
}

// TestSyncUnchangedReadsLittle: a sync of an incident whose card and thread are up to date reads
// the incident once (not again under its lock), reads only the audit entries after the thread's
// cursor, and calls Slack not at all.
func TestSyncUnchangedReadsLittle(t *testing.T) {
	h := newHarness(t)
	inc := h.open()
	h.waitFor("the syncs to settle", func() bool { return h.apps[0].changes.idle() && h.apps[1].changes.idle() })
	posted := len(h.fake.Thread(hChan, inc.MessageTS))
	entries, err := h.store.Audit(h.ctx, inc.ID)
	if err != nil || len(entries) == 0 || posted == 0 {
		t.Fatalf("audit %d entries (%v), %d thread replies: want both", len(entries), err, posted)
	}
	calls := len(h.fake.Calls(""))
	rec := &redisRecord{}
	h.rdb.AddHook(rec)

	if retry, err := h.apps[0].syncIncident(h.ctx, inc.ID); retry || err != nil {
		t.Fatalf("sync = %v, %v", retry, err)
	}
	reads, ranges := 0, 0
	for _, c := range rec.commands() {
		switch {
		case c[0] == "hget" && c[len(c)-1] == "data":
			reads++
		case c[0] == "lrange":
			ranges++
			if want := fmt.Sprint(entries[len(entries)-1].Seq); c[2] != want {
				t.Errorf("audit read %v, want from index %s (after the posted entries)", c, want)
			}
		}
	}
	if reads != 1 || ranges != 1 {
		t.Errorf("%d incident reads and %d audit reads, want 1 each; commands %v", reads, ranges, rec.commands())
	}
	if n := len(h.fake.Calls("")); n != calls {
		t.Errorf("%d Slack calls by a sync with nothing to show", n-calls)
	}
}
