package remediate_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// crashRedis is a Redis hook that, once armed, lets `left` commands through and fails every
// later one before it is sent: what Redis sees of a process that died at that point.
type crashRedis struct {
	mu    sync.Mutex
	armed bool
	left  int
	sent  int // commands let through since armed
}

var errCrashed = errors.New("crashed (test)")

func (c *crashRedis) arm(left int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed, c.left, c.sent = true, left, 0
}

// disarm stops failing commands and returns how many went through while armed.
func (c *crashRedis) disarm() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed = false
	return c.sent
}

func (c *crashRedis) pass(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.armed {
		return true
	}
	if c.left < n {
		c.left = 0
		return false
	}
	c.left -= n
	c.sent += n
	return true
}

func (c *crashRedis) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *crashRedis) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !c.pass(1) {
			cmd.SetErr(errCrashed)
			return errCrashed
		}
		return next(ctx, cmd)
	}
}

func (c *crashRedis) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !c.pass(len(cmds)) {
			for _, cmd := range cmds {
				cmd.SetErr(errCrashed)
			}
			return errCrashed
		}
		return next(ctx, cmds)
	}
}

// recordLine pairs a step's record (a progress value) with the audit line that says it.
type recordLine struct {
	what     string
	recorded func(progress map[string]string) bool
	line     func(e session.AuditEntry) bool
}

func progressIs(key string, values ...remediate.Progress) func(map[string]string) bool {
	return func(p map[string]string) bool {
		for k, v := range p {
			if (k == key || strings.HasSuffix(key, "@") && strings.HasPrefix(k, key)) && slices.Contains(values, remediate.Progress(v)) {
				return true
			}
		}
		return false
	}
}

func lineIs(action, before, after string) func(session.AuditEntry) bool {
	return func(e session.AuditEntry) bool {
		return e.Action == action && (before == "" || e.Before == before) && (after == "" || e.After == after)
	}
}

// stepRecords are the records of each step (other than deny's, TestDenyWritesBeforePUT) with
// their audit lines. A per-run key ends in "@".
var stepRecords = map[session.Step][]recordLine{
	session.StepRecreate: {
		{"1001 deleted", progressIs("device/1001", remediate.DeviceDeleted, remediate.DeviceCreated, remediate.DeviceLinked, remediate.DeviceVerified),
			lineIs("step.recreate.device", "1001", "deleted")},
		{"1001 created", progressIs("device/1001", remediate.DeviceCreated, remediate.DeviceLinked, remediate.DeviceVerified),
			lineIs("step.recreate.device", "deleted", "1001 created")},
		{"1001a deleted", progressIs("device/1001a", remediate.DeviceDeleted, remediate.DeviceCreated, remediate.DeviceLinked, remediate.DeviceVerified),
			lineIs("step.recreate.device", "1001a", "deleted")},
		{"1001a created", progressIs("device/1001a", remediate.DeviceCreated, remediate.DeviceLinked, remediate.DeviceVerified),
			lineIs("step.recreate.device", "deleted", "1001a created")},
	},
	session.StepReset: {
		{"sessions", progressIs("jwt@", remediate.JWTRequested), lineIs("step.reset.sessions", "", "revocation requested")},
		{"pin", progressIs("pin", remediate.PINSet), lineIs("step.reset.pin", "", "")},
		{"email", progressIs("email@", remediate.EmailSent), lineIs("step.reset.email", "", "")},
	},
	session.StepRestore: {
		{"policy", progressIs("policy", remediate.PolicySet), lineIs("step.restore.policy", "", origPolicy)},
	},
}

// crashEnv is an env whose engine's Redis client can be made to crash.
func crashEnv(t *testing.T) (*env, *remediate.Engine, *crashRedis) {
	t.Helper()
	v := newEnv(t)
	rdb, err := session.NewClient(v.redis.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	c := &crashRedis{}
	rdb.AddHook(c)
	e := v.engineOn("A", v.newStore(rdb), nil)
	return v, e, c
}

// runCrashing runs the steps before step cleanly, then step with the engine's Redis crashing
// after `left` commands; it returns how many commands the step sent and the incident.
func runCrashing(t *testing.T, step session.Step, left int) (int, *env, string) {
	t.Helper()
	v, e, c := crashEnv(t)
	ctx := context.Background()
	inc := v.open(e, "1001", "acme.example")
	for _, s := range session.Steps {
		if s == step {
			break
		}
		if _, err := e.Run(ctx, inc.ID, s, "U1", remediate.RunOptions{}); err != nil {
			t.Fatalf("Run(%s): %v", s, err)
		}
	}
	e.Wait()
	c.arm(left)
	_, err := e.Run(ctx, inc.ID, step, "U1", remediate.RunOptions{})
	e.Wait()
	sent := c.disarm()
	if err != nil && !errors.Is(err, errCrashed) {
		t.Fatalf("Run(%s) crashing after %d commands: %v", step, left, err)
	}
	return sent, v, inc.ID
}

// TestStepRecordsWithTheirLines: recreate's, reset's and restore's records of what they did on
// the PBX are stored with their audit lines, in one write: wherever the process dies (here:
// its Redis commands fail from the n-th on, for every n of a clean run), each record is in the
// store with its line, or neither is.
func TestStepRecordsWithTheirLines(t *testing.T) {
	for _, step := range []session.Step{session.StepRecreate, session.StepReset, session.StepRestore} {
		t.Run(string(step), func(t *testing.T) {
			total, v, id := runCrashing(t, step, 1<<30)
			checkRecordLines(t, v, id, step, true)
			for n := range total {
				t.Run(fmt.Sprint(n), func(t *testing.T) {
					_, v, id := runCrashing(t, step, n)
					checkRecordLines(t, v, id, step, false)
				})
			}
		})
	}
}

// checkRecordLines checks that each of step's records is stored with its line or neither is,
// and with all, that every record is there.
func checkRecordLines(t *testing.T, v *env, id string, step session.Step, all bool) {
	t.Helper()
	inc := v.get(id)
	progress := inc.Step(step).Progress
	es, err := v.store.Audit(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, rl := range stepRecords[step] {
		rec, line := rl.recorded(progress), slices.ContainsFunc(es, rl.line)
		if rec != line || all && !rec {
			t.Errorf("%s: recorded %v, audit line %v (progress %v)", rl.what, rec, line, progress)
		}
	}
}
