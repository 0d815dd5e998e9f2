package session_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// TestLinesCopyFailureLogged: a change's audit lines are copied into the global chain without
// anyone waiting for the copy, and a copy that fails (the incident's copy mark damaged) is still
// logged: by the flush itself (copyReq.failed), not by a goroutine waiting per line.
func TestLinesCopyFailureLogged(t *testing.T) {
	logs := &testenv.SyncBuffer{}
	s, rdb, _ := newStore(t, func(c *session.Config) { c.Logger = zerolog.New(logs) })
	ctx := ctxT(t)
	inc := open(t, s, "3001")
	run := begin(t, s, inc.ID, session.StepDeny)
	if err := rdb.Client.HSet(ctx, rdb.Key("{audit}:mirrored"), inc.ID, "garbage").Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		lines := func(*session.Incident) []session.AuditEntry {
			return []session.AuditEntry{{Actor: "U1", Action: "step.deny.note", Step: session.StepDeny, Detail: "line"}}
		}
		if _, err := run.Record(ctx, "k", string(rune('a'+i%26)), lines); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, 10*time.Second, "the failed copy logged", func() bool {
		return strings.Contains(logs.String(), "copy audit into the global chain")
	})
}
