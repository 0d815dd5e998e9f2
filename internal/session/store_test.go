package session_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

func TestOpenOnePerUser(t *testing.T) {
	s, _, clk := newStore(t)
	ctx := ctxT(t)
	first := open(t, s, "1001")
	if first.Domain != "acme.example" || first.State != session.StateOpen || first.Version != 1 {
		t.Fatalf("Open gave %+v", first)
	}
	for _, st := range session.Steps {
		if got := first.Step(st).Status; got != session.StatusReady {
			t.Errorf("step %s = %s, want ready", st, got)
		}
	}

	// Concurrent opens for the same user all get the one open incident.
	var wg sync.WaitGroup
	ids := make(chan string, 20)
	for range 20 {
		wg.Go(func() {
			inc, created, err := s.Open(ctx, session.Incident{User: "1001", Domain: "ACME.example", OpenedBy: "U2"})
			if err != nil || created {
				t.Errorf("second Open = created %v, %v", created, err)
				return
			}
			ids <- inc.ID
		})
	}
	wg.Wait()
	close(ids)
	for id := range ids {
		if id != first.ID {
			t.Errorf("second Open returned %s, want the open %s", id, first.ID)
		}
	}

	got, err := s.FindOpen(ctx, "1001", "acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, first); diff != "" {
		t.Errorf("FindOpen (-got +want):\n%s", diff)
	}
	byLower, err := s.Get(ctx, "inc-"+first.ID[4:])
	if err != nil || byLower.ID != first.ID {
		t.Errorf("Get(lower case) = %s, %v", byLower.ID, err)
	}
	clk.Advance(time.Second)
	other := open(t, s, "1002")
	list, err := s.ListOpen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, inc := range list {
		listed = append(listed, inc.ID)
	}
	if diff := cmp.Diff(listed, []string{first.ID, other.ID}); diff != "" {
		t.Errorf("ListOpen (-got +want):\n%s", diff)
	}

	// After closing, a new incident can be opened for the user.
	if _, err := s.Close(ctx, first.ID, session.StateAborted, "U1", "false alarm"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindOpen(ctx, "1001", "acme.example"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("FindOpen after close: %v, want ErrNotFound", err)
	}
	again := open(t, s, "1001")
	if again.ID == first.ID {
		t.Errorf("new incident reused ID %s", again.ID)
	}
}

func TestOpenInvalid(t *testing.T) {
	s, _, _ := newStore(t)
	for _, tc := range []struct{ name, user, domain string }{
		{"empty user", "", "acme.example"},
		{"brace", "10{01}", "acme.example"},
		{"colon", "1001", "acme:example"},
		{"star", "*", "acme.example"},
		{"long user", "12345678901234567", "acme.example"},
		{"dot user", ".", "acme.example"},
		{"dot-dot user", "..", "acme.example"},
		{"dot domain", "1001", "."},
		{"dot-dot domain", "1001", ".."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.Open(ctxT(t), session.Incident{User: tc.user, Domain: tc.domain})
			if !errors.Is(err, session.ErrInvalid) {
				t.Errorf("Open(%q@%q) = %v, want ErrInvalid", tc.user, tc.domain, err)
			}
		})
	}
}

func TestGetNotFound(t *testing.T) {
	s, _, _ := newStore(t)
	for _, id := range []string{"INC-000000", "garbage", ""} {
		if _, err := s.Get(ctxT(t), id); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

func TestUpdate(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxT(t)
	inc := open(t, s, "1001")

	// 20 concurrent updates each add one delivery entry: none is lost, the version counts them.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			_, err := s.Update(ctx, inc.ID, func(in *session.Incident) error {
				if in.Delivery == nil {
					in.Delivery = map[string]session.DeliveryState{}
				}
				in.Delivery[string(rune('a'+i))] = session.DeliveryState{Delivered: true}
				return nil
			})
			if err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := s.Get(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Delivery) != 20 || got.Version != 21 {
		t.Errorf("after 20 updates: %d deliveries, version %d; want 20, 21", len(got.Delivery), got.Version)
	}

	boom := errors.New("boom")
	if _, err := s.Update(ctx, inc.ID, func(*session.Incident) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Update with failing fn = %v", err)
	}
	if _, err := s.Update(ctx, inc.ID, func(in *session.Incident) error { in.State = session.StateRestored; return nil }); !errors.Is(err, session.ErrInvalid) {
		t.Errorf("Update changing state = %v, want ErrInvalid", err)
	}
	after, _ := s.Get(ctx, inc.ID)
	if after.Version != 21 || after.State != session.StateOpen {
		t.Errorf("refused updates wrote: version %d, state %s", after.Version, after.State)
	}
}

func TestCloseRetention(t *testing.T) {
	s, rdb, _ := newStore(t, func(c *session.Config) { c.Retention = 48 * time.Hour })
	ctx := ctxT(t)
	closed := open(t, s, "1001")
	l := begin(t, s, closed.ID, session.StepDeny)
	if _, err := l.SaveOriginal(ctx, session.Original{Policy: "US and Canada", Known: true}, "Deny All", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(ctx, session.StatusDone, "denied", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, session.AuditEntry{IncidentID: closed.ID, Actor: "U1", Action: "step.deny.done"}); err != nil {
		t.Fatal(err)
	}
	stillOpen := open(t, s, "1002")
	if _, err := s.Append(ctx, session.AuditEntry{IncidentID: stillOpen.ID, Actor: "U1", Action: "incident.opened"}); err != nil {
		t.Fatal(err)
	}

	inc, err := s.Close(ctx, closed.ID, session.StateAborted, "U1", "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[session.Step]session.Status{session.StepDeny: session.StatusDone, session.StepRecreate: session.StatusSkipped,
		session.StepReset: session.StatusSkipped, session.StepRestore: session.StatusSkipped}
	got := map[session.Step]session.Status{}
	for _, st := range session.Steps {
		got[st] = inc.Step(st).Status
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("steps after abort (-got +want):\n%s", diff)
	}
	if _, err := s.Close(ctx, closed.ID, session.StateAborted, "U1", ""); !errors.Is(err, session.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	// An audit entry after closing keeps the retention too.
	if _, err := s.Append(ctx, session.AuditEntry{IncidentID: closed.ID, Actor: "U9", Action: "refused.closed"}); err != nil {
		t.Fatal(err)
	}

	keys, err := rdb.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ttls := map[string]string{}
	for _, k := range keys {
		d, err := rdb.Client.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case d > 47*time.Hour && d <= 48*time.Hour:
			ttls[k] = "retention"
		case d < 0:
			ttls[k] = "none"
		default:
			ttls[k] = d.String()
		}
	}
	c1, c2 := rdb.Key("{1001@acme.example}"), rdb.Key("{1002@acme.example}")
	wantTTL := map[string]string{
		c1 + ":inc:" + closed.ID:                    "retention",
		c1 + ":inc:" + closed.ID + ":audit":         "retention",
		c1 + ":inc:" + closed.ID + ":audit:head":    "retention",
		rdb.Key("id:" + closed.ID):                  "retention",
		c1 + ":original":                            "none", // outlives the aborted incident
		c1 + ":denied":                              "none", // the deny policies the bot set: never an original
		c2 + ":open":                                "none",
		c2 + ":inc:" + stillOpen.ID:                 "none",
		c2 + ":inc:" + stillOpen.ID + ":audit":      "none",
		c2 + ":inc:" + stillOpen.ID + ":audit:head": "none",
		rdb.Key("id:" + stillOpen.ID):               "none",
		rdb.Key("open"):                             "none",
		rdb.Key("{audit}:log"):                      "none",
		rdb.Key("{audit}:head"):                     "none",
		rdb.Key("{audit}:mirrored"):                 "none",
	}
	if diff := cmp.Diff(ttls, wantTTL); diff != "" {
		t.Errorf("key TTLs (-got +want):\n%s", diff)
	}
	members, _ := rdb.Client.SMembers(ctx, rdb.Key("open")).Result()
	if diff := cmp.Diff(members, []string{stillOpen.ID}); diff != "" {
		t.Errorf("open index (-got +want):\n%s", diff)
	}
}

func TestDiscard(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	inc := open(t, s, "1001")
	if _, err := s.Append(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: "U1", Action: "incident.opened"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Discard(ctx, inc.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, inc.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get after Discard = %v", err)
	}
	all, err := rdb.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, k := range all {
		if strings.HasPrefix(k, rdb.Key("{1001@acme.example}")) {
			left = append(left, k)
		}
	}
	if len(left) != 0 {
		t.Errorf("keys left after Discard: %v", left)
	}
	if g, err := s.GlobalAudit(ctx, 0, 0); err != nil || len(g) != 1 {
		t.Errorf("global audit after Discard: %d entries, %v; want the opening entry kept", len(g), err)
	}
	ran := open(t, s, "1001")
	begin(t, s, ran.ID, session.StepDeny)
	if err := s.Discard(ctx, ran.ID); !errors.Is(err, session.ErrStarted) {
		t.Errorf("Discard of a started incident = %v, want ErrStarted", err)
	}
}

func TestNewConfig(t *testing.T) {
	c := testenv.NewRedis(t).Client
	for _, tc := range []struct {
		name string
		cfg  session.Config
	}{
		{"no client", session.Config{}},
		{"short audit key", session.Config{Client: c, AuditKey: []byte("short")}},
		{"bad prefix", session.Config{Client: c, Prefix: "a:b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := session.New(tc.cfg); !errors.Is(err, session.ErrInvalid) {
				t.Errorf("New = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := session.NewKeyring([]byte("0123456789abcdef"), nil); !errors.Is(err, session.ErrInvalid) {
		t.Errorf("NewKeyring with a snapshot key not 32 bytes = %v, want ErrInvalid", err)
	}
	if _, err := session.NewKeyring(nil, []byte("short")); !errors.Is(err, session.ErrInvalid) {
		t.Errorf("NewKeyring with a short audit key = %v, want ErrInvalid", err)
	}
}

// roundTrips counts what a Redis client sends: one per command, one per pipeline.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.n.Add(1); return next(ctx, cmd) }
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.n.Add(1); return next(ctx, cmds) }
}

// TestUpdateAfterLostWrite: a failover that loses this store's last write puts the incident a
// version back, and another replica's change then takes the version this store remembers. The
// compare-and-set expects the version with its write token, which the other replica's change
// does not have, so this store's next change (at once, from its memory) reads the incident
// again and the other replica's change is kept.
func TestUpdateAfterLostWrite(t *testing.T) {
	s, rdb, _ := newStore(t)
	other, _ := storeOn(t, rdb.Client, withPrefix(rdb)) // another replica
	ctx := ctxT(t)
	inc := open(t, s, "1001")
	keys, err := session.ScanKeys(ctx, rdb.Client, rdb.Prefix+"*:inc:"+inc.ID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("incident hash: %q, %v", keys, err)
	}
	before, err := rdb.Client.HGetAll(ctx, keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, inc.ID, func(inc *session.Incident) error { inc.Reason = "lost in the failover"; return nil }); err != nil {
		t.Fatal(err)
	}
	// The promoted replica had the incident as it was before that write.
	if err := rdb.Client.HSet(ctx, keys[0], before).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Update(ctx, inc.ID, func(inc *session.Incident) error { inc.CloseNote = "the other's"; return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Update(ctx, inc.ID, func(inc *session.Incident) error { inc.Reason = "after"; return nil })
	if err != nil || got.CloseNote != "the other's" || got.Reason != "after" {
		t.Fatalf("Update after a lost write = note %q, reason %q, %v; want the other replica's change kept and this one applied",
			got.CloseNote, got.Reason, err)
	}
	if stored, err := other.Get(ctx, inc.ID); err != nil || stored.CloseNote != "the other's" {
		t.Errorf("stored note %q, %v: the other replica's change was undone", stored.CloseNote, err)
	}
}

// TestUpdateFromMemory: a change of an incident this store just read or wrote sends only its
// compare-and-set (no read first); when another replica changed the incident meanwhile, the
// change still applies to the stored version, and fn's refusal of the remembered one is not
// the answer (fn is asked again about the stored incident).
func TestUpdateFromMemory(t *testing.T) {
	s, rdb, _ := newStore(t)
	other, _ := storeOn(t, rdb.Client, withPrefix(rdb)) // another replica
	ctx := ctxT(t)
	inc := open(t, s, "1001")
	rt := &roundTrips{}
	rdb.Client.AddHook(rt)
	for i := range 3 {
		before := rt.n.Load()
		if _, err := s.Update(ctx, inc.ID, func(inc *session.Incident) error { inc.Reason = "again"; return nil }); err != nil {
			t.Fatal(err)
		}
		if n := rt.n.Load() - before; n != 1 {
			t.Errorf("update %d after this store's own write: %d round trips, want 1 (the compare-and-set)", i, n)
		}
	}

	if _, err := other.Update(ctx, inc.ID, func(inc *session.Incident) error { inc.Reason = "by the other"; return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Update(ctx, inc.ID, func(inc *session.Incident) error {
		if inc.Reason != "by the other" {
			return errors.New("refused: not the stored incident")
		}
		inc.CloseNote = "seen"
		return nil
	})
	if err != nil || got.Reason != "by the other" || got.CloseNote != "seen" {
		t.Fatalf("Update over a stale memory = %q/%q, %v; want the other's change kept and this one applied", got.Reason, got.CloseNote, err)
	}
	if stored, err := other.Get(ctx, inc.ID); err != nil || stored.Version != got.Version || stored.CloseNote != "seen" {
		t.Errorf("stored %+v, %v; want version %d with the change", stored, err, got.Version)
	}
}
