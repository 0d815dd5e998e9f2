package session_test

import (
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/compromised-responder/bot/internal/session"
)

func TestRepair(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	a, b, c := open(t, s, "1001"), open(t, s, "1002"), open(t, s, "1003")
	if _, err := s.Close(ctx, c.ID, session.StateAborted, "U1", ""); err != nil {
		t.Fatal(err)
	}
	// A crash left: a missing from the open index, b without its ID index, c (closed) still in the
	// open index, a stale ID in it, and two audit entries of a never copied to the global chain.
	for _, cmd := range [][]any{
		{"SREM", rdb.Key("open"), a.ID},
		{"DEL", rdb.Key("id:" + b.ID)},
		{"SADD", rdb.Key("open"), c.ID, "INC-ZZZZZZ"},
	} {
		if err := rdb.Client.Do(ctx, cmd...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, action := range []string{"step.deny.running", "step.deny.done"} {
		if _, err := s.AppendIncidentOnly(ctx, session.AuditEntry{IncidentID: a.ID, Actor: "U1", Action: action}); err != nil {
			t.Fatal(err)
		}
	}

	rep, err := s.Repair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rep, session.RepairReport{Indexed: 2, Removed: 2, Mirrored: 2}); diff != "" {
		t.Errorf("Repair report (-got +want):\n%s", diff)
	}
	members, _ := rdb.Client.SMembers(ctx, rdb.Key("open")).Result()
	sort.Strings(members)
	want := []string{a.ID, b.ID}
	sort.Strings(want)
	if diff := cmp.Diff(members, want); diff != "" {
		t.Errorf("open index (-got +want):\n%s", diff)
	}
	if _, err := s.Get(ctx, b.ID); err != nil {
		t.Errorf("Get(b) after Repair: %v", err)
	}
	g, err := s.GlobalAudit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range g {
		got = append(got, e.IncidentID+" "+e.Action)
	}
	if diff := cmp.Diff(got, []string{a.ID + " step.deny.running", a.ID + " step.deny.done"}); diff != "" {
		t.Errorf("global chain (-got +want):\n%s", diff)
	}
	if err := s.Verify(ctx, ""); err != nil {
		t.Error(err)
	}

	// A second pass has nothing left to do.
	rep, err = s.Repair(ctx)
	if err != nil || rep != (session.RepairReport{}) {
		t.Errorf("second Repair = %+v, %v; want nothing to do", rep, err)
	}
}
