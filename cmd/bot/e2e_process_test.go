package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
	"github.com/compromised-responder/bot/internal/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain removes the bot binary buildBot made (its temporary directory) after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// productionBuild is how deploy/Dockerfile builds the production bot (TestDockerImage checks
// that it still does): no PBX simulator (-tags nosim), no symbol tables. The process tests and
// the burst benchmarks run that binary, so what they kill and measure (peak RSS: the binary's
// mapped pages count too) is what ships, not a bigger build with the simulator linked in.
var productionBuild = []string{"-trimpath", "-tags", "nosim", "-ldflags", "-s -w"}

// buildBot compiles cmd/bot once per test binary, as the production image does
// (productionBuild), for tests that must kill a real process and for the benchmarks that
// measure one.
func buildBot(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and kills a real process; skipped with -short")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bot-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "bot")
		args := append(append([]string{"build"}, productionBuild...), "-o", binPath, ".")
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as the Dockerfile builds it
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return binPath
}

// proc is a `bot serve` child process.
type proc struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{} // closed when the process has exited; err is then set
	err  error
}

func (w *world) startProcess(bin string) *proc {
	w.t.Helper()
	out, errs := &testenv.SyncBuffer{}, &testenv.SyncBuffer{}
	w.mu.Lock()
	w.logs = append(w.logs, out, errs)
	w.mu.Unlock()
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range w.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = out, errs
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	w.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	w.waitFor("the process to announce its address", func() bool {
		if m := listenRE.FindStringSubmatch(out.String()); m != nil {
			p.url = m[1]
			return true
		}
		return false
	})
	w.waitReady(&bot{url: p.url}, true)
	return p
}

// stop sends SIGTERM and waits (at most 40 s, the deploy's grace period) for a clean exit.
func (p *proc) stop(tb testing.TB) {
	tb.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Errorf("SIGTERM: %v", err)
		return
	}
	select {
	case <-p.done:
		if p.err != nil {
			tb.Errorf("after SIGTERM the process exited with %v", p.err)
		}
	case <-time.After(40 * time.Second):
		tb.Errorf("the process did not stop within 40 s of SIGTERM")
	}
}

// TestServeKilledMidStep: a bot process SIGKILLed in the middle of re-creating devices; a new
// process resumes the step from its recorded progress within 10 s of the lease running out,
// the PBX ends with every device exactly once, and SIGTERM stops the new process cleanly.
func TestServeKilledMidStep(t *testing.T) {
	tb := time.Now()
	bin := buildBot(t)
	t.Logf("built in %s", time.Since(tb).Round(time.Millisecond))
	w := newWorld(t)
	t0 := time.Now()
	p1 := w.startProcess(bin)
	t.Logf("first process ready after %s", time.Since(t0).Round(time.Millisecond))
	ts, inc := w.openAndDeny("")

	w.slowDeviceCreates(1500 * time.Millisecond)
	w.click(alice, ts, "step:recreate")
	w.waitFor("a device deleted", func() bool {
		return w.step(inc.ID, session.StepRecreate).Progress["device/1001"] != ""
	})
	if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p1.done
	killed := time.Now()
	w.pbx.SetFaults(nstest.Faults{})
	if st := w.step(inc.ID, session.StepRecreate); st.Status != session.StatusRunning {
		t.Fatalf("after the kill recreate is %s, want running (interrupted)", st.Status)
	}

	t1 := time.Now()
	p2 := w.startProcess(bin)
	t.Logf("second process ready after %s", time.Since(t1).Round(time.Millisecond))
	w.waitFor("recreate resumed and finished", func() bool {
		return w.step(inc.ID, session.StepRecreate).Status.Finished()
	})
	// Lease (5 s) + reconcile period (5 s) + the remaining PBX work.
	t.Logf("recreate finished %s after the kill", time.Since(killed).Round(time.Millisecond))
	if d := time.Since(killed); d > 15*time.Second {
		t.Errorf("recreate finished %s after the kill, want within 15 s", d)
	}
	var devs []string
	for _, d := range w.pbx.Devices("acme.example", "1001") {
		devs = append(devs, d["device"].(string))
	}
	if strings.Join(devs, ",") != "1001,1001a" {
		t.Errorf("devices after the resumed recreate: %v, want 1001 and 1001a once each", devs)
	}
	// The killed process may have held the card's sync lock: the card follows within its TTL.
	w.cardShows(ts, "recreate done")
	t.Logf("card updated %s after the kill", time.Since(killed).Round(time.Millisecond))

	replies := w.threadComplete(inc.ID)
	entries, _ := w.store.Audit(context.Background(), inc.ID)
	// A kill between a post and its cursor write may repeat that one reply (a batch of lines, posted
	// again by the next process); never more, never less.
	if extra := len(replies) - len(entries); extra < 0 || extra > 0 && !oneRepeatedReply(w.slack.Thread(inc.Channel, inc.MessageTS), extra) {
		t.Errorf("thread has %d lines for %d audit entries after a kill", len(replies), len(entries))
	}
	t.Logf("alice got %d credential values after the resumed run", len(secretValues(w.slack.Ephemerals(alice))))

	// SIGTERM: a clean stop.
	termAt := time.Now()
	defer func() { t.Logf("stopped %s after SIGTERM", time.Since(termAt).Round(time.Millisecond)) }()
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p2.done:
		if p2.err != nil {
			t.Errorf("after SIGTERM the process exited with %v", p2.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the process did not stop within 30 s of SIGTERM")
	}
	w.jsonLines()
	if secrets := secretValues(w.slack.Ephemerals(alice)); len(secrets) > 0 {
		w.scanSecrets(secrets)
	}
}

// oneRepeatedReply reports whether the thread's surplus of extra lines is one reply whose lines
// all appeared earlier in the thread, in the same order (the batch a killed process posted but
// had not yet recorded, posted again by its successor).
func oneRepeatedReply(thread []slackfake.Message, extra int) bool {
	for i, m := range thread {
		if strings.Count(m.Text, "\n")+1 != extra {
			continue
		}
		var earlier strings.Builder
		for _, e := range thread[:i] {
			earlier.WriteString(e.Text + "\n")
		}
		if strings.Contains(earlier.String(), m.Text+"\n") {
			return true
		}
	}
	return false
}

func TestOneRepeatedReply(t *testing.T) {
	thread := []slackfake.Message{{Text: "a"}, {Text: "b\nc"}, {Text: "b\nc"}, {Text: "d"}}
	if !oneRepeatedReply(thread, 2) {
		t.Error("a batch posted twice not recognised")
	}
	if oneRepeatedReply(thread, 1) || oneRepeatedReply([]slackfake.Message{{Text: "a"}, {Text: "b\nc"}}, 2) {
		t.Error("a surplus with no repeated reply accepted")
	}
}
