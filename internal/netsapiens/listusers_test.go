package netsapiens_test

import (
	"context"
	"errors"
	"testing"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
)

// TestListUsers reads every user of a domain across pages (the API's largest page is 1000).
func TestListUsers(t *testing.T) {
	seed := nstest.DemoSeed()
	want := seed.AddDomain("bulk.example", 1203, 5000, "US and Canada")
	srv, c, _ := startSim(t, nstest.Options{Seed: seed}, nil)
	ctx := context.Background()
	users, err := c.ListUsers(ctx, "bulk.example")
	must(t, err)
	if len(users) != len(want) {
		t.Fatalf("ListUsers: %d users, want %d", len(users), len(want))
	}
	seen := map[string]bool{}
	for _, u := range users {
		if seen[u.User] || u.DialPolicy != "US and Canada" {
			t.Errorf("user %+v (seen before: %v)", u.User, seen[u.User])
		}
		seen[u.User] = true
	}
	gets := 0
	for _, call := range srv.Calls() {
		if call.Method == "GET" && call.Path == "/domains/bulk.example/users" {
			gets++
		}
	}
	if gets != 2 {
		t.Errorf("%d list requests for 1203 users, want 2 pages", gets)
	}
	if _, err := c.ListUsers(ctx, "nope.example"); !errors.Is(err, netsapiens.ErrNotFound) {
		t.Errorf("unknown domain: %v, want ErrNotFound", err)
	}
	if _, err := c.ListUsers(ctx, "~"); netsapiens.KindOf(err) != netsapiens.KindInvalid {
		t.Errorf("domain ~: %v, want KindInvalid", err)
	}
}
