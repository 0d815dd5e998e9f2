package remediate_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/evidence"
	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// priorityPBX is the real client, recording the priority each of deny's and the open's PBX
// requests waits with (netsapiens.PriorityOf of its context): which request goes first under
// load is the client's business (priority_test.go), which priority each request asks for is
// the engine's.
type priorityPBX struct {
	*netsapiens.Client
	mu  sync.Mutex
	log []string // "op priority"
}

func (p *priorityPBX) record(ctx context.Context, op string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, fmt.Sprintf("%s %d", op, netsapiens.PriorityOf(ctx)))
}

func (p *priorityPBX) calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.log)
}

func (p *priorityPBX) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = nil
}

func (p *priorityPBX) GetUser(ctx context.Context, domain, user string) (netsapiens.User, error) {
	p.record(ctx, "get-user")
	return p.Client.GetUser(ctx, domain, user)
}

func (p *priorityPBX) UpdateUser(ctx context.Context, domain, user string, u netsapiens.UserUpdate) error {
	p.record(ctx, "put-user")
	return p.Client.UpdateUser(ctx, domain, user, u)
}

func (p *priorityPBX) GetDialPolicy(ctx context.Context, domain, name string) (netsapiens.DialPolicy, error) {
	p.record(ctx, "get-policy")
	return p.Client.GetDialPolicy(ctx, domain, name)
}

func (p *priorityPBX) GetDomainDialPolicy(ctx context.Context, domain, name string) (netsapiens.DialPolicy, error) {
	p.record(ctx, "get-policy")
	return p.Client.GetDomainDialPolicy(ctx, domain, name)
}

func (p *priorityPBX) GetSystemDialPolicy(ctx context.Context, name string) (netsapiens.DialPolicy, error) {
	p.record(ctx, "get-policy")
	return p.Client.GetSystemDialPolicy(ctx, name)
}

func (p *priorityPBX) ListDevices(ctx context.Context, domain, user string) ([]netsapiens.Device, error) {
	p.record(ctx, "list-devices")
	return p.Client.ListDevices(ctx, domain, user)
}

func (p *priorityPBX) ListCalls(ctx context.Context, domain, user string) ([]netsapiens.ActiveCall, error) {
	p.record(ctx, "list-calls")
	return p.Client.ListCalls(ctx, domain, user)
}

func (p *priorityPBX) EndCall(ctx context.Context, domain, user, callID string) error {
	p.record(ctx, "end-call")
	return p.Client.EndCall(ctx, domain, user, callID)
}

func (p *priorityPBX) ListCDRs(ctx context.Context, domain, user string, from, to time.Time, limit int) ([]netsapiens.CDR, error) {
	p.record(ctx, "list-cdrs")
	return p.Client.ListCDRs(ctx, domain, user, from, to, limit)
}

// TestDenyPriorities: the open's reads are Normal and its warm-up of the deny policy High; deny's
// critical path (user read, PUT, verify read) is Critical and its live-call work after the
// verified PUT FollowUp (after other incidents' opens); the evidence reads are Low. A deny whose
// containment a previous run already verified (a resume, a Retry) re-checks it at FollowUp.
func TestDenyPriorities(t *testing.T) {
	v := newEnv(t)
	pbx := &priorityPBX{Client: v.client()}
	e, err := remediate.New(pbx, v.store, remediate.Config{Owner: "A", Logger: v.log, Now: v.clock.Now,
		Keys: v.keys, ResetEmailTemplate: "password_reset.php", Evidence: evidence.Default()})
	if err != nil {
		t.Fatal(err)
	}
	const (
		low      = netsapiens.Low
		followUp = netsapiens.FollowUp
		normal   = netsapiens.Normal
		high     = netsapiens.High
		critical = netsapiens.Critical
	)
	line := func(op string, p netsapiens.Priority) string { return fmt.Sprintf("%s %d", op, p) }
	has := func(log []string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !slices.Contains(log, w) {
				t.Errorf("no %q in %q", w, log)
			}
		}
	}

	v.sim.AddActiveCall("acme.example", "1001", "call-1", "+88212345678")
	inc := v.open(e, "1001", "acme.example")
	e.Wait() // the open's evidence
	testenv.WaitFor(t, 5*time.Second, "the deny policy's warm-up", func() bool {
		return slices.Contains(pbx.calls(), line("get-policy", high))
	})
	open := pbx.calls()
	has(open, line("get-user", normal), line("list-calls", normal), line("list-cdrs", low))
	for _, l := range open {
		if l == line("get-policy", normal) || l == line("list-cdrs", normal) {
			t.Errorf("open: %q", l)
		}
	}

	pbx.reset()
	if _, err := e.Run(context.Background(), inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	e.Wait() // the evidence at containment
	deny := pbx.calls()
	// The first four calls are deny's own, in order; the evidence at containment starts after the step.
	want := []string{line("get-user", critical), line("put-user", critical), line("get-user", critical),
		line("list-calls", followUp), line("end-call", followUp), line("list-calls", followUp)}
	if len(deny) < len(want) || !slices.Equal(deny[:len(want)], want) {
		t.Errorf("deny's PBX calls = %q\nwant them to start %q", deny, want)
	}
	for _, l := range deny[len(want):] {
		if l != line("list-cdrs", low) && l != line("get-user", low) && l != line("list-calls", low) && l != line("list-devices", low) {
			t.Errorf("after deny: %q, want only Low evidence reads", l)
		}
	}

	// A Retry of a deny already verified: the re-check goes after other users' critical paths.
	if _, err := v.store.Update(context.Background(), inc.ID, func(i *session.Incident) error {
		i.Steps[session.StepDeny].Status = session.StatusFailed
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pbx.reset()
	if _, err := e.Run(context.Background(), inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	again := pbx.calls()
	if len(again) < 3 || !slices.Equal(again[:3], []string{line("get-user", followUp), line("get-user", followUp), line("list-calls", followUp)}) {
		t.Errorf("deny re-checking a verified containment: %q", again)
	}
}

// TestDenyContainedHook: RunOptions.Contained is called once the user's dial permission reads
// back as the deny policy and before the live calls are listed (a lockdown frees the member's
// fan-out place there); Run still returns only after the live calls are ended.
func TestDenyContainedHook(t *testing.T) {
	v := newEnv(t)
	pbx := &priorityPBX{Client: v.client()}
	e, err := remediate.New(pbx, v.store, remediate.Config{Owner: "A", Logger: v.log, Now: v.clock.Now,
		Keys: v.keys, ResetEmailTemplate: "password_reset.php"})
	if err != nil {
		t.Fatal(err)
	}
	v.sim.AddActiveCall("acme.example", "1001", "call-1", "+88212345678")
	inc := v.open(e, "1001", "acme.example")
	e.Wait()
	pbx.reset()
	var atHook []string
	calls := 0
	res, err := e.Run(context.Background(), inc.ID, session.StepDeny, "U1", remediate.RunOptions{Contained: func() {
		calls++
		atHook = pbx.calls()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("Contained called %d times, want 1", calls)
	}
	crit := fmt.Sprint(netsapiens.Critical)
	want := []string{"get-user " + crit, "put-user " + crit, "get-user " + crit}
	if !slices.Equal(atHook, want) {
		t.Errorf("PBX calls when Contained was called = %q, want %q (verified, no live call listed yet)", atHook, want)
	}
	if !slices.Contains(pbx.calls(), "end-call "+fmt.Sprint(netsapiens.FollowUp)) {
		t.Errorf("Run returned before the live call was ended: %q", pbx.calls())
	}
	if got := res.Incident.Step(session.StepDeny).Status; got != session.StatusDone {
		t.Errorf("deny %s, want done", got)
	}
}
