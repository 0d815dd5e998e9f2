package session_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

func TestBeginExactlyOnce(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxT(t)
	inc := open(t, s, "1001")

	var wins, running, other atomic.Int32
	var winner *session.Run
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 50 {
		wg.Go(func() {
			<-start
			l, _, err := s.Begin(ctx, inc.ID, session.StepDeny, session.BeginOptions{
				Actor: "U" + string(rune('A'+i%26)), Owner: "worker", LeaseTTL: time.Minute})
			var se *session.StepError
			switch {
			case err == nil:
				wins.Add(1)
				winner = l
			case errors.Is(err, session.ErrAlreadyRunning) && errors.As(err, &se) && se.By != "" && !se.At.IsZero():
				running.Add(1)
			default:
				other.Add(1)
				t.Errorf("Begin: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || running.Load() != 49 || other.Load() != 0 {
		t.Fatalf("50 Begins: %d won, %d already running, %d other; want 1, 49, 0", wins.Load(), running.Load(), other.Load())
	}
	got, err := s.Get(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	st := got.Step(session.StepDeny)
	if st.Status != session.StatusRunning || st.Attempts != 1 || st.Fence != winner.Lease().Fence || st.LeaseOwner != "worker" {
		t.Errorf("deny after the race: %+v (winner fence %d)", st, winner.Lease().Fence)
	}
	if _, err := winner.Finish(ctx, session.StatusDone, "verified", nil, nil); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Begin(ctx, inc.ID, session.StepDeny, session.BeginOptions{Actor: "U2", LeaseTTL: time.Minute})
	var se *session.StepError
	if !errors.Is(err, session.ErrAlreadyDone) || !errors.As(err, &se) || se.By == "" || se.At.IsZero() {
		t.Errorf("Begin after done = %v, want ErrAlreadyDone with who and when", err)
	}
}

func TestBeginTransitions(t *testing.T) {
	errPre := errors.New("deny first")
	tests := []struct {
		name  string
		setup func(t *testing.T, s *session.Store, id string)
		opt   session.BeginOptions
		want  error
	}{
		{name: "ready", want: nil},
		{name: "failed is a retry", setup: func(t *testing.T, s *session.Store, id string) {
			l := begin(t, s, id, session.StepRecreate)
			if _, err := l.Fail(ctxT(t), "conflict", "create refused", nil); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "awaiting, not approved", setup: func(t *testing.T, s *session.Store, id string) {
			if _, err := s.RequestApproval(ctxT(t), id, session.StepRecreate, "U1", time.Hour, false); err != nil {
				t.Fatal(err)
			}
		}, opt: session.BeginOptions{AllowFrom: []session.Status{session.StatusAwaiting}}, want: session.ErrAwaitingApproval},
		{name: "awaiting, not allowed", setup: func(t *testing.T, s *session.Store, id string) {
			if _, err := s.RequestApproval(ctxT(t), id, session.StepRecreate, "U1", time.Hour, false); err != nil {
				t.Fatal(err)
			}
		}, want: session.ErrAwaitingApproval},
		{name: "approved", setup: func(t *testing.T, s *session.Store, id string) {
			if _, err := s.RequestApproval(ctxT(t), id, session.StepRecreate, "U1", time.Hour, false); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Approve(ctxT(t), id, session.StepRecreate, "U2"); err != nil {
				t.Fatal(err)
			}
		}, opt: session.BeginOptions{AllowFrom: []session.Status{session.StatusAwaiting}}},
		{name: "ready but only approved allowed", opt: session.BeginOptions{AllowFrom: []session.Status{session.StatusAwaiting}},
			want: session.ErrBadTransition},
		{name: "precondition", opt: session.BeginOptions{Check: func(*session.Incident) error { return errPre }}, want: errPre},
		{name: "closed", setup: func(t *testing.T, s *session.Store, id string) {
			if _, err := s.Close(ctxT(t), id, session.StateAborted, "U1", ""); err != nil {
				t.Fatal(err)
			}
		}, want: session.ErrClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _ := newStore(t)
			inc := open(t, s, "1001")
			if tc.setup != nil {
				tc.setup(t, s, inc.ID)
			}
			tc.opt.Owner = "w9"
			if tc.opt.LeaseTTL == 0 {
				tc.opt.LeaseTTL = time.Minute
			}
			if tc.opt.Actor == "" {
				tc.opt.Actor = "U3"
			}
			l, got, err := s.Begin(ctxT(t), inc.ID, session.StepRecreate, tc.opt)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("Begin = %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Begin: %v", err)
			}
			st := got.Step(session.StepRecreate)
			if st.Status != session.StatusRunning || l.Lease().Fence != st.Fence || l.Lease().Owner != "w9" {
				t.Errorf("after Begin: %+v, lease %+v", st, l.Lease())
			}
			if st.Approved() || (tc.name == "approved") != (st.ApprovedBy == "U2") {
				t.Errorf("approval record after Begin: %+v", st)
			}
			if tc.name == "approved" && st.RequestedBy != "U1" {
				t.Errorf("requester of record = %q, want U1 (the requester, not the runner)", st.RequestedBy)
			}
		})
	}
}

func TestFencing(t *testing.T) {
	s, _, clk := newStore(t)
	ctx := ctxT(t)
	inc := open(t, s, "1001")
	old, _, err := s.Begin(ctx, inc.ID, session.StepRecreate, session.BeginOptions{Actor: "U1", Owner: "replica-a", LeaseTTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Progress(ctx, "device/1001a", "deleted"); err != nil {
		t.Fatal(err)
	}
	if err := old.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if exp, _ := s.ExpiredLeases(ctx); len(exp) != 0 {
		t.Errorf("ExpiredLeases before expiry = %+v", exp)
	}
	if _, err := s.TakeOver(ctx, old.Lease(), "replica-b", 10*time.Second); !errors.Is(err, session.ErrAlreadyRunning) {
		t.Errorf("TakeOver of a valid lease = %v, want ErrAlreadyRunning", err)
	}

	clk.Advance(11 * time.Second) // replica-a hangs past its lease
	if err := old.CheckFence(ctx); !errors.Is(err, session.ErrFenced) {
		t.Errorf("CheckFence of an expired lease = %v, want ErrFenced", err)
	}
	exp, err := s.ExpiredLeases(ctx)
	if err != nil || len(exp) != 1 || exp[0].Fence != old.Lease().Fence || exp[0].Owner != "replica-a" {
		t.Fatalf("ExpiredLeases = %+v, %v", exp, err)
	}
	// Two reconcilers race for the takeover: one wins.
	var wg sync.WaitGroup
	var won atomic.Int32
	var nl *session.Run
	for range 5 {
		wg.Go(func() {
			l, err := s.TakeOver(ctx, exp[0], "replica-b", 10*time.Second)
			if err == nil {
				won.Add(1)
				nl = l
			} else if !errors.Is(err, session.ErrFenced) {
				t.Errorf("losing TakeOver = %v, want ErrFenced", err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 || nl.Lease().Fence <= old.Lease().Fence {
		t.Fatalf("TakeOver: %d won, new fence %d (old %d)", won.Load(), nl.Lease().Fence, old.Lease().Fence)
	}

	// The old runner wakes up: every write with its fence is refused.
	oldWrites := map[string]func() error{
		"CheckFence": func() error { return old.CheckFence(ctx) },
		"Renew":      func() error { return old.Renew(ctx) },
		"Progress":   func() error { _, err := old.Progress(ctx, "device/1001a", "created"); return err },
		"Finish":     func() error { _, err := old.Finish(ctx, session.StatusDone, "done", nil, nil); return err },
		"Fail":       func() error { _, err := old.Fail(ctx, "x", "y", nil); return err },
		"SaveDevices": func() error {
			_, err := old.SaveDevices(ctx, []session.DeviceSnapshot{{Device: "1001a"}})
			return err
		},
	}
	for name, fn := range oldWrites {
		if err := fn(); !errors.Is(err, session.ErrFenced) {
			t.Errorf("old lease %s = %v, want ErrFenced", name, err)
		}
	}
	// The new runner resumes from the recorded progress and finishes.
	if err := nl.CheckFence(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := nl.Finish(ctx, session.StatusWarnings, "re-created", []session.SubResult{{Name: "line link", Outcome: session.OutcomeRequested}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := got.Step(session.StepRecreate)
	want := map[string]string{"device/1001a": "deleted"}
	if diff := cmp.Diff(st.Progress, want); diff != "" {
		t.Errorf("progress (-got +want):\n%s", diff)
	}
	if st.Status != session.StatusWarnings || st.Attempts != 1 || st.LeaseOwner != "" {
		t.Errorf("after finish: %+v", st)
	}
	if err := nl.CheckFence(ctx); !errors.Is(err, session.ErrFenced) {
		t.Errorf("CheckFence after Finish = %v, want ErrFenced", err)
	}
}

func TestApprovals(t *testing.T) {
	tests := []struct {
		name       string
		steps      func(s *session.Store, clk *testenv.Clock, id string) error
		want       error
		wantStatus session.Status
	}{
		{name: "self approval", steps: func(s *session.Store, _ *testenv.Clock, id string) error {
			_, err := s.Approve(ctxT(t), id, session.StepRestore, "U1")
			return err
		}, want: session.ErrSelfApproval, wantStatus: session.StatusAwaiting},
		{name: "expired", steps: func(s *session.Store, clk *testenv.Clock, id string) error {
			clk.Advance(2 * time.Hour)
			_, err := s.Approve(ctxT(t), id, session.StepRestore, "U2")
			return err
		}, want: session.ErrExpired, wantStatus: session.StatusAwaiting},
		{name: "approved twice", steps: func(s *session.Store, _ *testenv.Clock, id string) error {
			if _, err := s.Approve(ctxT(t), id, session.StepRestore, "U2"); err != nil {
				return err
			}
			_, err := s.Approve(ctxT(t), id, session.StepRestore, "U3")
			return err
		}, want: session.ErrNotAwaiting, wantStatus: session.StatusAwaiting},
		{name: "pending request asked again", steps: func(s *session.Store, _ *testenv.Clock, id string) error {
			_, err := s.RequestApproval(ctxT(t), id, session.StepRestore, "U3", time.Hour, false)
			return err
		}, want: session.ErrAwaitingApproval, wantStatus: session.StatusAwaiting},
		{name: "expired request asked again", steps: func(s *session.Store, clk *testenv.Clock, id string) error {
			clk.Advance(2 * time.Hour)
			_, err := s.RequestApproval(ctxT(t), id, session.StepRestore, "U3", time.Hour, false)
			return err
		}, wantStatus: session.StatusAwaiting},
		{name: "reject goes back to ready", steps: func(s *session.Store, _ *testenv.Clock, id string) error {
			_, err := s.Reject(ctxT(t), id, session.StepRestore, "U2")
			return err
		}, wantStatus: session.StatusReady},
		{name: "reject when not awaiting", steps: func(s *session.Store, _ *testenv.Clock, id string) error {
			if _, err := s.Reject(ctxT(t), id, session.StepRestore, "U1"); err != nil {
				return err
			}
			_, err := s.Reject(ctxT(t), id, session.StepRestore, "U1")
			return err
		}, want: session.ErrNotAwaiting, wantStatus: session.StatusReady},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _, clk := newStore(t)
			inc := open(t, s, "1001")
			if _, err := s.RequestApproval(ctxT(t), inc.ID, session.StepRestore, "U1", time.Hour, true); err != nil {
				t.Fatal(err)
			}
			err := tc.steps(s, clk, inc.ID)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			got, _ := s.Get(ctxT(t), inc.ID)
			st := got.Step(session.StepRestore)
			if st.Status != tc.wantStatus {
				t.Errorf("status %s, want %s", st.Status, tc.wantStatus)
			}
			if tc.name == "expired" && st.ApprovalPending(clk.Now()) {
				t.Error("an expired request is still pending")
			}
			if tc.name == "self approval" && !st.ApprovalPending(clk.Now()) {
				t.Error("a fresh request is not pending")
			}
		})
	}

	t.Run("reject after a failure goes back to failed", func(t *testing.T) {
		s, _, _ := newStore(t)
		inc := open(t, s, "1001")
		l := begin(t, s, inc.ID, session.StepRestore)
		if _, err := l.Fail(ctxT(t), "drift", "policy changed", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RequestApproval(ctxT(t), inc.ID, session.StepRestore, "U1", time.Hour, false); err != nil {
			t.Fatal(err)
		}
		got, err := s.Reject(ctxT(t), inc.ID, session.StepRestore, "U2")
		if err != nil {
			t.Fatal(err)
		}
		st := got.Step(session.StepRestore)
		if st.Status != session.StatusFailed || st.RejectedBy != "U2" || st.ErrKind != "drift" {
			t.Errorf("after reject: %+v", st)
		}
	})
}

func TestClaimReminder(t *testing.T) {
	s, _, clk := newStore(t)
	ctx := ctxT(t)
	inc := open(t, s, "1001")
	claim := func() bool {
		t.Helper()
		var wg sync.WaitGroup
		var n atomic.Int32
		for range 5 { // five replicas ask at once
			wg.Go(func() {
				ok, _, err := s.ClaimReminder(ctx, inc.ID, 30*time.Minute, 2*time.Hour)
				if err != nil {
					t.Errorf("ClaimReminder: %v", err)
				}
				if ok {
					n.Add(1)
				}
			})
		}
		wg.Wait()
		if n.Load() > 1 {
			t.Fatalf("%d replicas claimed the same reminder", n.Load())
		}
		return n.Load() == 1
	}
	clk.Advance(time.Hour)
	if claim() {
		t.Error("reminder before deny finished")
	}
	l := begin(t, s, inc.ID, session.StepDeny)
	if _, err := l.Finish(ctx, session.StatusDone, "", nil, nil); err != nil {
		t.Fatal(err)
	}
	var got []bool
	for _, d := range []time.Duration{29 * time.Minute, 2 * time.Minute, time.Hour, time.Hour, time.Minute} {
		clk.Advance(d)
		got = append(got, claim())
	}
	if diff := cmp.Diff(got, []bool{false, true, false, true, false}); diff != "" {
		t.Errorf("reminders at 29m, 31m, 1h31m, 2h31m, 2h32m after deny (-got +want):\n%s", diff)
	}
}

// TestCheckFenceAfterAFencedWrite: right after a fenced write found the lease valid, CheckFence
// answers from it, with no read (here the incident is deleted behind the run's back, which a read
// would see); once the confirmation is older than fenceFresh, or the lease has expired and
// another runner took it over, CheckFence reads again and sees it.
func TestCheckFenceAfterAFencedWrite(t *testing.T) {
	s, r, clk := newStore(t)
	ctx := ctxT(t)
	inc := open(t, s, "1001")
	l := begin(t, s, inc.ID, session.StepDeny)
	if err := l.CheckFence(ctx); err != nil {
		t.Fatalf("CheckFence right after Begin: %v", err)
	}
	clk.Advance(time.Second)
	if _, err := l.Progress(ctx, "policy", "set"); err != nil {
		t.Fatal(err)
	}
	if err := r.Client.Del(ctx, r.Prefix+":{1001@acme.example}:inc:"+inc.ID).Err(); err != nil {
		t.Fatal(err)
	}
	if err := l.CheckFence(ctx); err != nil {
		t.Errorf("CheckFence right after a fenced write = %v, want nil (answered from the write)", err)
	}
	clk.Advance(25 * time.Millisecond)
	if err := l.CheckFence(ctx); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("CheckFence once the write is 25 ms old = %v, want the read's ErrNotFound", err)
	}

	// A lease that expired and was taken over: the old runner's last write is recent by its own
	// count, but the lease is past its end, so CheckFence reads and is fenced.
	inc2 := open(t, s, "1002")
	old := begin(t, s, inc2.ID, session.StepDeny)
	clk.Advance(31 * time.Second)
	other, _ := storeOn(t, r.Client, withPrefix(r), func(c *session.Config) { c.Now = clk.Now })
	if _, err := other.TakeOver(ctx, old.Lease(), "w2", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := old.CheckFence(ctx); !errors.Is(err, session.ErrFenced) {
		t.Errorf("CheckFence of a taken-over lease = %v, want ErrFenced", err)
	}
}
