package remediate_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

func TestRunReconcilerResumes(t *testing.T) {
	v := newEnv(t)
	a, b := v.engine("A", nil), v.engine("B", nil)
	inc := v.open(a, "1001", "acme.example")
	a.SetHook(func(step session.Step, op string, after bool) error { return remediate.ErrStop })
	if _, err := a.Run(context.Background(), inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); !errors.Is(err, remediate.ErrStop) {
		t.Fatal(err)
	}
	v.clock.Advance(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.RunReconciler(ctx, 10*time.Millisecond); close(done) }()
	testenv.WaitFor(t, 10*time.Second, "the reconciler to finish the interrupted deny", func() bool {
		cur := v.get(inc.ID)
		return cur.Step(session.StepDeny).Status == session.StatusDone
	})
	cancel()
	<-done
	if got := v.userField("1001", "acme.example", "dial-policy"); got != denyPolicy {
		t.Errorf("dial-policy = %v", got)
	}
}
