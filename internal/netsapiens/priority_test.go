package netsapiens_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/testenv"
)

// TestPriorityServedFirst: with the one slot taken, requests of every priority wait, two of
// each, arriving lowest first; when the slot frees they go highest first (Critical, High,
// Normal, FollowUp, Low: the one ordering of priority.go) and in the order they came within a priority.
// The order is the PBX's order of arrival (one slot: one at a time).
func TestPriorityServedFirst(t *testing.T) {
	gate := make(chan struct{})
	var once sync.Once
	pbx := newFakePBX(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		if strings.HasSuffix(r.URL.Path, "/users/hold") {
			once.Do(func() { <-gate })
		}
		writeJSON(w, 200, `{"domain":"acme.example","user":"1001"}`)
	})
	c, _ := newClient(t, pbx.URL(), func(cfg *netsapiens.Config) { cfg.MaxInflight = 1 })
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make(chan error, 11)
	get := func(ctx context.Context, user string) {
		wg.Go(func() {
			if _, err := c.GetUser(ctx, "acme.example", user); err != nil {
				errs <- fmt.Errorf("GetUser(%s): %w", user, err)
			}
		})
	}
	get(ctx, "hold") // takes the slot and stays at the PBX until the gate opens
	testenv.WaitFor(t, 5*time.Second, "the first request at the PBX", func() bool { return len(pbx.requests()) == 1 })
	waiting := 0
	for _, w := range []struct {
		p    netsapiens.Priority
		name string
	}{{netsapiens.Low, "low"}, {netsapiens.FollowUp, "followup"}, {netsapiens.Normal, "normal"}, {netsapiens.High, "high"}, {netsapiens.Critical, "critical"}} {
		for i := 1; i <= 2; i++ {
			user := fmt.Sprintf("%s%d", w.name, i)
			get(netsapiens.WithPriority(ctx, w.p), user)
			waiting++
			testenv.WaitFor(t, 5*time.Second, user+" waiting", func() bool { return c.Waiting() == waiting })
		}
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var order []string
	for _, r := range pbx.requests() {
		order = append(order, r.Path[strings.LastIndex(r.Path, "/")+1:])
	}
	if got, want := strings.Join(order, " "), "hold critical1 critical2 high1 high2 normal1 normal2 followup1 followup2 low1 low2"; got != want {
		t.Errorf("PBX saw %q, want %q", got, want)
	}
	if n := c.Waiting(); n != 0 {
		t.Errorf("%d requests still waiting", n)
	}
}

// TestPriorityWaiterGivesUp: a waiter whose context ends leaves the queue and holds no slot.
func TestPriorityWaiterGivesUp(t *testing.T) {
	gate := make(chan struct{})
	pbx := newFakePBX(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		if strings.HasSuffix(r.URL.Path, "/users/hold") {
			<-gate
		}
		writeJSON(w, 200, `{"domain":"acme.example","user":"1001"}`)
	})
	c, _ := newClient(t, pbx.URL(), func(cfg *netsapiens.Config) { cfg.MaxInflight = 1 })
	done := make(chan error, 1)
	go func() {
		_, err := c.GetUser(context.Background(), "acme.example", "hold")
		done <- err
	}()
	testenv.WaitFor(t, 5*time.Second, "the first request at the PBX", func() bool { return len(pbx.requests()) == 1 })
	ctx, cancel := context.WithCancel(netsapiens.WithPriority(context.Background(), netsapiens.High))
	gaveUp := make(chan error, 1)
	go func() {
		_, err := c.GetUser(ctx, "acme.example", "gives-up")
		gaveUp <- err
	}()
	testenv.WaitFor(t, 5*time.Second, "a waiter", func() bool { return c.Waiting() == 1 })
	cancel()
	if err := <-gaveUp; err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("cancelled waiter = %v", err)
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The slot is free again: a new request gets it at once.
	if _, err := c.GetUser(context.Background(), "acme.example", "1001"); err != nil {
		t.Fatal(err)
	}
	if c.Waiting() != 0 || len(pbx.requests()) != 2 {
		t.Errorf("waiting %d, requests %d; want 0 and 2", c.Waiting(), len(pbx.requests()))
	}
}

func TestPriorityOf(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		ctx  context.Context
		want netsapiens.Priority
	}{
		{ctx, netsapiens.Normal},
		{netsapiens.WithPriority(ctx, netsapiens.High), netsapiens.High},
		{netsapiens.WithPriority(ctx, netsapiens.Critical), netsapiens.Critical},
		{netsapiens.WithPriority(ctx, netsapiens.Low), netsapiens.Low},
		{netsapiens.WithPriority(ctx, netsapiens.FollowUp), netsapiens.FollowUp},
		{netsapiens.WithPriority(ctx, netsapiens.Priority(42)), netsapiens.Normal},
	} {
		if got := netsapiens.PriorityOf(tc.ctx); got != tc.want {
			t.Errorf("PriorityOf = %d, want %d", got, tc.want)
		}
	}
}
