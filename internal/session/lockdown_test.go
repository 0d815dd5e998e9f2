package session_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/compromised-responder/bot/internal/session"
)

func TestLockdownStore(t *testing.T) {
	s, r, _ := newStore(t)
	ctx := context.Background()
	members := []session.Member{{User: "1001", Domain: "ACME.example"}, {User: "1002", Domain: "acme.example"}}
	l, err := s.OpenLockdown(ctx, session.Lockdown{Scope: session.ScopeUsers, OpenedBy: "U1", Members: members})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(l.ID, "LCK-") || !l.Open() || l.Version != 1 || l.Members[0].Domain != "acme.example" {
		t.Fatalf("opened %+v", l)
	}
	// Its one key carries its own hash tag; the open set lists it.
	if n, err := r.Client.Exists(ctx, r.Prefix+":{"+l.ID+"}:lockdown").Result(); err != nil || n != 1 {
		t.Errorf("lockdown key: %d, %v", n, err)
	}
	open, err := s.ListOpenLockdowns(ctx)
	if err != nil || len(open) != 1 || open[0].ID != l.ID {
		t.Fatalf("ListOpenLockdowns = %v, %v", open, err)
	}

	// Concurrent writers never lose a line (compare-and-set on the version).
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := s.UpdateLockdown(ctx, strings.ToLower(l.ID), func(l *session.Lockdown) error {
				l.AddLine(l.CreatedAt, "U1", fmt.Sprintf("line %d", i), false)
				return nil
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := s.GetLockdown(ctx, l.ID)
	if err != nil || len(got.Lines) != 20 || got.LineSeq != 20 || got.Version != 21 {
		t.Fatalf("after 20 updates: %d lines, seq %d, version %d, %v", len(got.Lines), got.LineSeq, got.Version, err)
	}

	// Closing leaves the open set and puts the retention TTL on the record.
	if _, err := s.UpdateLockdown(ctx, l.ID, func(l *session.Lockdown) error { l.State = session.StateRestored; return nil }); err != nil {
		t.Fatal(err)
	}
	if ttl, err := r.Client.PTTL(ctx, r.Prefix+":{"+l.ID+"}:lockdown").Result(); err != nil || ttl <= 0 {
		t.Errorf("closed lockdown TTL %v, %v", ttl, err)
	}
	if open, _ := s.ListOpenLockdowns(ctx); len(open) != 0 {
		t.Errorf("closed lockdown still listed open")
	}
	got, _ = s.GetLockdown(ctx, l.ID)
	if got.ClosedAt.IsZero() {
		t.Error("no ClosedAt")
	}

	for name, bad := range map[string]session.Lockdown{
		"no members": {Scope: session.ScopeDomain},
		"bad member": {Members: []session.Member{{User: "../x", Domain: "acme.example"}}},
		"501":        {Members: make([]session.Member, 501)},
	} {
		if _, err := s.OpenLockdown(ctx, bad); !errors.Is(err, session.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := s.GetLockdown(ctx, "INC-7K2QXM"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetLockdown of an incident ID: %v", err)
	}
}
