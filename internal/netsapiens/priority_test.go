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

// TestPriorityLowWaitsOutBurst: with 4 slots and requests above Low holding 3 of them (a burst),
// a Low request waits although a slot is free, and goes as soon as the burst ends; with only 2
// above Low held (one incident's open: its user and the deny policy) it goes at once; and while
// the burst lasts it goes once it has waited lowDeferMax (here 300 ms, and an hour before that
// part: no Low request goes in a burst but at its end), at once if a slot is free, else with
// the next slot freed; one whose context ends meanwhile leaves holding no slot.
func TestPriorityLowWaitsOutBurst(t *testing.T) {
	var mu sync.Mutex
	gates := map[string]chan struct{}{}
	gate := func(user string) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		if gates[user] == nil {
			gates[user] = make(chan struct{})
		}
		return gates[user]
	}
	pbx := newFakePBX(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		user := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		if strings.HasPrefix(user, "hold") {
			<-gate(user)
		}
		writeJSON(w, 200, `{"domain":"acme.example","user":"1001"}`)
	})
	c, _ := newClient(t, pbx.URL(), func(cfg *netsapiens.Config) { cfg.MaxInflight = 4 })
	ctx := context.Background()
	var wg sync.WaitGroup
	t.Cleanup(func() {
		mu.Lock()
		for _, g := range gates {
			select {
			case <-g:
			default:
				close(g)
			}
		}
		mu.Unlock()
		wg.Wait()
	})
	get := func(ctx context.Context, user string) <-chan error {
		done := make(chan error, 1)
		wg.Go(func() {
			_, err := c.GetUser(ctx, "acme.example", user)
			done <- err
		})
		return done
	}
	atPBX := func(n int) {
		t.Helper()
		testenv.WaitFor(t, 5*time.Second, fmt.Sprintf("%d requests at the PBX", n), func() bool { return len(pbx.requests()) == n })
	}
	// answer waits for a request's answer; 5 s is far beyond its round trip: a request that
	// waits out a burst of an hour (below) fails here. ok wants the answer to be no error.
	answer := func(done <-chan error, what string) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no answer within 5s", what)
			return nil
		}
	}
	ok := func(done <-chan error, what string) {
		t.Helper()
		if err := answer(done, what); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	normal := netsapiens.WithPriority(ctx, netsapiens.Normal)
	low := netsapiens.WithPriority(ctx, netsapiens.Low)
	c.SetLowDeferMax(time.Hour) // until the last part: a burst is waited out to its end

	// One incident: two above Low in flight, a Low read goes beside them.
	h1, h2 := get(normal, "hold1"), get(netsapiens.WithPriority(ctx, netsapiens.High), "hold2")
	atPBX(2)
	ok(get(low, "low1"), "low1")

	// A burst: three above Low in flight, one slot free. The Low read waits for the burst's end.
	h3 := get(netsapiens.WithPriority(ctx, netsapiens.Critical), "hold3")
	atPBX(4)
	l2 := get(low, "low2")
	testenv.WaitFor(t, 5*time.Second, "low2 waiting", func() bool { return c.Waiting() == 1 })
	// A request above Low still takes the free slot at once.
	ok(get(normal, "normal1"), "normal1")
	if c.Waiting() != 1 || len(pbx.requests()) != 5 {
		t.Fatalf("waiting %d, at the PBX %d; want low2 still waiting and 5", c.Waiting(), len(pbx.requests()))
	}
	close(gate("hold3")) // two above Low left: the burst is over
	ok(h3, "hold3")
	ok(l2, "low2")
	if got := pbx.requests()[len(pbx.requests())-1].Path; !strings.HasSuffix(got, "/low2") {
		t.Errorf("last at the PBX %s, want low2", got)
	}

	// A burst that lasts: the Low read goes once it has waited deferMax, the burst still on.
	c.SetLowDeferMax(300 * time.Millisecond)
	h4 := get(netsapiens.WithPriority(ctx, netsapiens.FollowUp), "hold4")
	atPBX(7)
	start := time.Now()
	ok(get(low, "low3"), "low3")
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("low3 went after %v in a burst, want at least 300ms", waited)
	}
	// Overdue with every slot taken: the next slot freed is the Low request's, the burst still on.
	h5 := get(normal, "hold5")
	atPBX(9)
	l4 := get(low, "low4")
	testenv.WaitFor(t, 5*time.Second, "low4 waiting", func() bool { return c.Waiting() == 1 })
	// Past its 300 ms, so its own timer has found no free slot and is spent: only the release
	// below can serve it.
	time.Sleep(500 * time.Millisecond)
	close(gate("hold5")) // still three above Low in flight: a burst
	ok(h5, "hold5")
	ok(l4, "low4")

	for _, g := range []string{"hold1", "hold2", "hold4"} {
		close(gate(g))
	}
	ok(h1, "hold1")
	ok(h2, "hold2")
	ok(h4, "hold4")
	if n := c.Waiting(); n != 0 {
		t.Errorf("%d requests still waiting", n)
	}

	// A Low request whose context ends while it waits out a burst leaves the queue and holds
	// no slot: afterwards all four slots are at the PBX at once.
	c.SetLowDeferMax(time.Hour)
	for _, u := range []string{"hold6", "hold7", "hold8"} {
		gate(u)
	}
	h6, h7, h8 := get(normal, "hold6"), get(normal, "hold7"), get(normal, "hold8")
	atPBX(13)
	cctx, cancel := context.WithCancel(low)
	gaveUp := get(cctx, "low5")
	testenv.WaitFor(t, 5*time.Second, "low5 waiting", func() bool { return c.Waiting() == 1 })
	cancel()
	if err := answer(gaveUp, "low5"); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("cancelled Low waiter = %v", err)
	}
	h9 := get(normal, "hold9")
	atPBX(14) // the fourth slot was free: low5 took none
	if n := c.Waiting(); n != 0 {
		t.Errorf("%d requests waiting after low5 gave up, want 0", n)
	}
	for _, u := range []string{"hold6", "hold7", "hold8", "hold9"} {
		close(gate(u))
	}
	ok(h6, "hold6")
	ok(h7, "hold7")
	ok(h8, "hold8")
	ok(h9, "hold9")
}
