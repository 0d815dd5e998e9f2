package slackui

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/compromised-responder/bot/internal/session"
)

// redisRecord records the commands a Redis client sends (each command of a pipeline), as their
// arguments.
// redisRecord records the Redis commands sent under a context from its ctx: the harness's other
// goroutines (both apps' maintenance passes and loops share the client) send theirs meanwhile,
// and under load one of them landed in a count now and then.
type redisRecord struct {
	mu   sync.Mutex
	cmds [][]string
}

type recordKey struct{}

// ctx is parent with the commands sent under it recorded by r.
func (r *redisRecord) ctx(parent context.Context) context.Context {
	return context.WithValue(parent, recordKey{}, r)
}

func (r *redisRecord) mine(ctx context.Context) bool { return ctx.Value(recordKey{}) == r }

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
	return func(ctx context.Context, cmd redis.Cmder) error {
		if r.mine(ctx) {
			r.add(cmd)
		}
		return next(ctx, cmd)
	}
}
func (r *redisRecord) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if r.mine(ctx) {
			r.add(cmds...)
		}
		return next(ctx, cmds)
	}
}

// TestSyncUnchangedReadsLittle: a sync of an incident whose card and thread are up to date (a
// maintenance pass, a notification of nothing new) reads the incident once, with its cursors and
// audit head in the same round trip, and ends there: no lock (no Redis write), no audit read, no
// Slack call.
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

	if retry, err := h.apps[0].syncIncident(rec.ctx(h.ctx), inc.ID); retry || err != nil {
		t.Fatalf("sync = %v, %v", retry, err)
	}
	reads := 0
	for _, c := range rec.commands() {
		switch {
		case isIncidentRead(c):
			reads++
		case c[0] == "hget" || c[0] == "get":
		default: // a write, a script, an audit read
			t.Errorf("%v by a sync with nothing to do", c)
		}
	}
	if reads != 1 {
		t.Errorf("%d incident reads, want 1; commands %v", reads, rec.commands())
	}
	if n := len(h.fake.Calls("")); n != calls {
		t.Errorf("%d Slack calls by a sync with nothing to show", n-calls)
	}
}

// TestSyncShowsWhatChanged: after a sync with nothing to do, a change of the incident is still
// shown (the card updated once, rendered from the incident as read before the lock: no second
// read), and a new audit entry is still posted to the thread; a change with no new entry does not
// read the audit; a change stored while the sync runs is rendered too when it was notified.
func TestSyncShowsWhatChanged(t *testing.T) {
	h := newHarness(t)
	inc := h.open()
	h.waitFor("the syncs to settle", func() bool { return h.apps[0].changes.idle() && h.apps[1].changes.idle() })
	app := h.apps[0]
	app.changes.flushHeld() // nothing held back: each sync below shows what it finds at once
	if retry, err := syncAsLoop(h.ctx, app, inc.ID); retry || err != nil {
		t.Fatalf("sync = %v, %v", retry, err)
	}
	card := func() string {
		m, _ := h.fake.Message(hChan, inc.MessageTS)
		return string(m.Blocks)
	}
	updates := len(h.fake.Calls("chat.update"))
	replies := len(h.fake.Thread(hChan, inc.MessageTS))

	// A change and an audit line, synced by hand (the apps' loops are told nothing).
	if _, err := h.store.Update(h.ctx, inc.ID, func(i *session.Incident) error { i.Reason = "changed once"; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Append(h.ctx, session.AuditEntry{IncidentID: inc.ID, Actor: hAlice, Action: "note.added", Detail: "a line"}); err != nil {
		t.Fatal(err)
	}
	rec := &redisRecord{}
	h.rdb.AddHook(rec)
	if retry, err := syncAsLoop(rec.ctx(h.ctx), app, inc.ID); retry || err != nil {
		t.Fatalf("sync = %v, %v", retry, err)
	}
	reads := 0
	for _, c := range rec.commands() {
		if isIncidentRead(c) {
			reads++
		}
	}
	if reads != 1 {
		t.Errorf("%d incident reads by a sync with no change notified meanwhile, want 1", reads)
	}
	if n := len(h.fake.Calls("chat.update")); n != updates+1 {
		t.Errorf("%d card updates, want 1", n-updates)
	}
	if !strings.Contains(card(), "changed once") {
		t.Errorf("card does not show the change: %s", card())
	}
	thread := h.fake.Thread(hChan, inc.MessageTS)
	if len(thread) != replies+1 || !strings.Contains(thread[len(thread)-1].Text, "a line") {
		t.Errorf("thread %d → %d replies, last %+v; want the new line posted", replies, len(thread), thread[len(thread)-1])
	}

	// A change with no audit line: the card is updated, the audit is not read.
	if _, err := h.store.Update(h.ctx, inc.ID, func(i *session.Incident) error { i.Reason = "changed, no line"; return nil }); err != nil {
		t.Fatal(err)
	}
	quiet := &redisRecord{}
	h.rdb.AddHook(quiet)
	if retry, err := syncAsLoop(quiet.ctx(h.ctx), app, inc.ID); retry || err != nil {
		t.Fatalf("sync = %v, %v", retry, err)
	}
	for _, c := range quiet.commands() {
		if c[0] == "lrange" {
			t.Errorf("%v by a sync whose thread has every entry", c)
		}
	}
	if !strings.Contains(card(), "changed, no line") {
		t.Errorf("card does not show the change: %s", card())
	}

	// A change stored and notified after the sync read the incident: the render reads it again.
	h.rdb.AddHook(&onLock{fn: func() {
		if _, err := h.store.Update(h.ctx, inc.ID, func(i *session.Incident) error { i.Reason = "changed twice"; return nil }); err != nil {
			t.Error(err)
		}
		app.changes.Changed(h.ctx, inc.ID)
	}})
	if _, err := h.store.Update(h.ctx, inc.ID, func(i *session.Incident) error { i.Reason = "changed again"; return nil }); err != nil {
		t.Fatal(err)
	}
	if retry, err := syncAsLoop(h.ctx, app, inc.ID); retry || err != nil {
		t.Fatalf("sync = %v, %v", retry, err)
	}
	if !strings.Contains(card(), "changed twice") {
		t.Errorf("card does not show the change notified during the sync: %s", card())
	}
}

// syncAsLoop runs one sync of id as a sync worker does: marked running, so that a change
// notified meanwhile stays pending for the next sync instead of starting one beside it.
func syncAsLoop(ctx context.Context, app *App, id string) (bool, error) {
	c := app.changes
	c.mu.Lock()
	c.running[id] = true
	c.mu.Unlock()
	defer c.done(id)
	return app.syncIncident(ctx, id)
}

// onLock runs fn once, just before the first sync lock taken after it was added.
type onLock struct {
	once sync.Once
	fn   func()
}

func (o *onLock) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (o *onLock) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (o *onLock) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "set" && strings.HasSuffix(fmt.Sprint(cmds[0].Args()[1]), ":lock") {
			o.once.Do(o.fn)
		}
		return next(ctx, cmds)
	}
}

// isIncidentRead reports whether a recorded command reads an incident's record (its data and
// write token, session's readRec).
func isIncidentRead(c []string) bool {
	return len(c) >= 3 && c[0] == "hmget" && strings.Contains(c[1], ":inc:") && c[2] == "data"
}
