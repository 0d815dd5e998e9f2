package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
)

// The SIGTERM of one replica in the middle of a burst (issue 9, "queue, never drop", and "nothing
// is ever lost" when a replica goes away). TestShutdownDrainsTheQueue stops the only replica with
// one worker; the chaos tests SIGKILL. Here two `bot serve` processes share the burst rig's PBX
// (burstRTT on every request) and Redis, a burst of incidents runs, and one of them is stopped
// the way a deploy stops it while the other keeps serving.
const (
	termBurst = 30 // incidents: the burst tenant's first 3 users in each of its 10 domains
	termFirst = 10 // sent before the SIGTERM; the rest are sent as it lands
	// termCards is how many cards must show before the SIGTERM: the stopped replica then has
	// opens, card posts and Deny clicks in flight and queued.
	termCards = 4
	// termAckWait is Slack's ack deadline (3 s) with room for a loaded machine: an envelope not
	// acked by then failed as far as its sender can tell (Slack shows them an error; a slash
	// command or a click is not delivered again). One Slack wrote in the instant A's goodbye was
	// on its way is still run by A (slacksocket reads until Slack's close), so nothing is done
	// twice here: each command and click is sent once, and each must take effect.
	termAckWait = 5 * time.Second
	termSlackRT = 15 * time.Millisecond
)

// termEngineers type the commands, each a share of the targets; alice watches the channel and
// clicks every card's Deny (an opener clicks their own notice, which only they see).
var termEngineers = []string{"U0ENG1", "U0ENG2", "U0ENG3", "U0ENG4", "U0ENG5", "U0ENG6"}

// termInc is one command of the burst and what Slack showed of its incident.
type termInc struct {
	target, user, domain, engineer string
	original                       string // the user's dial policy before the burst

	commands  int    // commands sent
	card      string // the card's ts
	cards     int    // top-level posts of a card of this target
	contained bool   // the card shows the user contained
	clicking  bool   // a click is being sent
	clicked   bool   // a Deny click was acked
}

// termRun drives the burst: the commands, the clicks, the SIGTERM.
type termRun struct {
	r   *rig
	ctx context.Context
	wg  sync.WaitGroup

	mu        sync.Mutex
	incs      map[string]*termInc // by target
	byTS      map[string]*termInc
	unacked   []string // the envelopes not acked in time, for the log
	stopping  bool
	termAt    time.Time     // A's SIGTERM
	exitAfter time.Duration // from it to A's exit
}

// TestSIGTERMMidBurst: replicas A and B serve a burst of /compromised across several domains and
// engineers, each card's Deny clicked as soon as it shows; once a few cards have shown, A gets
// SIGTERM while the rest of the burst is sent, and must exit cleanly within its grace. Each
// command and each click is sent once, and afterwards every command has exactly one answer (its
// card; an opener's notice is not an answer but its card's early Deny), every incident is open
// with exactly one card, every user was denied at the PBX by exactly one PUT with the original
// dial policy recorded in the incident, and no step is left running (B picks up whatever A left,
// within a bounded wait). Before slacksocket read on at a shutdown, A's closing link lost
// several commands and clicks in most runs (never acked, never run). On failure A's log is
// printed.
func TestSIGTERMMidBurst(t *testing.T) {
	r := newRig(t, 8, nil)
	r.env["LOG_LEVEL"] = "info"
	r.env["RESPONDERS"] += "," + strings.Join(termEngineers, ",")
	for _, e := range termEngineers {
		r.slack.AddUser(e, strings.ToLower(e[2:]))
	}
	// Card posts and updates take a Slack round trip, so some are in flight at the SIGTERM.
	for _, m := range []string{"chat.postMessage", "chat.update"} {
		r.slack.SetLatency(m, termSlackRT)
	}
	ctx, cancel := context.WithTimeout(context.Background(), burstDeadline)
	defer cancel()
	run := &termRun{r: r, ctx: ctx, incs: map[string]*termInc{}, byTS: map[string]*termInc{}}
	var order []*termInc
	for i, tg := range r.targets[:termBurst] {
		u, d, _ := strings.Cut(tg, "@")
		pu, ok := r.sim.User(d, u)
		if !ok {
			t.Fatalf("the burst tenant has no %s", tg)
		}
		inc := &termInc{target: tg, user: u, domain: d, engineer: termEngineers[i%len(termEngineers)], original: fmt.Sprint(pu["dial-policy"])}
		run.incs[tg] = inc
		order = append(order, inc)
	}

	logsA := len(r.logs)
	a := r.serve()
	logsB := len(r.logs)
	r.serve()
	r.waitFor("both replicas on the link", func() bool { return r.slack.LiveSockets() >= 2 })
	defer func() {
		if t.Failed() {
			run.printLog(t, "A", logsA, logsB)
		}
	}()

	f := newFollower(r.slack)
	for _, inc := range order[:termFirst] {
		run.command(inc)
	}
	var stopped chan error
	contained := 0
	err := f.until(ctx, func(m slackfake.Message) bool {
		run.mu.Lock()
		defer run.mu.Unlock()
		if m.Method == "response_url" && m.ThreadTS == "" {
			// An opener's notice: the card's Deny, for its opener, while the card waits.
			if n := noticeRE.FindStringSubmatch(m.Text); n != nil && run.incs[n[1]] != nil && !showsContained(m.Text) &&
				strings.Contains(string(m.Blocks), `"step:deny"`) {
				inc := run.incs[n[1]]
				run.clickLocked(inc, inc.engineer, m.TS)
			}
			return false
		}
		if m.Channel != incChan || m.ThreadTS != "" || (m.Method != "chat.postMessage" && m.Method != "chat.update") {
			return false
		}
		inc := run.byTS[m.TS]
		if inc == nil {
			c := cardTitleRE.FindStringSubmatch(m.Text)
			if c == nil || run.incs[c[1]] == nil || m.Method != "chat.postMessage" {
				return false
			}
			inc = run.incs[c[1]]
			inc.cards++
			if inc.card != "" {
				return false // a second card: counted, never clicked
			}
			inc.card = m.TS
			run.byTS[m.TS] = inc
		}
		if showsContained(m.Text) {
			if !inc.contained {
				inc.contained = true
				contained++
			}
		} else {
			run.clickLocked(inc, alice, m.TS)
		}
		if !run.stopping && len(run.byTS) >= termCards {
			run.stopping = true
			stopped = run.terminate(a, order[termFirst:])
		}
		return contained == termBurst
	})
	if err != nil {
		t.Errorf("the burst did not end (%d of %d shown contained): %v", contained, termBurst, err)
	}
	if stopped == nil {
		t.Fatalf("A was never stopped: %d cards showed", len(run.byTS))
	}
	if err := <-stopped; err != nil { // bounded: terminate gives up after the deploy's grace
		t.Error(err)
	}
	run.wg.Wait() // bounded: each envelope's ack is waited for at most termAckWait
	run.settled(t)
	run.check(t)
	t.Logf("%d incidents; A stopped after %d cards, exited %s after SIGTERM, having since %s; not acked but run (Slack showed an error): %v",
		termBurst, termCards, run.exitAfter.Round(time.Millisecond), run.afterTerm(logsA, logsB), run.unacked)
}

// terminate sends A SIGTERM and, at once, the rest of the burst; the channel it returns gets
// A's exit (nil: exit status 0 within the deploy's 40 s grace).
func (run *termRun) terminate(a *proc, rest []*termInc) chan error {
	out := make(chan error, 1)
	at := time.Now()
	run.termAt = at // run.mu is held
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		out <- fmt.Errorf("SIGTERM: %w", err)
		return out
	}
	for _, inc := range rest {
		run.command(inc)
	}
	go func() {
		select {
		case <-a.done:
			run.mu.Lock()
			run.exitAfter = time.Since(at)
			run.mu.Unlock()
			if a.err != nil {
				out <- fmt.Errorf("after SIGTERM A exited with %v", a.err)
			}
		case <-time.After(40 * time.Second):
			out <- errors.New("A did not exit within 40 s of SIGTERM")
		}
		close(out)
	}()
	return out
}

// command sends inc's /compromised as its engineer and waits (bounded) for its ack. It does not
// take run.mu (its callers may hold it).
func (run *termRun) command(inc *termInc) {
	run.wg.Go(func() {
		id, err := run.r.slack.SlashCommand(run.ctx, slackfake.SlashCommand{UserID: inc.engineer, ChannelID: incChan, Text: inc.target})
		if err != nil {
			return // the burst's deadline passed: check reports what is missing
		}
		acked := run.acked(id)
		run.mu.Lock()
		defer run.mu.Unlock()
		inc.commands++
		if !acked {
			run.unacked = append(run.unacked, "command "+inc.target)
		}
	})
}

// clickLocked presses Deny on the message ts as user, once per incident (again only when the
// card changed under the click: its next version is clicked). run.mu is held.
func (run *termRun) clickLocked(inc *termInc, user, ts string) {
	if inc.clicking || inc.clicked {
		return
	}
	inc.clicking = true
	run.wg.Go(func() {
		id, err := run.r.slack.Click(run.ctx, slackfake.Click{UserID: user, ChannelID: incChan, MessageTS: ts, ActionID: "step:deny"})
		acked := err == nil && run.acked(id)
		run.mu.Lock()
		defer run.mu.Unlock()
		inc.clicking = false
		if err != nil {
			return // the button is gone (the card changed: its next version is clicked) or the deadline passed
		}
		inc.clicked = true
		if !acked {
			run.unacked = append(run.unacked, "click "+inc.target)
		}
	})
}

// acked waits (termAckWait) for the envelope's ack.
func (run *termRun) acked(id string) bool {
	ctx, cancel := context.WithTimeout(run.ctx, termAckWait)
	defer cancel()
	_, err := run.r.slack.WaitAck(ctx, id)
	return err == nil
}

// settled waits (bounded) until no incident of the burst has a step running: what A left running
// B's reconcile resumes once A's lease runs out.
func (run *termRun) settled(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		var running []string
		for _, inc := range run.incs {
			i, err := run.r.store.FindOpen(ctx, inc.user, inc.domain)
			if err != nil {
				continue // checked below
			}
			for s, st := range i.Steps {
				if st != nil && st.Status == session.StatusRunning {
					running = append(running, i.ID+" "+string(s))
				}
			}
		}
		if len(running) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("steps still running 30 s after the burst: %v", running)
			return
		case <-time.After(100 * time.Millisecond): // polling Redis from the test, not in a request path
		}
	}
}

// check asserts what the burst must have left, in Slack, on the PBX and in Redis.
func (run *termRun) check(t *testing.T) {
	t.Helper()
	r := run.r
	// Slack: one card per target, posted once; no answer to a command but its card (the
	// opener's notice is the card's Deny, early), none to a click.
	cards := map[string]int{}
	for _, m := range r.slack.Channel(incChan) {
		if c := cardTitleRE.FindStringSubmatch(m.Text); c != nil && m.ThreadTS == "" {
			cards[c[1]]++
		}
	}
	for _, u := range append([]string{alice}, termEngineers...) {
		for _, m := range r.slack.Ephemerals(u) {
			if n := noticeRE.FindStringSubmatch(m.Text); n == nil || run.incs[n[1]] == nil {
				t.Errorf("%s got an unexpected answer (%s): %q", u, m.Method, m.Text)
			}
		}
	}
	for _, inc := range run.incs {
		if cards[inc.target] != 1 || inc.cards != 1 || inc.commands != 1 {
			t.Errorf("%s: %d card(s) in the channel, %d posted, for %d command(s); want 1", inc.target, cards[inc.target], inc.cards, inc.commands)
		}
	}

	// The PBX: each user denied by exactly one PUT of the deny policy.
	puts := map[string]int{}
	for _, c := range r.sim.Calls() {
		var body map[string]any
		if c.Method != http.MethodPut || c.Status/100 != 2 || json.Unmarshal(c.Body, &body) != nil || body["dial-policy"] != "Deny All" {
			continue
		}
		puts[c.Path]++
	}
	for _, inc := range run.incs {
		p := "/domains/" + inc.domain + "/users/" + inc.user
		if puts[p] != 1 {
			t.Errorf("%s: %d PUT(s) of the deny policy, want 1", inc.target, puts[p])
		}
		delete(puts, p)
		if u, _ := r.sim.User(inc.domain, inc.user); u["dial-policy"] != "Deny All" {
			t.Errorf("%s: the PBX shows dial policy %v, want Deny All", inc.target, u["dial-policy"])
		}
	}
	for p, n := range puts {
		t.Errorf("%d PUT(s) of the deny policy to %s, which nobody asked to contain", n, p)
	}

	// Redis: every incident open, with its card and its user's original policy.
	open, err := r.store.ListOpen(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != termBurst {
		t.Errorf("%d open incidents, want %d", len(open), termBurst)
	}
	for _, inc := range run.incs {
		i, err := r.store.FindOpen(context.Background(), inc.user, inc.domain)
		if err != nil || i.ID == "" {
			t.Errorf("%s: no open incident (%v), but its engineer saw its card", inc.target, err)
			continue
		}
		if i.Channel != incChan || i.MessageTS != inc.card {
			t.Errorf("%s: %s records card %s %s, Slack showed %s", inc.target, i.ID, i.Channel, i.MessageTS, inc.card)
		}
		if o := i.Original; o == nil || !o.Known || o.Policy != inc.original {
			t.Errorf("%s: %s records original %+v, want %q", inc.target, i.ID, o, inc.original)
		}
		if st := i.Step(session.StepDeny); !st.Status.Finished() {
			t.Errorf("%s: %s deny is %s, want done", inc.target, i.ID, st.Status)
		}
	}
}

// afterTerm says what replica A's log (the world's logs from index from to to) shows it did
// after its SIGTERM: incidents opened, steps finished.
func (run *termRun) afterTerm(from, to int) string {
	run.r.mu.Lock()
	defer run.r.mu.Unlock()
	n := map[string]int{}
	for _, l := range run.r.logs[from:to] {
		for ln := range strings.SplitSeq(l.String(), "\n") {
			var e struct {
				Time    time.Time `json:"time"`
				Message string    `json:"message"`
			}
			if json.Unmarshal([]byte(ln), &e) == nil && e.Time.After(run.termAt) {
				n[e.Message]++
			}
		}
	}
	return fmt.Sprintf("opened %d incident(s) and finished %d step(s)", n["incident opened"], n["step finished"])
}

// printLog logs the lines of replica name's output (the world's logs from index from to to).
func (run *termRun) printLog(t *testing.T, name string, from, to int) {
	run.r.mu.Lock()
	defer run.r.mu.Unlock()
	for _, l := range run.r.logs[from:to] {
		for ln := range strings.SplitSeq(strings.TrimSpace(l.String()), "\n") {
			if ln != "" {
				t.Logf("%s: %s", name, ln)
			}
		}
	}
}
