package remediate_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// containedWatch is a Notifier that, the first time it is told of an incident whose deny has
// reached "contained", keeps the simulator's call log as it is at that moment. The engine
// notifies from the runner right after it records the progress, so the log holds exactly the
// PBX calls made before "contained" was recorded.
type containedWatch struct {
	v     *env
	mu    sync.Mutex
	calls map[string][]nstest.Call // incident ID → the call log when contained
}

func (w *containedWatch) Changed(ctx context.Context, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, seen := w.calls[id]; seen {
		return
	}
	inc, err := w.v.store.Get(ctx, id)
	if err != nil {
		return
	}
	d, _ := remediate.Def(session.StepDeny)
	if st := inc.Step(session.StepDeny); st.Status == session.StatusRunning && d.Reached(st) == "contained" {
		w.calls[id] = w.v.sim.Calls()
	}
}

func (w *containedWatch) at(id string) ([]nstest.Call, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.calls[id]
	return c, ok
}

func callLine(c nstest.Call) string { return c.Method + " " + c.Path }

func lines(calls []nstest.Call) []string {
	out := make([]string, 0, len(calls))
	for _, c := range calls {
		out = append(out, callLine(c))
	}
	return out
}

// isPolicyRead reports whether c reads a dial policy or its rules (in a domain or system-wide).
func isPolicyRead(c nstest.Call) bool {
	return c.Method == "GET" && strings.Contains(c.Path, "/dialpolicy/")
}

// TestDenyCriticalPath: with the domain's deny policy known, deny makes exactly read user →
// PUT → verify GET before "contained" is recorded, and ends the live calls only after (listing
// them once when there is none to end); a second deny in the domain reads no policy.
func TestDenyCriticalPath(t *testing.T) {
	v := newEnv(t)
	w := &containedWatch{v: v, calls: map[string][]nstest.Call{}}
	e := v.engine("A", func(c *remediate.Config) { c.Notifier = w })
	ctx := context.Background()

	first := v.open(e, "1002", "acme.example") // the first deny in the domain reads its policy
	v.sim.ResetCalls()
	if _, err := e.Run(ctx, first.ID, session.StepDeny, "U1", remediate.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	// No live call: the one list after the verified PUT is the answer, nothing is re-listed.
	lists := 0
	for _, c := range v.sim.Calls() {
		if c.Method == "GET" && strings.HasSuffix(c.Path, "/1002/calls") {
			lists++
		}
	}
	if lists != 1 {
		t.Errorf("deny of a user without live calls listed them %d times, want 1", lists)
	}
	v.sim.AddActiveCall("acme.example", "1001", "call-1", "+88212345678")
	inc := v.open(e, "1001", "acme.example")
	v.sim.ResetCalls()
	res, err := e.Run(ctx, inc.ID, session.StepDeny, "U1", remediate.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	user := "/domains/acme.example/users/1001"
	before, ok := w.at(inc.ID)
	if !ok {
		t.Fatal(`deny never recorded "contained" while running`)
	}
	if got, want := fmt.Sprint(lines(before)), fmt.Sprint([]string{"GET " + user, "PUT " + user, "GET " + user}); got != want {
		t.Errorf("PBX calls before contained = %s\nwant %s", got, want)
	}
	all := v.sim.Calls()
	if got, want := fmt.Sprint(lines(all[len(before):])), fmt.Sprint([]string{"GET " + user + "/calls",
		"DELETE " + user + "/calls/call-1", "GET " + user + "/calls"}); got != want {
		t.Errorf("PBX calls after contained = %s\nwant %s", got, want)
	}
	for _, c := range all {
		if isPolicyRead(c) {
			t.Errorf("the second deny in the domain read the policy: %s", callLine(c))
		}
	}
	st := res.Incident.Step(session.StepDeny)
	if st.Status != session.StatusDone || st.Progress["policy"] != string(remediate.PolicyVerified) {
		t.Errorf("deny = %s, progress %v", st.Status, st.Progress)
	}
	if n := len(v.sim.ActiveCalls("acme.example", "1001")); n != 0 {
		t.Errorf("%d live call(s) still up", n)
	}
}

// TestDenyPolicyCacheTTL: the policy read at the first deny is used while fresh; past half the
// TTL a deny uses it and a refresh runs in the background; past the TTL it is read again.
func TestDenyPolicyCacheTTL(t *testing.T) {
	v := newEnv(t)
	e := v.engine("A", func(c *remediate.Config) { c.PolicyTTL = time.Minute })
	ctx := context.Background()
	policyReads := func() (n int) {
		for _, c := range v.sim.Calls() {
			if isPolicyRead(c) {
				n++
			}
		}
		return n
	}
	deny := func(user string) {
		t.Helper()
		inc := v.open(e, user, "acme.example")
		if _, err := e.Run(ctx, inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); err != nil {
			t.Fatalf("deny %s: %v", user, err)
		}
	}
	deny("1001")
	if policyReads() == 0 {
		t.Fatal("the first deny in the domain read no policy")
	}

	v.sim.ResetCalls()
	deny("1002")
	if n := policyReads(); n != 0 {
		t.Errorf("a deny within the TTL made %d policy read(s)", n)
	}

	v.clock.Advance(40 * time.Second) // past half the TTL: used, and refreshed in the background
	v.sim.ResetCalls()
	deny("1003")
	testenv.WaitFor(t, 10*time.Second, "the background refresh of the policy", func() bool { return policyReads() > 0 })

	v.clock.Advance(2 * time.Minute) // past the TTL (of the refreshed entry too): read again
	v.sim.ResetCalls()
	deny("1004")
	if policyReads() == 0 {
		t.Error("a deny past the TTL did not read the policy again")
	}
}

// TestDenyPolicySystemReadOnce: the system-level deny policy is read once for every domain that
// has none of its own (each such domain reads its own 404 once); a domain with its own policy of
// that name uses it, rules included (its permit rule warns), not the system's.
func TestDenyPolicySystemReadOnce(t *testing.T) {
	seed := nstest.DemoSeed()
	seed.Domains = append(seed.Domains, nstest.Domain{Domain: "initech.example", Reseller: seed.Domains[0].Reseller,
		Description: "Initech"})
	seed.Users = append(seed.Users, map[string]any{"user": "3001", "domain": "initech.example",
		"name-first-name": "Peter", "name-last-name": "Gibbons", "dial-policy": "US and Canada"})
	seed.DialPolicies = append(seed.DialPolicies, nstest.DialPolicy{DialPolicy: "Deny All", Domain: "globex.example",
		Description: "Globex's own", Permissions: []map[string]any{{"dialpolicy": "Deny All", "domain": "globex.example",
			"permission-match": "911", "permission-mode": "permit", "permission-reason": "Emergency",
			"created-datetime": "2024-01-01T00:00:00+00:00", "permission-id": "OTEx"}}})
	v := newEnvSeed(t, testenv.NewRedis(t), seed)
	e := v.engine("A", nil)
	ctx := context.Background()
	v.sim.ResetCalls()
	type target struct{ user, domain string }
	var ids []string
	for _, u := range []target{{"1001", "acme.example"}, {"3001", "initech.example"}, {"2001", "globex.example"},
		{"1002", "acme.example"}} {
		inc := v.open(e, u.user, u.domain)
		if _, err := e.Run(ctx, inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); err != nil {
			t.Fatalf("deny %s@%s: %v", u.user, u.domain, err)
		}
		ids = append(ids, inc.ID)
	}
	reads := map[string]int{}
	for _, c := range v.sim.Calls() {
		if isPolicyRead(c) {
			reads[c.Path]++
		}
	}
	const sys = "/dialpolicy/Deny All"
	want := map[string]int{
		sys: 1, sys + "/permission": 1, // once, for acme and initech
		"/domains/acme.example" + sys: 1, "/domains/initech.example" + sys: 1, // their own 404s, once each
		"/domains/globex.example" + sys: 1, "/domains/globex.example" + sys + "/permission": 1, // its own policy
	}
	if !maps.Equal(reads, want) {
		t.Errorf("policy reads = %v\nwant %v", reads, want)
	}
	for i, id := range ids {
		cur := v.get(id)
		st := cur.Step(session.StepDeny)
		warned := st.Status == session.StatusWarnings
		if wantWarn := i == 2; warned != wantWarn { // only globex's own policy has a permit rule
			t.Errorf("deny %d: status %s (want a permit-rule warning: %v)", i, st.Status, wantWarn)
		}
	}
}

// TestCrashAfterContainedEndsCalls: a runner that dies after the verified PUT, before the live
// calls are ended, leaves deny running and contained; Reconcile resumes it, makes no second
// PUT, ends the calls and finishes the step.
func TestCrashAfterContainedEndsCalls(t *testing.T) {
	v := newEnv(t)
	ctx := context.Background()
	a, b := v.engine("A", nil), v.engine("B", nil)
	a.SetHook(func(step session.Step, op string, after bool) error {
		if op == "end call" && !after {
			return fmt.Errorf("crash injected before %s: %w", op, remediate.ErrStop)
		}
		return nil
	})
	v.sim.AddActiveCall("acme.example", "1001", "call-1", "+88212345678")
	inc := v.open(a, "1001", "acme.example")
	if _, err := a.Run(ctx, inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); !errors.Is(err, remediate.ErrStop) {
		t.Fatalf("deny = %v, want the injected crash", err)
	}
	d, _ := remediate.Def(session.StepDeny)
	cur := v.get(inc.ID)
	st := cur.Step(session.StepDeny)
	if st.Status != session.StatusRunning || d.Reached(st) != "contained" {
		t.Fatalf("after the crash: deny %s, reached %q; want running and contained", st.Status, d.Reached(st))
	}
	if n := len(v.sim.ActiveCalls("acme.example", "1001")); n != 1 {
		t.Fatalf("%d live calls after the crash, want 1 still up", n)
	}
	v.clock.Advance(time.Minute)
	rs, err := b.Reconcile(ctx)
	if err != nil || len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("Reconcile = %+v, %v", rs, err)
	}
	cur = v.get(inc.ID)
	st = cur.Step(session.StepDeny)
	if st.Status != session.StatusDone || !strings.Contains(st.Summary, "1 live call(s) ended") {
		t.Errorf("deny after the resume = %s %q", st.Status, st.Summary)
	}
	if n := len(v.sim.ActiveCalls("acme.example", "1001")); n != 0 {
		t.Errorf("%d live call(s) still up after the resume", n)
	}
	want := []string{"PUT /domains/acme.example/users/1001", "DELETE /domains/acme.example/users/1001/calls/call-1"}
	if got := v.writes(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("PBX writes = %v\nwant %v", got, want)
	}
}
