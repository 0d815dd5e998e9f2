package slackui

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// tagged is a job the queue tests can tell apart (by its envelope ID).
func tagged(id string) job { return job{envelopeID: id} }

// TestQueueLanes: the jobs of one lane run one at a time and in order, while another lane runs
// beside them; everything submitted runs exactly once, and close lets the queue drain.
func TestQueueLanes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q := newQueue(100, NewMetrics(nil))
	var mu sync.Mutex
	running := map[string]int{} // lane → jobs running now
	ran := map[string][]string{}
	overlap := false
	bStarted := make(chan struct{})
	q.start(ctx, 4, func(ctx context.Context, j job) {
		ln := j.envelopeID[:1]
		lane := ln // the queue's lane: a laneless job's is its own, so n0 and n1 may run at once
		if ln == "n" {
			lane = j.envelopeID
		}
		mu.Lock()
		running[lane]++
		if running[lane] > 1 {
			t.Errorf("lane %s runs %d jobs at once", lane, running[lane])
		}
		ran[ln] = append(ran[ln], j.envelopeID)
		mu.Unlock()
		switch j.envelopeID {
		case "a0": // holds lane a until lane b runs: the lanes are parallel
			select {
			case <-bStarted:
				mu.Lock()
				overlap = true
				mu.Unlock()
			case <-ctx.Done():
			}
		case "b0":
			close(bStarted)
		}
		mu.Lock()
		running[lane]--
		mu.Unlock()
	})
	var want []string
	for i := range 5 {
		for _, ln := range []string{"a", "b"} {
			id := ln + strconv.Itoa(i)
			if !q.submit("inc:"+ln, tagged(id)) {
				t.Fatalf("a queue of 100 refused job %d", len(want))
			}
			want = append(want, id)
		}
	}
	for i := range 5 {
		if !q.submit("", tagged("n"+strconv.Itoa(i))) { // laneless: each its own lane
			t.Fatal("refused a laneless job")
		}
	}
	q.close()
	if q.submit("", tagged("late")) {
		t.Error("a closed queue took a job")
	}
	if !q.wait(ctx) {
		t.Fatal("the queue did not drain")
	}
	if !overlap {
		t.Error("lane a never ran beside lane b")
	}
	for _, ln := range []string{"a", "b"} {
		wantLane := slices.DeleteFunc(slices.Clone(want), func(id string) bool { return id[:1] != ln })
		if diff := cmp.Diff(ran[ln], wantLane); diff != "" {
			t.Errorf("lane %s ran (-got +want):\n%s", ln, diff)
		}
	}
	if len(ran["n"]) != 5 {
		t.Errorf("%d laneless jobs ran, want 5", len(ran["n"]))
	}
}

// TestQueueFull: past size waiting jobs submit refuses (and never blocks), a refused job is
// not kept, and what waits when a shutdown gives up is handed back, not forgotten.
func TestQueueFull(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q := newQueue(3, NewMetrics(nil))
	release := make(chan struct{})
	started := make(chan string, 10)
	q.start(ctx, 1, func(ctx context.Context, j job) {
		started <- j.envelopeID
		select {
		case <-release:
		case <-ctx.Done():
		}
	})
	if !q.submit("inc:x", tagged("run")) {
		t.Fatal("an empty queue refused a job")
	}
	if got := <-started; got != "run" {
		t.Fatalf("the worker started %q", got)
	}
	for i := range 3 {
		if !q.submit("", tagged("w"+strconv.Itoa(i))) {
			t.Fatalf("refused waiting job %d of 3", i)
		}
	}
	if q.submit("inc:x", tagged("over")) || q.submit("", tagged("over")) {
		t.Fatal("a full queue took a job")
	}
	if d := q.retryAfter(); d < time.Second || d > time.Minute {
		t.Errorf("retryAfter %s, want 1 s to 60 s", d)
	}
	q.close()
	left := q.abandon()
	ids := make([]string, len(left))
	for i, j := range left {
		ids[i] = j.envelopeID
	}
	slices.Sort(ids)
	if diff := cmp.Diff(ids, []string{"w0", "w1", "w2"}); diff != "" {
		t.Errorf("abandoned (-got +want):\n%s", diff)
	}
	close(release)
	if !q.wait(ctx) {
		t.Fatal("the worker did not stop after the abandon")
	}
	select {
	case id := <-started:
		t.Errorf("%s ran after it was abandoned", id)
	default:
	}
}

// TestJobLane: clicks queue in their incident's lane, opens in their user's, the rest alone.
func TestJobLane(t *testing.T) {
	click := &slack.InteractionCallback{Type: slack.InteractionTypeBlockActions,
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: "step:deny", Value: "INC-7K2QXM", BlockID: "b"}}}}
	tests := []struct {
		j    job
		want string
	}{
		{job{callback: click}, "inc:INC-7K2QXM"},
		{job{command: &slack.SlashCommand{Text: "1001@ACME.example laptop stolen"}}, "open:1001@acme.example"},
		{job{command: &slack.SlashCommand{Text: "list"}}, ""},
		{job{callback: &slack.InteractionCallback{Type: slack.InteractionTypeBlockActions}}, ""},
	}
	for _, tc := range tests {
		if got := tc.j.lane(); got != tc.want {
			t.Errorf("lane of %+v = %q, want %q", tc.j, got, tc.want)
		}
	}
}

// TestDrainAnswersWhatWaits: at shutdown the queue is drained until the grace ends; what still
// waits then is answered "restarting" (a refusal still waiting for its audit entry gets it), and
// nothing is run after its answer.
func TestDrainAnswersWhatWaits(t *testing.T) {
	h := newHarness(t)
	a := h.apps[0]
	a.queue = newQueue(10, a.m)
	release := make(chan struct{})
	started := make(chan string, 10)
	a.queue.start(h.ctx, 1, func(ctx context.Context, j job) {
		started <- j.envelopeID
		<-release
	})
	var repliers sync.WaitGroup
	repliers.Go(func() { a.replier(h.ctx) })
	click := func(user string) *slack.InteractionCallback {
		return &slack.InteractionCallback{Type: slack.InteractionTypeBlockActions, User: slack.User{ID: user},
			Channel: slack.Channel{GroupConversation: slack.GroupConversation{Conversation: slack.Conversation{ID: hChan}}}}
	}
	a.queue.submit("", job{envelopeID: "running", callback: click(hAlice)})
	<-started
	a.queue.submit("", job{envelopeID: "w1", callback: click(hBob)})
	a.queue.submit("", job{envelopeID: "w2", command: &slack.SlashCommand{UserID: hAlice, ChannelID: hChan, Text: "list"}})
	a.queue.submit("", job{envelopeID: "w3", audit: &session.AuditEntry{Actor: "U0EVE", Action: "refused.unauthorized", Detail: "/compromised list"}})

	grace, cancel := context.WithCancel(h.ctx)
	cancel() // the grace is over at once: the running job holds the only worker
	a.drain(grace)
	repliers.Wait()
	close(release)
	if !a.queue.wait(h.ctx) {
		t.Fatal("the worker did not stop")
	}
	for _, u := range []string{hAlice, hBob} {
		got := h.fake.Ephemerals(u)
		if len(got) != 1 || got[0].Text != RestartingText() {
			t.Errorf("%s got %+v, want one 'restarting' answer", u, got)
		}
	}
	global, err := h.store.GlobalAudit(h.ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(global, func(e session.AuditEntry) bool { return e.Actor == "U0EVE" && e.Action == "refused.unauthorized" }) {
		t.Error("the waiting refusal's audit entry was not written")
	}
	select {
	case id := <-started:
		t.Errorf("%s ran after the drain answered it", id)
	default:
	}
}

// clickJob is a block_actions job clicking actionID on incident id's card.
func clickJob(env, actionID, id string) job {
	return job{envelopeID: env, callback: &slack.InteractionCallback{Type: slack.InteractionTypeBlockActions,
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: actionID, Value: id, BlockID: "b"}}}}}
}

// TestQueueDenyFirst: with every worker busy, a Deny click (and a Deny's approval) queued
// after opens and other clicks is taken before them; the rest keep their order, and a lane's
// jobs stay in order (its Deny waits for the job ahead of it in the same lane, then goes first).
func TestQueueDenyFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q := newQueue(100, NewMetrics(nil))
	hold := make(chan struct{})
	var mu sync.Mutex
	var ran []string
	q.start(ctx, 1, func(ctx context.Context, j job) {
		if j.envelopeID == "busy" {
			select { // the one worker is busy while the rest is queued
			case <-hold:
			case <-ctx.Done():
			}
		}
		mu.Lock()
		ran = append(ran, j.envelopeID)
		mu.Unlock()
	})
	open := func(env, user string) job {
		return job{envelopeID: env, command: &slack.SlashCommand{Text: user + "@acme.example"}}
	}
	jobs := []job{
		tagged("busy"),
		open("open1", "1001"),
		clickJob("restoreA", "step:restore", "INC-AAAAAA"),
		open("open2", "1002"),
		clickJob("denyB", "step:deny", "INC-BBBBBB"),
		clickJob("denyA", "step:deny", "INC-AAAAAA"), // behind restoreA in lane A
		clickJob("approveC", "approve:deny", "INC-CCCCCC"),
	}
	for i, j := range jobs {
		if !q.submit(j.lane(), j) {
			t.Fatalf("job %s refused", j.envelopeID)
		}
		if i == 0 { // the worker takes "busy" before the rest is queued
			testenv.WaitFor(t, 5*time.Second, "the worker took the first job", func() bool { q.mu.Lock(); defer q.mu.Unlock(); return q.waiting == 0 })
		}
	}
	close(hold)
	q.close()
	if !q.wait(ctx) {
		t.Fatal("the queue did not drain")
	}
	want := []string{"busy", "denyB", "approveC", "open1", "restoreA", "denyA", "open2"} // denyA after restoreA, its lane's job ahead of it, then first
	if diff := cmp.Diff(want, ran); diff != "" {
		t.Errorf("order run (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		j    job
		want bool
	}{
		{clickJob("", "step:deny", "INC-AAAAAA"), true},
		{clickJob("", "approve:deny", "INC-AAAAAA"), true},
		{clickJob("", "reject:deny", "INC-AAAAAA"), false},
		{clickJob("", "step:recreate", "INC-AAAAAA"), false},
		{open("", "1001"), false},
		{tagged("x"), false},
	} {
		if got := tc.j.urgent(); got != tc.want {
			t.Errorf("urgent(%+v) = %v, want %v", tc.j.callback, got, tc.want)
		}
	}
}
