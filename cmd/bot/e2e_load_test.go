package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
)

// The load tests of issue 9, through run with slackfake, the simulator and redis: every command
// of a burst is answered exactly once. They assert counts, never speed (the burst benchmarks
// measure that).

// TestBurstHelpAnsweredInAck: 200 /compromised help at once, each from its own user: every one
// is answered exactly once, in its Socket Mode ack, with no Web API call and no response_url.
func TestBurstHelpAnsweredInAck(t *testing.T) {
	const n = 200
	w := newWorld(t)
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("U0H%03d", i)
		w.slack.AddUser(users[i], strings.ToLower(users[i]))
	}
	w.start()
	// Ready means one connection said hello; the second's apps.connections.open must not fall
	// in the burst's count of Web API calls.
	w.waitFor("every Socket Mode connection up", func() bool { return w.slack.LiveSockets() == socketsPerBot })
	before := w.slack.Stats()
	ctx := w.ctx()
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			id, err := w.slack.SlashCommand(ctx, slackfake.SlashCommand{UserID: u, ChannelID: incChan, Text: "help"})
			if err != nil {
				t.Errorf("send help as %s: %v", u, err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	for i, id := range ids {
		a, err := w.slack.WaitAck(ctx, id)
		if err != nil {
			t.Fatalf("help of %s not acked: %v", users[i], err)
		}
		var p struct{ ResponseType, Text string }
		if err := json.Unmarshal(a.Payload, &p); err != nil || !strings.Contains(p.Text, "/compromised help") {
			t.Errorf("the ack of %s's help carries %s, want the help", users[i], a.Payload)
		}
	}
	for _, u := range users {
		got := w.slack.Ephemerals(u)
		if len(got) != 1 || got[0].Method != "ack" || !strings.Contains(got[0].Text, "/compromised help") {
			t.Errorf("%s got %d answers (%+v), want one: the help, in the ack", u, len(got), got)
		}
	}
	for method, st := range w.slack.Stats() {
		if st.Calls != before[method].Calls && method != "usergroups.users.list" {
			t.Errorf("the help burst called %s %d times", method, st.Calls-before[method].Calls)
		}
	}
	for _, m := range w.slack.Messages() {
		if m.Method == "response_url" {
			t.Errorf("a response_url was used: %q", m.Text)
		}
	}
}

// TestBurstOpensOneCardEach: 100 /compromised <user>@<domain> at once across 10 domains: every
// one opens its incident and gets exactly one card, and nobody is told "busy" or anything else.
func TestBurstOpensOneCardEach(t *testing.T) {
	r := newRig(t, 8, nil)
	r.sim.SetFaults(nstest.Faults{}) // no injected latency: counts, not speed
	r.start()
	ctx := r.ctx()
	var wg sync.WaitGroup
	for _, target := range r.targets {
		wg.Go(func() {
			if _, err := r.slack.SlashCommand(ctx, slackfake.SlashCommand{UserID: alice, ChannelID: incChan, Text: target}); err != nil {
				t.Errorf("open %s: %v", target, err)
			}
		})
	}
	wg.Wait()
	r.waitFor("100 cards", func() bool { return len(topLevel(r.slack.Channel(incChan))) >= len(r.targets) })
	// A card shows in Slack just before its ts is recorded on the incident (SetCard): wait for
	// the records too, or the check below races the last ones.
	r.waitFor("every card's ts recorded", func() bool {
		for _, target := range r.targets {
			user, domain, _ := strings.Cut(target, "@")
			if inc, err := r.store.FindOpen(context.Background(), user, domain); err != nil || inc.MessageTS == "" {
				return false
			}
		}
		return true
	})
	cards := map[string]int{}
	for _, m := range topLevel(r.slack.Channel(incChan)) {
		if title := cardTitleRE.FindStringSubmatch(m.Text); title != nil {
			cards[title[1]]++
		}
	}
	for _, target := range r.targets {
		user, domain, _ := strings.Cut(target, "@")
		inc, err := r.store.FindOpen(context.Background(), user, domain)
		if err != nil || inc.MessageTS == "" {
			t.Errorf("%s: no open incident with a card (%v)", target, err)
		}
		if cards[target] != 1 {
			t.Errorf("%s has %d cards, want 1", target, cards[target])
		}
	}
	if len(cards) != len(r.targets) {
		t.Errorf("%d cards for %d targets", len(cards), len(r.targets))
	}
	if got := r.slack.Ephemerals(alice); len(got) != 0 {
		t.Errorf("alice got %d ephemeral answers besides the cards, e.g. %q", len(got), got[0].Text)
	}
}

// pbxGate holds PBX requests while closed, so a test can keep the bot's workers busy for as
// long as it needs (and knows when one is held), then lets them all through.
type pbxGate struct {
	h     http.Handler
	mu    sync.Mutex
	paths []string      // every request's path, in order of arrival
	open  chan struct{} // closed while the gate is open
}

// gatePBX puts a gate, open, in front of the world's simulator.
func gatePBX(w *world) *pbxGate {
	g := &pbxGate{h: w.pbx, open: make(chan struct{})}
	close(g.open)
	srv := httptest.NewServer(g)
	w.t.Cleanup(srv.Close)
	w.t.Cleanup(g.release) // nothing stays held when a test ends early
	w.env["NS_API_URL"] = srv.URL + nstest.BasePath
	return g
}

func (g *pbxGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.paths = append(g.paths, r.URL.Path)
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
		g.h.ServeHTTP(w, r)
	case <-r.Context().Done():
	}
}

// arrived reports whether a request for a path containing s has arrived.
func (g *pbxGate) arrived(s string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.ContainsFunc(g.paths, func(p string) bool { return strings.Contains(p, s) })
}

func (g *pbxGate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		g.open = make(chan struct{})
	default:
	}
}

func (g *pbxGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

var busyRE = regexp.MustCompile(`busy right now, so nothing was started\. Please try again in \d+ s\.`)

// TestQueueFullAnswersBusy: one worker held at the PBX and QUEUE_SIZE 2 filled: a command that
// finds the queue full is answered "busy, try again in N s" in its ack, a click through its
// response_url, help still in its ack; nothing that was queued is lost, nothing refused runs,
// and the busy answers are counted.
func TestQueueFullAnswersBusy(t *testing.T) {
	w := newWorld(t)
	gate := gatePBX(w)
	w.env["WORKERS"], w.env["QUEUE_SIZE"] = "1", "2"
	b := w.start()
	w.command(alice, incChan, target)
	ts, inc := w.card("1001", "acme.example")

	gate.hold()
	w.command(alice, incChan, "1002@acme.example")
	w.waitFor("the worker to be held at the PBX", func() bool { return gate.arrived("/users/1002") })
	w.command(alice, incChan, "list") // the queue: 2 waiting
	w.command(bob, incChan, "list")

	w.command(carol, incChan, "list") // full
	if m := w.ephemeralWith(carol, "busy"); m.Method != "ack" || !busyRE.MatchString(m.Text) {
		t.Errorf("the command that found the queue full got %q by %s, want busy with a retry time in the ack", m.Text, m.Method)
	}
	w.click(bob, ts, "step:deny")
	if m := w.ephemeralWith(bob, "busy"); m.Method != "response_url" || !busyRE.MatchString(m.Text) {
		t.Errorf("the click that found the queue full got %q by %s, want busy through its response_url", m.Text, m.Method)
	}
	w.command(mallory, incChan, "help")
	w.ephemeralWith(mallory, "/compromised help")

	gate.release()
	w.card("1002", "acme.example")
	w.ephemeralWith(alice, "open incident(s)")
	w.ephemeralWith(bob, "open incident(s)")
	answers := map[string][]string{}
	for _, u := range []string{alice, bob, carol, mallory} {
		for _, m := range w.slack.Ephemerals(u) {
			answers[u] = append(answers[u], m.Method)
		}
	}
	// alice: her list (her opens are answered by their cards); bob: his list and the busy click;
	// carol: busy; mallory: help. One answer per request, none twice.
	for u, n := range map[string]int{alice: 1, bob: 2, carol: 1, mallory: 1} {
		if len(answers[u]) != n {
			t.Errorf("%s got %d answers (%v), want %d", u, len(answers[u]), answers[u], n)
		}
	}
	if st := w.step(inc.ID, session.StepDeny).Status; st != session.StatusReady {
		t.Errorf("deny is %s after its click was answered busy, want ready (nothing started)", st)
	}
	if n := metric(t, b.url, "compromised_queue_busy_total"); n != 2 {
		t.Errorf("compromised_queue_busy_total = %v, want 2", n)
	}
}

// TestShutdownDrainsTheQueue: SIGTERM with a worker held at the PBX and two requests queued
// behind it: the link closes (new envelopes go to other replicas), and the held open and both
// queued requests are still run and answered before run returns.
func TestShutdownDrainsTheQueue(t *testing.T) {
	w := newWorld(t)
	gate := gatePBX(w)
	w.env["WORKERS"] = "1"
	b := w.start()
	gate.hold()
	w.command(alice, incChan, target)
	w.waitFor("the worker to be held at the PBX", func() bool { return gate.arrived("/users/1001") })
	w.command(alice, incChan, "list")
	w.command(bob, incChan, "list")

	stopped := make(chan struct{})
	go func() { b.stop(t); close(stopped) }()
	w.waitFor("the link to close", func() bool { return w.slack.LiveSockets() == 0 })
	gate.release()
	<-stopped // bounded: stop gives up after 40 s
	if _, inc := w.card("1001", "acme.example"); inc.ID == "" {
		t.Error("the held open has no card")
	}
	for _, u := range []string{alice, bob} {
		if got := w.slack.Ephemerals(u); len(got) != 1 || !strings.Contains(got[0].Text, "open incident(s)") {
			t.Errorf("%s got %+v, want the answer to the queued list", u, got)
		}
	}
}

// TestEvidenceReusesReads: the evidence of the open takes the live calls and devices the open
// has just read, and the evidence at containment takes deny's last list of live calls, so an
// open and its deny list the calls three times (open, after the PUT, the re-list after ending
// one) and the devices twice (open, the registrations at containment), never more.
func TestEvidenceReusesReads(t *testing.T) {
	w := newWorld(t)
	w.seedFraud() // one live call, so deny ends it and re-lists
	w.start()
	w.command(alice, incChan, target)
	ts, inc := w.card("1001", "acme.example")
	w.cardShows(ts, "evidence read when the incident opened")
	w.click(alice, ts, "step:deny")
	w.cardShows(ts, "evidence read at containment")
	if ev := w.incident(inc.ID).Evidence; ev.Phase != session.PhaseContainment || len(ev.LiveCalls) != 0 {
		t.Fatalf("containment evidence: phase %s, %d live calls", ev.Phase, len(ev.LiveCalls))
	}
	count := map[string]int{}
	for _, c := range w.pbx.Calls() {
		if c.Method == http.MethodGet {
			count[strings.TrimPrefix(c.Path, "/domains/acme.example/users/1001")]++
		}
	}
	if count["/calls"] != 3 || count["/devices"] != 2 || count["/cdrs"] != 2 {
		t.Errorf("GETs of the user's calls %d, devices %d, CDRs %d; want 3, 2 and 2",
			count["/calls"], count["/devices"], count["/cdrs"])
	}
}
