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
	// acked by then failed as far as its sender can tell (a slash command or a click is not
	// redelivered; Slack shows the person an error), and the person does it again.
	termAckWait = 5 * time.Second
	termRetries = 2 // how often one person does a command or a click again after such an error
	// termLost is how many envelopes may go unacked: those Slack wrote to one of A's connections
	// in the instant between that connection's last read and its close frame reaching Slack
	// (a real Slack's round trip; here the scheduling of two busy processes), which no client can
	// ack. A has two connections (SOCKET_CONNECTIONS), so two such instants; in runs of this test
	// one of them caught a click in about one run in eight. A replica that closed its link at
	// once lost every envelope on its way or unread in its buffers: several in most runs.
	termLost    = 2
	termSlackRT = 15 * time.Millisecond
)

// termEngineers type the commands, each a share of the targets; alice watches the channel and
// clicks every card's Deny (an opener clicks their own notice, which only they see).
var termEngineers = []string{"U0ENG1", "U0ENG2", "U0ENG3", "U0ENG4", "U0ENG5", "U0ENG6"}

// termInc is one command of the burst and what Slack showed of its incident.
type termInc struct {
	target, user, domain, engineer string
	original                       string // the user's dial policy before the burst

	commands, acks int    // commands sent; of those, acked
	card           string // the card's ts
	cards          int    // top-level posts of a card of this target
	contained      bool   // the card shows the user contained
	clicking       bool   // a click is being sent
	clicked        bool   // a Deny click was acked
}

// termRun drives the burst: the commands, the clicks, the SIGTERM.
type termRun struct {
	r   *rig
	ctx context.Context
	wg  sync.WaitGroup

	mu        sync.Mutex
	incs      map[string]*termInc // by target
	byTS      map[string]*termInc
	unacked   []string       // the envelopes not acked in time, for the log
	unackedBy map[string]int // by sender
	stopping  bool
	exitAfter time.Duration // from A's SIGTERM to its exit
}

// TestSIGTERMMidBurst: replicas A and B serve a burst of /compromised across several domains and
// engineers, each card's Deny clicked as soon as it shows; once a few cards have shown, A gets
// SIGTERM while the rest of the burst is sent, and must exit cleanly within its grace. Afterwards
// every command has exactly one answer (its card; an opener's notice is not an answer but its
// card's early Deny), every incident is open with exactly one card, every user was denied at the
// PBX by exactly one PUT with the original dial policy recorded in the incident, and no step is
// left running (B picks up whatever A left, within a bounded wait). An envelope A's closing socket
// swallowed unacked is what Slack shows its sender as an error: it is done again, as a person
// would, and counted. On failure A's log is printed.
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
	run := &termRun{r: r, ctx: ctx, incs: map[string]*termInc{}, byTS: map[string]*termInc{}, unackedBy: map[string]int{}}
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
	run.wg.Wait() // bounded: each envelope's ack is waited for termAckWait, at most termRetries+1 times
	run.settled(t)
	run.check(t)
	if len(run.unacked) > termLost {
		t.Errorf("%d envelopes were never acked (Slack showed their senders an error), want at most %d: %v",
			len(run.unacked), termLost, run.unacked)
	}
	t.Logf("%d incidents; A stopped after %d cards, exited %s after SIGTERM; not acked (done again): %v",
		termBurst, termCards, run.exitAfter.Round(time.Millisecond), run.unacked)
}

// terminate sends A SIGTERM and, at once, the rest of the burst; the channel it returns gets
// A's exit (nil: exit status 0 within the deploy's 40 s grace).
func (run *termRun) terminate(a *proc, rest []*termInc) chan error {
	out := make(chan error, 1)
	at := time.Now()
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

// command sends inc's /compromised as its engineer, again when no ack comes in time (Slack showed
// the engineer an error), at most termRetries times. It does not take run.mu (its callers may
// hold it).
func (run *termRun) command(inc *termInc) {
	run.wg.Go(func() {
		for attempt := 0; attempt <= termRetries && run.ctx.Err() == nil; attempt++ {
			id, err := run.r.slack.SlashCommand(run.ctx, slackfake.SlashCommand{UserID: inc.engineer, ChannelID: incChan, Text: inc.target})
			if err != nil {
				return // the burst's deadline passed
			}
			acked := run.acked(id)
			run.mu.Lock()
			inc.commands++
			if acked {
				inc.acks++
			}
			run.mu.Unlock()
			if acked || run.ctx.Err() != nil {
				return
			}
			run.note(inc.engineer, "command "+inc.target)
		}
	})
}

// clickLocked presses Deny on the message ts as user, once per incident: again when the card
// changed under the click (its next version shows the button again) or no ack came in time
// (Slack showed the clicker an error), at most termRetries times. run.mu is held.
func (run *termRun) clickLocked(inc *termInc, user, ts string) {
	if inc.clicking || inc.clicked {
		return
	}
	inc.clicking = true
	run.wg.Go(func() {
		for attempt := 0; attempt <= termRetries && run.ctx.Err() == nil; attempt++ {
			id, err := run.r.slack.Click(run.ctx, slackfake.Click{UserID: user, ChannelID: incChan, MessageTS: ts, ActionID: "step:deny"})
			if err != nil {
				break // the button is gone (the card changed: its next version is clicked) or the deadline passed
			}
			acked := run.acked(id)
			run.mu.Lock()
			inc.clicked = acked
			run.mu.Unlock()
			if acked || run.ctx.Err() != nil {
				break
			}
			run.note(user, "click "+inc.target)
		}
		run.mu.Lock()
		inc.clicking = false
		run.mu.Unlock()
	})
}

// acked waits (termAckWait) for the envelope's ack.
func (run *termRun) acked(id string) bool {
	ctx, cancel := context.WithTimeout(run.ctx, termAckWait)
	defer cancel()
	_, err := run.r.slack.WaitAck(ctx, id)
	return err == nil
}

// note records an envelope of user's that was not acked in time.
func (run *termRun) note(user, what string) {
	run.mu.Lock()
	defer run.mu.Unlock()
	run.unacked = append(run.unacked, what)
	run.unackedBy[user]++
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
	// Slack: one card per target, posted once. A command's answer is its card (the opener's notice
	// is the card's Deny, early) or, for one done again after Slack showed an error, "already has
	// an open incident" when the first had been run all the same: every acked command has its
	// answer, and no command has two. A click's answer is the deny; "already running/done" only
	// for a click done again after an error.
	cards := map[string]int{}
	for _, m := range r.slack.Channel(incChan) {
		if c := cardTitleRE.FindStringSubmatch(m.Text); c != nil && m.ThreadTS == "" {
			cards[c[1]]++
		}
	}
	answers := map[string]int{}
	for _, u := range append([]string{alice}, termEngineers...) {
		again := 0
		for _, m := range r.slack.Ephemerals(u) {
			if n := noticeRE.FindStringSubmatch(m.Text); n != nil && run.incs[n[1]] != nil {
				continue
			}
			if inc := run.alreadyOpen(m.Text); inc != nil && inc.engineer == u {
				answers[inc.target]++
				continue
			}
			if strings.Contains(m.Text, " is already ") {
				again++
				continue
			}
			t.Errorf("%s got an unexpected answer (%s): %q", u, m.Method, m.Text)
		}
		if again > run.unackedBy[u] {
			t.Errorf("%s was told %d time(s) that a step is already running or done, for %d click(s) done again", u, again, run.unackedBy[u])
		}
	}
	for _, inc := range run.incs {
		if cards[inc.target] != 1 || inc.cards != 1 {
			t.Errorf("%s: %d card(s) in the channel, %d posted, want 1", inc.target, cards[inc.target], inc.cards)
		}
		if n := answers[inc.target] + cards[inc.target]; n < inc.acks || n > inc.commands {
			t.Errorf("%s: %d answer(s) to %d command(s), %d of them acked", inc.target, n, inc.commands, inc.acks)
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

// alreadyOpen is the incident a command's "already has an open incident" answer names.
func (run *termRun) alreadyOpen(text string) *termInc {
	if !strings.Contains(text, "already has an open incident") {
		return nil
	}
	for _, inc := range run.incs {
		if strings.Contains(text, inc.target) {
			return inc
		}
	}
	return nil
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
