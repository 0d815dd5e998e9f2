package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/procfs"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/slackfake"
)

// The burst rig (issue 9): the real `bot serve` as its own process (rig.serve), slackfake, the
// simulator with a round trip of burstRTT on every request behind a gauge of its concurrency, and
// the redis of TEST_REDIS_URL. The bot runs apart from the rig so that its figures are its own:
// its peak RSS is its process's, and its acks do not share a Go scheduler with slackfake's
// senders (they still share the machine's cores). Everything a burst reports is measured in the same run; nothing here asserts a
// speed, and every wait ends at a deadline, so a bot that drops work is reported, not hung on.
const (
	burstRTT       = 20 * time.Millisecond
	burstDomains   = 10
	burstPerDomain = 10
	// burstDeadline bounds one burst: what is not answered or contained by then is counted as
	// not done.
	burstDeadline = 30 * time.Second
)

// burstSeed is the demo tenant plus burstDomains domains of burstPerDomain users each (copies of
// 1001@acme.example), and the users as user@domain in domain-interleaved order.
func burstSeed() (*nstest.Seed, []string) {
	seed := nstest.DemoSeed()
	tmpl := seed.Users[0]
	var targets []string
	for d := range burstDomains {
		dom := fmt.Sprintf("burst%02d.example", d)
		seed.Domains = append(seed.Domains, nstest.Domain{Domain: dom, Reseller: "demo-reseller", Description: "burst benchmark"})
		for u := range burstPerDomain {
			user := strconv.Itoa(2000 + u)
			m := maps.Clone(tmpl)
			m["domain"], m["user"], m["dial-plan"] = dom, user, dom
			m["login-username"], m["email-address"] = user+"@"+dom, "u"+user+"@"+dom
			seed.Users = append(seed.Users, m)
		}
	}
	for u := range burstPerDomain {
		for d := range burstDomains {
			targets = append(targets, fmt.Sprintf("%d@burst%02d.example", 2000+u, d))
		}
	}
	return seed, targets
}

// pbxGauge is an http.Handler in front of the simulator that counts requests, the most it saw in
// flight at once (the injected latency is inside, so a request is in flight for its RTT), and when
// the PBX answered each PUT of a user that set the deny policy: event-driven, so measuring costs
// the bot next to nothing.
type pbxGauge struct {
	h                     http.Handler
	policy                string
	inflight, peak, total atomic.Int64

	mu     sync.Mutex
	denied map[string]time.Time // user@domain → the 2xx answer to the PUT of the deny policy
}

func (g *pbxGauge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := g.inflight.Add(1)
	g.total.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	defer g.inflight.Add(-1)
	target := g.denyTarget(r)
	sw := &statusWriter{ResponseWriter: w}
	g.h.ServeHTTP(sw, r)
	if target != "" && sw.code/100 == 2 {
		g.mu.Lock()
		if _, ok := g.denied[target]; !ok {
			g.denied[target] = time.Now()
		}
		g.mu.Unlock()
	}
}

// denyTarget is user@domain when r is a PUT of a user whose body sets the deny policy.
func (g *pbxGauge) denyTarget(r *http.Request) string {
	seg := strings.Split(strings.TrimPrefix(r.URL.Path, nstest.BasePath+"/"), "/")
	if r.Method != http.MethodPut || len(seg) != 4 || seg[0] != "domains" || seg[2] != "users" {
		return ""
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var u map[string]any
	if json.Unmarshal(body, &u) != nil || u["dial-policy"] != g.policy {
		return ""
	}
	return seg[3] + "@" + seg[1]
}

func (g *pbxGauge) deniedAt(target string) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.denied[target]
	return t, ok
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// reset starts a new measurement: the peak restarts from what is in flight now, no deny seen.
func (g *pbxGauge) reset() {
	g.peak.Store(g.inflight.Load())
	g.total.Store(0)
	g.mu.Lock()
	clear(g.denied)
	g.mu.Unlock()
}

// rig is a world whose PBX is the burst tenant with latency, and the bot's settings for it.
type rig struct {
	*world
	sim     *nstest.Server
	gauge   *pbxGauge
	targets []string
}

// newRig builds the world; inflight is NS_MAX_INFLIGHT; limits, when set, turns on slackfake's
// rate-limit mode. WORKERS is left at its production default. The bot is started by serve (the
// benchmarks) or by the world's start (tests that want it in process, under the race detector).
func newRig(tb testing.TB, inflight int, limits map[string]slackfake.Limit) *rig {
	tb.Helper()
	w := newWorld(tb)
	seed, targets := burstSeed()
	sim := nstest.New(nstest.Options{Seed: seed})
	sim.SetFaults(nstest.Faults{Latency: burstRTT})
	g := &pbxGauge{h: sim, policy: "Deny All", denied: map[string]time.Time{}} // NS_DENY_POLICY's default
	srv := httptest.NewServer(g)
	tb.Cleanup(func() {
		srv.Close()
		for _, v := range sim.Violations() {
			tb.Errorf("nstest: spec violation: %s %s: %s", v.Method, v.Path, v.Problem)
		}
	})
	w.pbx = sim
	w.env["NS_API_URL"] = srv.URL + nstest.BasePath
	w.env["NS_API_KEY"] = sim.APIKey()
	w.env["NS_MAX_INFLIGHT"] = strconv.Itoa(inflight)
	w.env["APPROVAL_STEPS"] = "none"
	w.env["LOG_LEVEL"] = "warn"
	delete(w.env, "WORKERS")
	if limits != nil {
		w.slack.SetRateLimits(limits)
	}
	return &rig{world: w, sim: sim, gauge: g, targets: targets}
}

// serve starts the bot as a `bot serve` process (the binary built once per test binary); it is
// killed at the end of the test unless stopped before. With BOT_PROFILE_DIR set in the test's
// environment the process writes its CPU and heap profiles there when stopped; GOGC,
// GOMEMLIMIT, GODEBUG and GOMAXPROCS are passed on.
func (r *rig) serve() *proc {
	r.t.Helper()
	if dir := os.Getenv(profileDirEnv); dir != "" { // profile the bot process (profile.go)
		r.env[profileDirEnv] = dir
	}
	// The Go runtime's own settings reach the bot too, to measure it under them.
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GODEBUG", "GOMAXPROCS"} {
		if v := os.Getenv(k); v != "" {
			r.env[k] = v
		}
	}
	return r.startProcess(buildBot(r.t))
}

// follower reads slackfake's message events in order, each once.
type follower struct {
	fake   *slackfake.Server
	cursor int
}

func newFollower(fake *slackfake.Server) *follower {
	return &follower{fake: fake, cursor: fake.MessageCount()}
}

// until feeds every new event to fn until fn reports done, or ctx ends (its error).
func (f *follower) until(ctx context.Context, fn func(slackfake.Message) bool) error {
	for {
		var evs []slackfake.Message
		if err := f.fake.WaitFor(ctx, func(s *slackfake.Server) bool {
			evs = s.MessagesSince(f.cursor)
			return len(evs) > 0
		}); err != nil {
			return err
		}
		for i, e := range evs {
			if fn(e) {
				f.cursor += i + 1
				return nil
			}
		}
		f.cursor += len(evs)
	}
}

// helpResult is one burst of /compromised help.
type helpResult struct {
	sent, acked, answered int
	acks, answers         []time.Duration // per acked / answered command
}

// helpBurst sends /compromised help from n distinct users at once and waits (until the deadline)
// for every one to get an ephemeral answer, by whatever path (ack payload, response_url,
// chat.postEphemeral). While the burst is in flight the rig only waits: it is woken when as many
// new messages as answers missing are recorded (WaitMessages), not by every event, and reads
// only this burst's messages and acks, so its own work stays off the cores the bot and the
// fake's socket reader need.
func (r *rig) helpBurst(users []string) helpResult {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), burstDeadline)
	defer cancel()
	cursor, ackCursor := r.slack.MessageCount(), r.slack.AckCount()
	n := len(users)
	idx := make(map[string]int, n)
	cmds := make([]slackfake.SlashCommand, n)
	for i, u := range users {
		idx[u] = i
		cmds[i] = slackfake.SlashCommand{UserID: u, ChannelID: incChan, Text: "help"}
	}
	ids, err := r.slack.SlashCommands(ctx, cmds)
	if err != nil {
		r.t.Errorf("help burst: %d of %d sent: %v", len(ids), n, err)
	}
	res := helpResult{sent: n}
	answeredAt := make([]time.Time, n)
	// Each answer is one message event: wait for as many new events as answers are missing, then
	// read them (other messages in between only mean another wait).
	for res.answered < n && r.slack.WaitMessages(ctx, cursor+n-res.answered) == nil {
		evs := r.slack.MessagesSince(cursor)
		cursor += len(evs)
		for _, m := range evs {
			i, ok := idx[m.User]
			if ok && answeredAt[i].IsZero() && strings.Contains(m.Text, "/compromised help") {
				answeredAt[i] = m.At
				res.answered++
			}
		}
	}
	// Both latencies count from the envelope's write on the socket (slackfake times it).
	sentAt := make(map[string]time.Time, n)
	ours := make(map[string]bool, n)
	for _, id := range ids {
		ours[id] = true
	}
	for _, a := range r.slack.AcksSince(ackCursor) {
		if _, dup := sentAt[a.EnvelopeID]; !dup && ours[a.EnvelopeID] {
			sentAt[a.EnvelopeID] = a.At.Add(-a.Latency)
			res.acked++
			res.acks = append(res.acks, a.Latency)
		}
	}
	for i, id := range ids {
		if t, ok := sentAt[id]; ok && !answeredAt[i].IsZero() {
			res.answers = append(res.answers, answeredAt[i].Sub(t))
		}
	}
	return res
}

// incident follows one incident of a burst through Slack and the PBX.
type incident struct {
	target, user, domain string
	ts                   string
	sent, card, contain  time.Time // command sent, card posted, card shows the user contained
	noticeTS             string    // the opener's notice (ephemeral), when the card waited for Slack
	notice               time.Time // the notice came
	shown                time.Time // the opener first saw the user contained: on the card or the notice
	pbxDenied            time.Time // the PBX answered the PUT of the deny policy
	clickAt              time.Time // the click that was delivered
	via                  string    // the Deny button that click pressed: "card" or "notice"
	lastClick            time.Time // the last click sent, and its button: still in Click when the burst
	lastVia              string    // ended, it is the delivered one when the user shows contained
	clicking             bool
	clicks               int
}

// burstResult is one burst of incidents.
type burstResult struct {
	n, opened, cards, contained int // opened: an open incident in Redis after the burst
	pbxDenied                   int
	notices, viaNotice, viaCard int           // notices seen; delivered Deny clicks by the button pressed
	extraCards                  int           // cards posted for an incident that had one already
	total, pbxTotal             time.Duration // start → last card showing contained / last PBX deny
	shownTotal                  time.Duration // start → the last opener seeing the user contained (card or notice)
	peak, pbxCalls              int64         // PBX: most in flight at once, requests
	slackCalls, slack429        int           // Web API calls and 429s during the burst
	rssPeak                     int64         // the bot process's VmHWM in bytes; 0 when unknown
	botCPU                      time.Duration // the bot process's CPU time over the burst; 0 when unknown
	openToCard, clickToDeny     []time.Duration
	clickToPBX                  []time.Duration // click → the PBX shows the deny policy (±5 ms)
	incidents                   []*incident
}

var (
	cardTitleRE = regexp.MustCompile(`Compromised: (\S+@\S+) \(`)
	// noticeRE reads the incident of an opener's notice from its fallback text (OpenerNotice;
	// "is open" while its card is not posted). TestNoticeDeniesBeforeCard checks it reads the
	// notice the bot sends: the rate-limited benchmark clicks the notices it reads.
	noticeRE = regexp.MustCompile(`^⏳ INC-\S+ (\S+@\S+)(?: is open)?: deny `)
)

// incidentBurst opens one incident per target at once (alice, in incChan) and, as the engineer
// who typed them would, clicks each incident's Deny as soon as a Deny button shows for it: the
// card's, or the opener's notice's when Slack holds the card back (whichever shows first). It
// waits until every card shows the user contained or deadline passes.
func (r *rig) incidentBurst(targets []string, deadline time.Duration) burstResult {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	incs := map[string]*incident{}
	byTS := map[string]*incident{}
	for _, t := range targets {
		u, d, _ := strings.Cut(t, "@")
		incs[t] = &incident{target: t, user: u, domain: d}
	}
	f := newFollower(r.slack)
	stats0 := r.slack.Stats()
	r.gauge.reset()
	start := time.Now()

	var mu sync.Mutex // guards incs' fields written by the goroutines below
	var wg sync.WaitGroup
	for _, inc := range incs {
		wg.Go(func() {
			mu.Lock()
			inc.sent = time.Now()
			mu.Unlock()
			_, _ = r.slack.SlashCommand(ctx, slackfake.SlashCommand{UserID: alice, ChannelID: incChan, Text: inc.target})
		})
	}
	click := func(inc *incident, ts, via string) {
		mu.Lock()
		if inc.clicking || !inc.clickAt.IsZero() || inc.clicks >= 5 {
			mu.Unlock()
			return
		}
		inc.clicking, inc.clicks = true, inc.clicks+1
		mu.Unlock()
		wg.Go(func() {
			mu.Lock()
			at := time.Now()
			inc.lastClick, inc.lastVia = at, via
			mu.Unlock()
			_, err := r.slack.Click(ctx, slackfake.Click{UserID: alice, ChannelID: incChan, MessageTS: ts, ActionID: "step:deny"})
			mu.Lock()
			defer mu.Unlock()
			inc.clicking = false
			if err == nil {
				inc.clickAt, inc.via = at, via
			} else if !errors.Is(err, slackfake.ErrNoSuchAction) {
				inc.clicks = 5 // the fake is closing or the deadline passed: do not retry
			}
		})
	}
	contained, extra := 0, 0
	seen := func(inc *incident, at time.Time) {
		if inc.shown.IsZero() || at.Before(inc.shown) {
			inc.shown = at
		}
	}
	_ = f.until(ctx, func(m slackfake.Message) bool {
		if m.Method == "response_url" && m.User == alice && m.Channel == incChan && m.ThreadTS == "" {
			// The opener's notice (posted, or replaced with the deny's outcome).
			t := noticeRE.FindStringSubmatch(m.Text)
			if t == nil || incs[t[1]] == nil {
				return false
			}
			inc := incs[t[1]]
			if inc.noticeTS == "" {
				inc.noticeTS, inc.notice = m.TS, m.At
			}
			if showsContained(m.Text) {
				seen(inc, m.At)
			} else if strings.Contains(string(m.Blocks), `"step:deny"`) {
				click(inc, m.TS, "notice")
			}
			return false
		}
		if m.Channel != incChan || m.ThreadTS != "" || (m.Method != "chat.postMessage" && m.Method != "chat.update") {
			return false
		}
		inc := byTS[m.TS]
		if inc == nil {
			t := cardTitleRE.FindStringSubmatch(m.Text)
			if t == nil || incs[t[1]] == nil {
				return false
			}
			if incs[t[1]].ts != "" {
				extra++ // a second card of the same incident
				return false
			}
			inc = incs[t[1]]
			mu.Lock()
			inc.ts, inc.card = m.TS, m.At
			mu.Unlock()
			byTS[m.TS] = inc
		}
		if showsContained(m.Text) {
			if inc.contain.IsZero() {
				inc.contain = m.At
				contained++
			}
			seen(inc, m.At)
		} else {
			click(inc, m.TS, "card") // as soon as the card shows (again, if its first version had no Deny)
		}
		return contained == len(incs)
	})
	res := burstResult{n: len(incs), peak: r.gauge.peak.Load(), pbxCalls: r.gauge.total.Load(), extraCards: extra}
	cancel() // stop the stragglers: clicks and commands end with ctx
	wg.Wait()
	for m, st := range r.slack.Stats() {
		res.slackCalls += st.Calls - stats0[m].Calls
		res.slack429 += st.RateLimited - stats0[m].RateLimited
	}
	for _, inc := range incs {
		if i, err := r.store.FindOpen(context.Background(), inc.user, inc.domain); err == nil && i.ID != "" {
			res.opened++
		}
		res.incidents = append(res.incidents, inc)
		if inc.ts != "" {
			res.cards++
			res.openToCard = append(res.openToCard, inc.card.Sub(inc.sent))
		}
		if inc.noticeTS != "" {
			res.notices++
		}
		if _, denied := r.gauge.deniedAt(inc.target); inc.clickAt.IsZero() && !inc.lastClick.IsZero() && (!inc.shown.IsZero() || denied) {
			// Only a click denies in a burst: this one was delivered, and the burst ended (every user
			// shown contained) before its Click call returned, so it was never recorded as delivered.
			inc.clickAt, inc.via = inc.lastClick, inc.lastVia
		}
		switch inc.via {
		case "notice":
			res.viaNotice++
		case "card":
			res.viaCard++
		}
		if !inc.contain.IsZero() {
			res.contained++
			res.total = max(res.total, inc.contain.Sub(start))
		}
		if !inc.shown.IsZero() {
			res.shownTotal = max(res.shownTotal, inc.shown.Sub(start))
			if !inc.clickAt.IsZero() {
				// What the clicker waits for: the user shown contained, where they clicked or on the card.
				res.clickToDeny = append(res.clickToDeny, inc.shown.Sub(inc.clickAt))
			}
		}
		if at, ok := r.gauge.deniedAt(inc.target); ok {
			inc.pbxDenied = at
			if !inc.clickAt.IsZero() {
				res.clickToPBX = append(res.clickToPBX, inc.pbxDenied.Sub(inc.clickAt))
			}
			res.pbxDenied++
			res.pbxTotal = max(res.pbxTotal, inc.pbxDenied.Sub(start))
		}
	}
	return res
}

// showsContained reports whether a card's text shows its user contained: "deny contained" from the
// verified PUT on (while the live calls are still ended), or "deny done" once the step ended.
func showsContained(text string) bool {
	return strings.Contains(text, "deny contained") || strings.Contains(text, "deny done")
}

// floor is the lower bound for a burst: 4 calls × RTT per contained incident, divided by
// the concurrency the PBX saw.
func (res burstResult) floor() time.Duration {
	if res.peak == 0 {
		return 0
	}
	return time.Duration(4 * int64(burstRTT) * int64(res.contained) / res.peak)
}

// peakRSS is the process's VmHWM (/proc/PID/status, Linux) in bytes: the most of its memory that
// was ever resident at once; 0 when it cannot be read.
func (p *proc) peakRSS() int64 {
	pr, err := procfs.NewProc(p.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	st, err := pr.NewStatus()
	if err != nil {
		return 0
	}
	return int64(st.VmHWM)
}

// cpuTime is the CPU time the process used so far: the sum over its threads of the time each ran
// on a CPU (/proc/PID/task/*/schedstat, in ns; a Go process keeps its threads); 0 when it cannot
// be read. The difference over a burst is the bot's own cost of it, whatever else runs on the
// machine (its wall-clock figures are not).
func (p *proc) cpuTime() time.Duration {
	threads, err := procfs.AllThreads(p.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	var ns uint64
	for _, th := range threads {
		if st, err := th.Schedstat(); err == nil {
			ns += st.RunningNanoseconds
		}
	}
	return time.Duration(ns)
}

// pct is the p-th percentile (nearest rank) of ds, 0 for none.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
