package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
	"github.com/compromised-responder/bot/internal/testenv"
)

// The people of the end-to-end tests.
const (
	alice   = "U0ALICE"   // responder and approver
	bob     = "U0BOB"     // responder and approver
	carol   = "U0CAROL"   // responder through the user group S0ONCALL
	mallory = "U0MALLORY" // nobody
	incChan = "C0INC"
	target  = "1001@acme.example"
)

// world is what a bot process runs against: a loopback Slack, the PBX simulator and Redis.
type world struct {
	t     testing.TB
	slack *slackfake.Server
	pbx   *nstest.Server
	redis *testenv.Redis // the bots run with its key prefix (REDIS_KEY_PREFIX)
	store *session.Store
	env   map[string]string
	logs  []*testenv.SyncBuffer // every run's stdout and stderr, for the secret scan
	// scraped holds /metrics bodies, scanned for secrets too.
	scraped []string
	mu      sync.Mutex
	// authzUsers are the users (user, domain) whose incidents the authorization matrix watches.
	authzUsers [][2]string
}

func newWorld(t testing.TB) *world {
	t.Helper()
	return newWorldOn(t, testenv.NewRedis(t), nil)
}

// newWorldOn is newWorld on the given Redis and PBX seed (nil: the demo tenant), for tests that
// kill their own redis-server or need more users than the demo has.
func newWorldOn(t testing.TB, rdb *testenv.Redis, seed *nstest.Seed) *world {
	t.Helper()
	pbx, base := nstest.Start(t, nstest.Options{Seed: seed})
	fake := slackfake.Start(t, slackfake.Options{PingInterval: 500 * time.Millisecond})
	fake.AddChannel(incChan, "incident", true)
	fake.AddChannel("C0OTHER", "other", false)
	for _, u := range []string{alice, bob, carol, mallory} {
		fake.AddUser(u, strings.ToLower(u[2:]))
	}
	fake.AddUserGroup("S0ONCALL", carol)
	store, err := session.New(session.Config{Client: rdb.Client, Prefix: rdb.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, slack: fake, pbx: pbx, redis: rdb, store: store, env: map[string]string{
		"SLACK_APP_TOKEN": "xapp-1-test", "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": fake.APIURL(),
		"NS_API_URL": base, "NS_API_KEY": pbx.APIKey(), "REDIS_URL": rdb.URL, "REDIS_KEY_PREFIX": rdb.Prefix,
		"RESPONDERS": alice + "," + bob + ",S0ONCALL", "APPROVERS": alice + "," + bob,
		"APPROVAL_STEPS": "restore", "HTTP_ADDR": "127.0.0.1:0", "LOG_FORMAT": "json", "LOG_LEVEL": "debug",
		"WORKERS": "4",
		// The restore gate holds every restore until re-created devices register again: the
		// tests that are not about it run without it (e2e_gate_test.go turns it on).
		"RESTORE_GATE": "false",
	}}
}

// bot is one running `bot serve`.
type bot struct {
	url    string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

var listenRE = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)

// start runs `bot serve` in this process, waits for its /readyz and returns it; it is stopped
// at the end of the test.
func (w *world) start() *bot {
	w.t.Helper()
	out, errs := &testenv.SyncBuffer{}, &testenv.SyncBuffer{}
	w.mu.Lock()
	w.logs = append(w.logs, out, errs)
	w.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	b := &bot{cancel: cancel, done: make(chan error, 1)}
	env := w.env
	go func() {
		b.done <- run(ctx, []string{"bot", "serve"}, func(k string) string { return env[k] }, strings.NewReader(""), out, errs)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for b.url == "" {
		if m := listenRE.FindStringSubmatch(out.String()); m != nil {
			b.url = m[1]
			break
		}
		select {
		case err := <-b.done:
			w.t.Fatalf("bot stopped at start-up: %v\nstderr:\n%s", err, errs.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("bot did not announce its address\nstderr:\n%s", errs.String())
		}
	}
	w.t.Cleanup(func() { b.stop(w.t) })
	w.waitReady(b, true)
	return b
}

// stop cancels the run and waits for it to return (idempotent).
func (b *bot) stop(t testing.TB) {
	t.Helper()
	b.once.Do(func() {
		b.cancel()
		select {
		case err := <-b.done:
			if err != nil {
				t.Errorf("bot run returned %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Errorf("bot did not stop within 40 s")
		}
	})
}

// readyz fetches /readyz.
func readyz(url string) (int, readiness, error) {
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		return 0, readiness{}, err
	}
	defer resp.Body.Close()
	var r readiness
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &r); err != nil {
		return resp.StatusCode, r, fmt.Errorf("readyz body %q: %w", body, err)
	}
	return resp.StatusCode, r, nil
}

// waitReady polls /readyz until it is (or is not) 200, for at most 10 s.
func (w *world) waitReady(b *bot, want bool) {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, r, err := readyz(b.url)
		if err == nil && (code == http.StatusOK) == want {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("readyz never became ready=%v: code %d, %+v, %v", want, code, r, err)
		}
		time.Sleep(50 * time.Millisecond) // polling an HTTP endpoint from the test, not in a request path
	}
}

func (w *world) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	w.t.Cleanup(cancel)
	return ctx
}

// command runs /compromised text as user and waits for its ack.
func (w *world) command(user, channel, text string) {
	w.t.Helper()
	ctx := w.ctx()
	id, err := w.slack.SlashCommand(ctx, slackfake.SlashCommand{UserID: user, ChannelID: channel, Text: text})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.slack.WaitAck(ctx, id); err != nil {
		w.t.Fatalf("command %q not acked: %v", text, err)
	}
}

// click presses a button of the card as user and waits for the ack.
func (w *world) click(user, ts, actionID string) {
	w.t.Helper()
	w.clickWith(slackfake.Click{UserID: user, ChannelID: incChan, MessageTS: ts, ActionID: actionID})
}

// staleClick presses a button an older rendering of the card showed (value = incident ID).
func (w *world) staleClick(user, ts, actionID, incidentID string) {
	w.t.Helper()
	w.clickWith(slackfake.Click{UserID: user, ChannelID: incChan, MessageTS: ts, ActionID: actionID,
		BlockID: "s:old:v1", Value: incidentID, Stale: true})
}

func (w *world) clickWith(c slackfake.Click) {
	w.t.Helper()
	ctx := w.ctx()
	ts, actionID := c.MessageTS, c.ActionID
	id, err := w.slack.Click(ctx, c)
	if err != nil {
		m, _ := w.slack.Message(incChan, ts)
		w.t.Fatalf("click %s: %v\ncard now: %s %s", actionID, err, m.Method, m.Blocks)
	}
	if _, err := w.slack.WaitAck(ctx, id); err != nil {
		w.t.Fatalf("click %s not acked: %v", actionID, err)
	}
}

// waitFor waits until cond holds, re-checking after every Slack event (and at least every 100 ms
// for conditions on Redis or the PBX).
func (w *world) waitFor(what string, cond func() bool) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	wake := make(chan struct{}, 1)
	go func() {
		_ = w.slack.WaitFor(ctx, func(*slackfake.Server) bool {
			select {
			case wake <- struct{}{}:
			default:
			}
			return false
		})
	}()
	for !cond() {
		select {
		case <-ctx.Done():
			w.t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		case <-wake:
		}
	}
}

// openAndDeny opens an incident for target as alice (with reason, if any) and runs deny to a
// verified Deny All; it returns the card's ts and the incident as opened.
func (w *world) openAndDeny(reason string) (string, session.Incident) {
	w.t.Helper()
	text := target
	if reason != "" {
		text += " " + reason
	}
	w.command(alice, incChan, text)
	ts, inc := w.card("1001", "acme.example")
	w.click(alice, ts, "step:deny")
	w.cardShows(ts, "deny done")
	return ts, inc
}

// slowDeviceCreates delays every device create on the PBX by d, so recreate is still running
// when the test acts on the bot.
func (w *world) slowDeviceCreates(d time.Duration) {
	w.pbx.SetFaults(nstest.Faults{Latency: d, Match: func(method, path string) bool {
		return method == "POST" && strings.HasSuffix(path, "/devices")
	}})
}

// card returns the ts of the incident card for user@domain (waiting for it) and the incident.
func (w *world) card(user, domain string) (string, session.Incident) {
	w.t.Helper()
	var inc session.Incident
	w.waitFor("the card of "+user+"@"+domain, func() bool {
		i, err := w.store.FindOpen(context.Background(), user, domain)
		if err != nil || i.MessageTS == "" {
			return false
		}
		inc = i
		_, ok := w.slack.Message(i.Channel, i.MessageTS)
		return ok
	})
	return inc.MessageTS, inc
}

func (w *world) incident(id string) session.Incident {
	w.t.Helper()
	inc, err := w.store.Get(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return inc
}

// cardShows waits until the card's current version contains s.
func (w *world) cardShows(ts, s string) {
	w.t.Helper()
	w.waitFor("card to show "+s, func() bool {
		m, ok := w.slack.Message(incChan, ts)
		return ok && (strings.Contains(m.Text, s) || strings.Contains(string(m.Blocks), s))
	})
}

// ephemeralWith waits for an ephemeral message to user that contains s.
func (w *world) ephemeralWith(user, s string) slackfake.Message {
	w.t.Helper()
	var got slackfake.Message
	w.waitFor("an ephemeral to "+user+" with "+s, func() bool {
		for _, m := range w.slack.Ephemerals(user) {
			if strings.Contains(m.Text, s) || strings.Contains(string(m.Blocks), s) {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// threadLines splits messages into one per line of text: a thread reply (or its AUDIT_CHANNEL
// mirror) carries several audit lines when they were posted together.
func threadLines(msgs []slackfake.Message) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range msgs {
		for ln := range strings.SplitSeq(m.Text, "\n") {
			one := m
			one.Text = ln
			out = append(out, one)
		}
	}
	return out
}

// threadComplete waits until the card's thread holds one line per audit entry, and returns
// its lines (threadLines).
func (w *world) threadComplete(id string) []slackfake.Message {
	w.t.Helper()
	var replies []slackfake.Message
	w.waitFor("the thread of "+id+" to hold the whole audit", func() bool {
		inc := w.incident(id)
		entries, err := w.store.Audit(context.Background(), id)
		if err != nil {
			return false
		}
		replies = threadLines(w.slack.Thread(inc.Channel, inc.MessageTS))
		return len(replies) >= len(entries) && len(entries) > 0
	})
	return replies
}

// threadAndAudit waits until the card's thread holds exactly one line per audit entry and returns
// both, read in the same pass: an entry appended just after a step shows (the delivery record, say)
// is waited for rather than compared against a thread that has not caught up yet.
func (w *world) threadAndAudit(id string) ([]slackfake.Message, []session.AuditEntry) {
	w.t.Helper()
	var replies []slackfake.Message
	var entries []session.AuditEntry
	w.waitFor("the thread of "+id+" to hold one line per audit entry", func() bool {
		inc := w.incident(id)
		var err error
		if entries, err = w.store.Audit(context.Background(), id); err != nil {
			return false
		}
		replies = threadLines(w.slack.Thread(inc.Channel, inc.MessageTS))
		return len(replies) == len(entries) && len(entries) > 0
	})
	return replies, entries
}

// secretValues extracts the credentials shown in ephemeral secrets messages.
func secretValues(msgs []slackfake.Message) []string {
	var out []string
	for _, m := range msgs {
		if !strings.Contains(m.Text, "New credentials") {
			continue
		}
		var blocks []struct {
			Fields []struct {
				Text string `json:"text"`
			} `json:"fields"`
		}
		_ = json.Unmarshal(m.Blocks, &blocks)
		for _, b := range blocks {
			for _, f := range b.Fields {
				out = append(out, f.Text)
			}
		}
	}
	return out
}

// scanSecrets fails the test if any secret appears in a channel message, a thread reply, a
// non-ephemeral API call or any log line of any run.
func (w *world) scanSecrets(secrets []string) {
	w.t.Helper()
	if len(secrets) == 0 {
		w.t.Fatal("no secrets to scan for: the test did not see any delivered")
	}
	var hay []string
	for _, m := range w.slack.Messages() {
		if m.Method == "chat.postEphemeral" || (m.ResponseType == "ephemeral") {
			continue
		}
		hay = append(hay, m.Method+" "+m.Text+" "+string(m.Blocks))
	}
	for _, c := range w.slack.Calls("") {
		if c.Method == "chat.postEphemeral" {
			continue
		}
		hay = append(hay, c.Method+" "+c.Form.Encode()+" "+string(c.JSON))
	}
	w.mu.Lock()
	for _, l := range w.logs {
		hay = append(hay, l.String())
	}
	hay = append(hay, w.scraped...)
	w.mu.Unlock()
	for _, s := range secrets {
		if len(s) < 4 {
			w.t.Fatalf("secret %q too short to scan for", s)
		}
		for _, h := range hay {
			if strings.Contains(h, s) {
				i := strings.Index(h, s)
				w.t.Errorf("a secret appears outside the actor's ephemeral message: …%s…", h[max(0, i-80):i])
			}
		}
	}
}

// jsonLines fails the test if any log line of any run is not a JSON object.
func (w *world) jsonLines() {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.logs {
		for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
			if line == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				w.t.Errorf("log line is not JSON: %q", line)
			}
		}
	}
}

var versionRE = regexp.MustCompile(`"s:deny:v(\d+)"`)

// cardMonotonic checks that no update of the card ever showed an older incident version than
// the one before it (out-of-order completions must not make the card go backwards).
func (w *world) cardMonotonic(ts string) {
	w.t.Helper()
	last := 0
	for _, m := range w.slack.Messages() {
		if m.TS != ts || (m.Method != "chat.update" && m.Method != "chat.postMessage") {
			continue
		}
		v := versionRE.FindStringSubmatch(string(m.Blocks))
		if v == nil {
			continue
		}
		n, _ := strconv.Atoi(v[1])
		if n < last {
			w.t.Errorf("card went backwards: version %d after %d", n, last)
		}
		last = n
	}
	if last == 0 {
		w.t.Errorf("no card version seen")
	}
}

// metric reads one sample of /metrics (0 when absent).
func metric(t *testing.T, url, series string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// scrape adds a /metrics scrape to the captured output (the secret scan covers it).
func (w *world) scrape(url string) {
	w.t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, name := range []string{"compromised_slack_envelopes_received_total", "compromised_slack_ack_latency_seconds", "compromised_steps_total",
		"compromised_time_to_containment_seconds", "compromised_workers_busy", "compromised_queue_depth", "compromised_queue_busy_total", "compromised_pbx_calls_total",
		"compromised_pbx_request_duration_seconds_bucket{op=\"get_user\"",
		"compromised_incidents_open", "compromised_incidents_in_deny_all", "compromised_build_info"} {
		if !strings.Contains(string(body), name) {
			w.t.Errorf("/metrics lacks %s", name)
		}
	}
	w.mu.Lock()
	w.scraped = append(w.scraped, string(body))
	w.mu.Unlock()
}
