package slackui

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/lockdown"
	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
	"github.com/compromised-responder/bot/internal/testenv"
)

// Compile-time checks that the real engine and store satisfy the app's interfaces.
var (
	_ Engine             = (*remediate.Engine)(nil)
	_ Store              = (*session.Store)(nil)
	_ remediate.Notifier = (*Changes)(nil)
)

const (
	hAlice = "U0ALICE"
	hBob   = "U0BOB"
	hChan  = "C0INC"
)

// harness is one App wired to real parts (Redis, the PBX simulator, the loopback Slack) without
// a Socket Mode link: tests call its handlers and loops directly.
type harness struct {
	t     testing.TB
	ctx   context.Context
	fake  *slackfake.Server
	pbx   *nstest.Server
	store *session.Store
	rdb   session.Client // the store's
	eng   *remediate.Engine
	lk    *lockdown.Engine // the apps' Lockdowns (no reconciler runs)
	pbxc  *netsapiens.Client
	clock *testenv.Clock // shared by the store, the engine and the app
	apps  []*App
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessCfg(t, nil)
}

// newHarnessCfg is newHarness with mod applied to both apps' Config.
func newHarnessCfg(t testing.TB, mod func(*Config)) *harness {
	t.Helper()
	rdb := testenv.NewRedis(t)
	pbx, base := nstest.Start(t, nstest.Options{})
	fake := slackfake.Start(t, slackfake.Options{})
	fake.AddChannel(hChan, "incident", true)
	fake.AddUser(hAlice, "alice")
	fake.AddUser(hBob, "bob")
	clk := testenv.NewClock(time.Now().UTC())
	store, err := session.New(session.Config{Client: rdb.Client, Prefix: rdb.Prefix, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	client, err := netsapiens.New(netsapiens.Config{BaseURL: base, APIKey: netsapiens.Secret(pbx.APIKey())})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := &harness{t: t, ctx: ctx, fake: fake, pbx: pbx, store: store, rdb: rdb.Client, clock: clk, pbxc: client}
	// Each app has its own Changes; the engine notifies all of them through fanout.
	fan := &fanout{}
	h.eng, err = remediate.New(client, store, remediate.Config{ApprovalSteps: []session.Step{session.StepRestore},
		Notifier: fan, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if h.lk, err = lockdown.New(client, h.eng, store, lockdown.Config{Owner: "H", Notifier: fan, Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.lk.Shutdown(ctx)
	})
	for range 2 {
		ch := NewChanges()
		fan.add(ch)
		cfg := Config{BotToken: "xoxb-test", AppToken: "xapp-1-test", APIURL: fake.APIURL(),
			Responders: []string{hAlice, hBob}, Approvers: []string{hAlice, hBob},
			ApprovalSteps: []session.Step{session.StepRestore}, RemindAfter: 30 * time.Minute, RemindEvery: 2 * time.Hour,
			Logger: zerolog.New(zerolog.NewTestWriter(t)), Now: clk.Now, SyncRetry: 20 * time.Millisecond,
			Lockdowns: h.lk,
		}
		if mod != nil {
			mod(&cfg)
		}
		app, err := New(cfg, h.eng, store, ch, nil)
		if err != nil {
			t.Fatal(err)
		}
		app.botUserID = "U0BOT"
		for range 4 {
			go app.syncLoop(ctx)
		}
		h.apps = append(h.apps, app)
	}
	return h
}

type fanout struct {
	mu sync.Mutex
	cs []*Changes
}

func (f *fanout) add(c *Changes) { f.mu.Lock(); f.cs = append(f.cs, c); f.mu.Unlock() }
func (f *fanout) Changed(ctx context.Context, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.cs {
		c.Changed(ctx, id)
	}
}

// open runs `/compromised 1001@acme.example` through the first app and returns the incident.
func (h *harness) open() session.Incident {
	h.t.Helper()
	h.apps[0].command(h.ctx, &slack.SlashCommand{UserID: hAlice, ChannelID: hChan, Text: "1001@acme.example"})
	h.apps[0].cards.wg.Wait() // the card is posted off the worker
	inc, err := h.store.FindOpen(h.ctx, "1001", "acme.example")
	if err != nil {
		h.t.Fatalf("no incident after open: %v", err)
	}
	if inc.MessageTS == "" {
		h.t.Fatal("the card's ts was not recorded")
	}
	// The card is posted after the user read; the devices and live calls follow (openfill.go).
	h.waitFor("the open's devices and live calls", func() bool { l := h.get(inc.ID).Live; return l != nil && !l.Pending })
	return h.get(inc.ID)
}

// click delivers a button press to app i.
func (h *harness) click(i int, user, actionID, id string) {
	h.t.Helper()
	cb := &slack.InteractionCallback{Type: slack.InteractionTypeBlockActions, User: slack.User{ID: user},
		Channel: slack.Channel{GroupConversation: slack.GroupConversation{Conversation: slack.Conversation{ID: hChan}}},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: actionID, Value: id,
			BlockID: "b", ActionTs: strconv.FormatInt(time.Now().UnixNano(), 10)}}}}
	h.apps[i].action(h.ctx, cb, false)
}

func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, 15*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			h.t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (h *harness) get(id string) session.Incident {
	h.t.Helper()
	inc, err := h.store.Get(h.ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return inc
}

// threadLines are the lines of a thread's replies: a reply carries several audit lines when
// they were posted together.
func threadLines(replies []slackfake.Message) []string {
	var out []string
	for _, r := range replies {
		out = append(out, strings.Split(r.Text, "\n")...)
	}
	return out
}

var cardVersion = regexp.MustCompile(`"x:v(\d+)"`)

// TestCardNeverGoesBackwards: many concurrent changes of one incident, synced by two replicas
// with four workers each: every chat.update shows a version at least as new as the one before,
// and the card ends on the newest.
func TestCardNeverGoesBackwards(t *testing.T) {
	h := newHarness(t)
	inc := h.open()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			_, err := h.store.Update(h.ctx, inc.ID, func(i *session.Incident) error { i.Reason = "r"; return nil })
			if err != nil {
				t.Error(err)
			}
			h.apps[i%2].changes.Changed(h.ctx, inc.ID)
		})
	}
	wg.Wait()
	last := h.get(inc.ID).Version
	want := `"x:v` + strconv.FormatInt(last, 10) + `"`
	h.waitFor("the card to show the newest version", func() bool {
		m, ok := h.fake.Message(hChan, inc.MessageTS)
		return ok && strings.Contains(string(m.Blocks), want)
	})
	prev := 0
	updates := 0
	for _, m := range h.fake.Messages() {
		if m.TS != inc.MessageTS || m.Method != "chat.update" {
			continue
		}
		updates++
		v := cardVersion.FindStringSubmatch(string(m.Blocks))
		if v == nil {
			t.Fatalf("card update without a version: %s", m.Blocks)
		}
		n, _ := strconv.Atoi(v[1])
		if n < prev {
			t.Errorf("card went backwards: v%d after v%d", n, prev)
		}
		prev = n
	}
	if updates == 0 || updates > 41 {
		t.Errorf("%d card updates for 41 versions", updates)
	}
}

// TestOpenCardPostFails: when the card cannot be posted the incident is removed again and the
// user is told how to add the bot.
func TestOpenCardPostFails(t *testing.T) {
	h := newHarness(t)
	h.fake.FailMethod("chat.postMessage", "not_in_channel", 1)
	h.apps[0].command(h.ctx, &slack.SlashCommand{UserID: hAlice, ChannelID: hChan, Text: "1001@acme.example"})
	h.apps[0].cards.wg.Wait() // the card is posted off the worker
	if _, err := h.store.FindOpen(h.ctx, "1001", "acme.example"); err == nil {
		t.Fatal("the incident stayed open without a card")
	}
	eph := h.fake.Ephemerals(hAlice)
	if len(eph) != 1 || !strings.Contains(eph[0].Text, "/invite") {
		t.Fatalf("ephemerals %+v, want one telling how to invite the bot", eph)
	}
}

// TestRateLimitedUpdateRetries: a 429 on chat.update is waited out (Retry-After) and retried.
func TestRateLimitedUpdateRetries(t *testing.T) {
	h := newHarness(t)
	inc := h.open()
	// The open's own sync must be done first (its thread line posted), or a chat.update of it
	// could take the 429 meant for the update below (or pass before the limit is set).
	h.waitFor("the open's sync", func() bool {
		return len(h.fake.Thread(hChan, inc.MessageTS)) == 1 && h.apps[0].changes.idle() && h.apps[1].changes.idle()
	})
	before := len(h.fake.Calls("chat.update"))
	h.fake.RateLimit("chat.update", 1, 1)
	if _, err := h.store.Update(h.ctx, inc.ID, func(i *session.Incident) error { i.Reason = "x"; return nil }); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	h.apps[0].changes.Changed(h.ctx, inc.ID)
	h.waitFor("an update after the rate limit", func() bool {
		calls := h.fake.Calls("chat.update")[before:]
		return len(calls) >= 2 && calls[0].Error == "ratelimited" && calls[len(calls)-1].Error == ""
	})
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("retried after %s, before Retry-After (1 s)", d)
	}
}

// TestSecretDeliveryFailure: a failed ephemeral is recorded on the incident and shown on the
// card; `credentials` rotates and delivers again.
func TestSecretDeliveryFailure(t *testing.T) {
	h := newHarness(t)
	inc := h.open()
	h.click(0, hAlice, "step:deny", inc.ID)
	h.fake.FailMethod("chat.postEphemeral", "user_not_in_channel", 1)
	h.click(0, hAlice, "step:recreate", inc.ID)
	got := h.get(inc.ID)
	if d, ok := got.Delivery["1001a"]; !ok || d.Delivered || !strings.Contains(d.Error, "user_not_in_channel") {
		t.Fatalf("delivery of 1001a = %+v, want a recorded failure", got.Delivery)
	}
	h.waitFor("the card to show the failed delivery", func() bool {
		m, _ := h.fake.Message(hChan, inc.MessageTS)
		return strings.Contains(string(m.Blocks), "were not delivered")
	})
	h.click(1, hAlice, "credentials", inc.ID)
	if d := h.get(inc.ID).Delivery["1001a"]; !d.Delivered {
		t.Fatalf("after credentials the delivery is %+v", d)
	}
	n := 0
	for _, m := range h.fake.Ephemerals(hAlice) {
		if m.Text == SecretsFallbackText {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d credential messages reached alice, want 1 (the re-delivery)", n)
	}
}

// TestReminders: one thread reminder after REMIND_AFTER, then every REMIND_EVERY, however many
// replicas run the periodic pass.
func TestReminders(t *testing.T) {
	h := newHarness(t)
	inc := h.open()
	h.click(0, hAlice, "step:deny", inc.ID)
	reminders := func() int {
		n := 0
		for _, m := range h.fake.Thread(hChan, inc.MessageTS) {
			if strings.HasPrefix(m.Text, "⏰") {
				n++
			}
		}
		return n
	}
	steps := []struct {
		advance time.Duration
		want    int
	}{{0, 0}, {31 * time.Minute, 1}, {time.Minute, 1}, {2 * time.Hour, 2}}
	for _, s := range steps {
		h.clock.Advance(s.advance)
		var wg sync.WaitGroup
		for _, a := range h.apps {
			wg.Go(func() { a.maintainOnce(h.ctx) })
		}
		wg.Wait()
		if got := reminders(); got != s.want {
			t.Fatalf("after +%s: %d reminders, want %d", s.advance, got, s.want)
		}
	}
}

// TestPlanBlocks: the dry run is valid Block Kit, says before → after, and holds no secret.
func TestPlanBlocks(t *testing.T) {
	h := newHarness(t)
	p, err := h.eng.Plan(h.ctx, "1001", "acme.example")
	if err != nil {
		t.Fatal(err)
	}
	blocks := PlanBlocks(p)
	raw, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	if err := slackfake.ValidateBlocks(raw); err != nil {
		t.Fatalf("plan blocks: %v", err)
	}
	for _, want := range []string{"US and Canada → Deny All", "Dry run", "DELETE"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("plan lacks %q", want)
		}
	}
	for _, d := range h.pbx.Devices("acme.example", "1001") {
		if pw, _ := d["device-sip-registration-password"].(string); pw != "" && strings.Contains(string(raw), pw) {
			t.Errorf("plan shows the SIP password of %v", d["device"])
		}
	}
	if len(h.pbx.Writes()) != 0 {
		t.Errorf("plan made %d PBX writes", len(h.pbx.Writes()))
	}
}

// TestApprovalExpiry: an expired request shows "Request again" on the card (re-rendered by the
// periodic pass, the version unchanged), an Approve of it is refused, and the button asks anew.
func TestApprovalExpiry(t *testing.T) {
	h := newHarness(t)
	inc := h.open()
	h.click(0, hAlice, "step:deny", inc.ID)
	h.click(0, hAlice, "step:restore", inc.ID)
	if cur := h.get(inc.ID); cur.Step(session.StepRestore).Status != session.StatusAwaiting {
		t.Fatalf("restore is %s after the request", cur.Step(session.StepRestore).Status)
	}
	h.clock.Advance(2 * time.Hour) // APPROVAL_TTL is 1 h
	h.apps[1].maintainOnce(h.ctx)
	h.waitFor("the card to show the expired request", func() bool {
		m, _ := h.fake.Message(hChan, inc.MessageTS)
		return strings.Contains(string(m.Blocks), "Request again")
	})
	writes := len(h.pbx.Writes())
	h.click(1, hBob, "approve:restore", inc.ID)
	if cur := h.get(inc.ID); cur.Step(session.StepRestore).ApprovedBy != "" || len(h.pbx.Writes()) != writes {
		got := cur.Step(session.StepRestore)
		t.Fatalf("an expired request was approved: %+v", got)
	}
	h.click(0, hAlice, "step:restore", inc.ID)
	cur := h.get(inc.ID)
	st := cur.Step(session.StepRestore)
	if st.Status != session.StatusAwaiting || !st.ApprovalPending(h.clock.Now()) {
		t.Fatalf("after Request again restore is %s (pending %v)", st.Status, st.ApprovalPending(h.clock.Now()))
	}
	h.click(1, hBob, "approve:restore", inc.ID)
	if got := h.get(inc.ID); got.State != session.StateRestored {
		t.Fatalf("after approval the incident is %s", got.State)
	}
}

// TestPeriodicPassSyncsClosedIncidents: a change nobody was told about (another process
// closed the incident and died before syncing) reaches the card and thread through the
// periodic pass, which follows the global audit chain.
func TestPeriodicPassSyncsClosedIncidents(t *testing.T) {
	h := newHarness(t)
	inc := h.open()
	h.waitFor("the open to be synced", func() bool {
		// The open's two lines: incident.opened, live.read (its devices and calls, read after the card).
		return len(threadLines(h.fake.Thread(hChan, inc.MessageTS))) == 2 && h.apps[0].changes.idle() && h.apps[1].changes.idle()
	})
	silent, err := remediate.New(h.pbxc, h.store, remediate.Config{Now: h.clock.Now}) // no Notifier
	if err != nil {
		t.Fatal(err)
	}
	if _, err := silent.Abort(h.ctx, inc.ID, hBob, "false alarm", ""); err != nil {
		t.Fatal(err)
	}
	fresh := h.apps[1]
	fresh.globalSeq = 0 // as after a restart
	fresh.maintainOnce(h.ctx)
	h.waitFor("the card to show the abort", func() bool {
		m, _ := h.fake.Message(hChan, inc.MessageTS)
		return strings.Contains(m.Text, "Closed (aborted)")
	})
	h.waitFor("the abort in the thread", func() bool {
		for _, m := range h.fake.Thread(hChan, inc.MessageTS) {
			if strings.Contains(m.Text, "incident aborted") {
				return true
			}
		}
		return false
	})
}
