package remediate_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// heldCallsPBX holds every live-call list until released, counting how many wait at once.
type heldCallsPBX struct {
	remediate.PBX
	release chan struct{}
	mu      sync.Mutex
	waiting int
	most    int
}

func (p *heldCallsPBX) ListCalls(ctx context.Context, domain, user string) ([]netsapiens.ActiveCall, error) {
	p.mu.Lock()
	p.waiting++
	p.most = max(p.most, p.waiting)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.waiting--
		p.mu.Unlock()
	}()
	select {
	case <-p.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.PBX.ListCalls(ctx, domain, user)
}

func (p *heldCallsPBX) counts() (waiting, most int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiting, p.most
}

// TestDenyContinue: with RunOptions.Continue, Run returns at "contained" (the step still running,
// its policy verified) and the live-call work of every such deny waits in the engine's follow-up
// queue: 24 denies continued at once list their live calls on at most 16 goroutines (the
// followWorkers bound), nothing is lost (each Continue is called once, with the step done and
// its live call ended on the PBX), and Wait waits for them.
func TestDenyContinue(t *testing.T) {
	const n, bound = 24, 16
	seed := nstest.DemoSeed()
	users := seed.AddDomain("bulk.example", n, 3000, "US and Canada")
	v := newEnvSeed(t, testenv.NewRedis(t), seed)
	opened := make(chan struct{})
	close(opened) // the opens' own reads of the live calls go through
	pbx := &heldCallsPBX{PBX: v.client(), release: opened}
	e, err := remediate.New(pbx, v.store, remediate.Config{Owner: "A", Logger: v.log, Now: v.clock.Now,
		Keys: v.keys, ResetEmailTemplate: "password_reset.php"})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i, u := range users {
		user, domain, _ := strings.Cut(u, "@")
		v.sim.AddActiveCall(domain, user, "call-"+user, "+88212345678")
		ids[i] = v.open(e, user, domain).ID
	}
	e.Wait()
	pbx.release = make(chan struct{}) // nothing reads it now: the opens' reads are done

	var mu sync.Mutex
	got := map[string][]remediate.Result{}
	var errs []error
	for _, id := range ids {
		contained := 0
		res, err := e.Run(context.Background(), id, session.StepDeny, "U1", remediate.RunOptions{
			Contained: func() { contained++ },
			Continue: func(res remediate.Result, err error) {
				mu.Lock()
				defer mu.Unlock()
				got[id] = append(got[id], res)
				if err != nil {
					errs = append(errs, err)
				}
			}})
		if err != nil || !res.Continuing || contained != 1 {
			t.Fatalf("Run(%s) = continuing %v, %v, Contained called %d times; want continuing, once", id, res.Continuing, err, contained)
		}
		st := res.Incident.Step(session.StepDeny)
		if st.Status != session.StatusRunning || st.Progress["policy"] != string(remediate.PolicyVerified) {
			t.Errorf("%s at contained: %s, policy %q; want running, verified", id, st.Status, st.Progress["policy"])
		}
	}
	testenv.WaitFor(t, 10*time.Second, "the follow-up workers all waiting for their live calls", func() bool {
		w, _ := pbx.counts()
		return w == bound
	})
	close(pbx.release)
	e.Wait()
	if _, most := pbx.counts(); most != bound {
		t.Errorf("%d live-call lists waited at once, want %d (the follow-up workers)", most, bound)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		t.Errorf("continued runs failed: %v", errs)
	}
	for _, id := range ids {
		if len(got[id]) != 1 {
			t.Errorf("%s: Continue called %d times, want once", id, len(got[id]))
			continue
		}
		if st := got[id][0].Incident.Step(session.StepDeny); st.Status != session.StatusDone {
			t.Errorf("%s: deny %s after its continuation, want done", id, st.Status)
		}
	}
	for _, u := range users {
		user, domain, _ := strings.Cut(u, "@")
		if calls := v.sim.ActiveCalls(domain, user); len(calls) != 0 {
			t.Errorf("%s: %d live calls left, want 0", u, len(calls))
		}
	}
}
