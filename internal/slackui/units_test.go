package slackui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
)

// fakeGroups is a user-group directory that counts lookups.
type fakeGroups struct {
	members map[string][]string
	calls   int
	fail    bool
}

func (f *fakeGroups) groupMembers(_ context.Context, g string) ([]string, error) {
	f.calls++
	if f.fail {
		return nil, errors.New("no_such_subteam")
	}
	return f.members[g], nil
}

func TestAuthorizer(t *testing.T) {
	now := time.Date(2026, 3, 14, 2, 0, 0, 0, time.UTC)
	list := []string{"U1", "S1"}
	tests := []struct {
		name      string
		user      string
		fail      bool
		advance   time.Duration
		want      bool
		wantErr   bool
		wantCalls int // lookups so far, across the cases (the cache is shared)
	}{
		{"listed user", "U1", false, 0, true, false, 0},
		{"group member", "U2", false, 0, true, false, 1},
		{"cached group", "U2", false, 0, true, false, 1},
		{"nobody", "U9", false, 0, false, false, 1},
		{"empty user", "", false, 0, false, false, 1},
		{"cache expired", "U2", false, 2 * groupTTL, true, false, 2},
		{"lookup fails closed", "U3", true, 2 * groupTTL, false, true, 3},
	}
	g := &fakeGroups{members: map[string][]string{"S1": {"U2", "U3x"}}}
	a := newAuthorizer(g, func() time.Time { return now })
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now = now.Add(tc.advance)
			g.fail = tc.fail
			got, err := a.allowed(context.Background(), list, tc.user)
			if diff := cmp.Diff([]any{got, err != nil, g.calls}, []any{tc.want, tc.wantErr, tc.wantCalls}); diff != "" {
				t.Errorf("allowed, error, lookups (-got +want):\n%s", diff)
			}
		})
	}
}

// TestAuthorizerDecided: what the dispatcher may answer without asking Slack, and the refresh
// that keeps a group known.
func TestAuthorizerDecided(t *testing.T) {
	now := time.Date(2026, 3, 14, 2, 0, 0, 0, time.UTC)
	list := []string{"U1", "S1"}
	g := &fakeGroups{members: map[string][]string{"S1": {"U2"}}}
	a := newAuthorizer(g, func() time.Time { return now })
	type answer struct{ ok, known bool }
	decided := func(user string) answer { ok, known := a.decided(list, user); return answer{ok, known} }
	ctx := context.Background()
	steps := []struct {
		name string
		do   func()
		want map[string]answer
	}{
		{"cold cache", func() {}, map[string]answer{"U1": {true, true}, "U2": {false, false}, "U9": {false, false}, "": {false, true}}},
		{"refreshed", func() { a.refresh(ctx, 0, list, list) }, map[string]answer{"U2": {true, true}, "U9": {false, true}}},
		{"expired", func() { now = now.Add(groupTTL) }, map[string]answer{"U1": {true, true}, "U2": {false, false}}},
		{"refreshed again", func() { a.refresh(ctx, 0, list) }, map[string]answer{"U2": {true, true}}},
	}
	for _, st := range steps {
		st.do()
		for user, want := range st.want {
			if got := decided(user); got != want {
				t.Errorf("%s: decided(%q) = %+v, want %+v", st.name, user, got, want)
			}
		}
	}
	if g.calls != 2 {
		t.Errorf("%d lookups, want 2 (one per refresh, each group once)", g.calls)
	}
	a.refresh(ctx, time.Second, list) // fresh for another minute: nothing to do
	a.refresh(ctx, groupTTL, list)    // expires within the margin: looked up again
	if g.calls != 3 {
		t.Errorf("%d lookups after the margin refreshes, want 3", g.calls)
	}
}

func TestChangesCoalesceAndExclude(t *testing.T) {
	c := NewChanges()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, id := range []string{"A", "A", "B", "A"} {
		c.Changed(ctx, id)
	}
	first, _ := c.next(ctx)
	second, _ := c.next(ctx)
	if diff := cmp.Diff([]string{first, second}, []string{"A", "B"}); diff != "" {
		t.Fatalf("order (-got +want):\n%s", diff)
	}
	// A changes again while its sync runs: it is not handed out twice at once, but after done.
	c.Changed(ctx, "A")
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	if id, ok := c.next(short); ok {
		t.Fatalf("next handed out %s while A was still running", id)
	}
	cancelShort()
	c.done("A")
	if id, ok := c.next(ctx); !ok || id != "A" {
		t.Fatalf("after done, next = %q %v, want A", id, ok)
	}
	c.done("A")
	c.done("B")
	if !c.idle() {
		t.Error("not idle after every sync finished")
	}
}

func TestSlackCode(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{slack.SlackErrorResponse{Err: "not_in_channel"}, "not_in_channel"},
		{fmt.Errorf("post: %w", slack.SlackErrorResponse{Err: "channel_not_found"}), "channel_not_found"},
		{&slack.RateLimitedError{RetryAfter: time.Second}, "ratelimited"},
		{slack.StatusCodeError{Code: 404, Status: "404 Not Found"}, "http_404"},
		{context.Canceled, "canceled"},
		{errors.New("dial tcp: refused"), "transport"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := slackCode(tc.err); got != tc.want {
				t.Errorf("slackCode(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func TestMentionList(t *testing.T) {
	got := mentionList([]string{"U1", "S2"})
	if want := "<@U1>, <!subteam^S2>"; got != want {
		t.Errorf("mentionList = %q, want %q", got, want)
	}
}

// TestSlackLogIsJSON: slack-go's log lines come out as JSON through zerolog.
func TestSlackLogIsJSON(t *testing.T) {
	var buf bytes.Buffer
	l := slackLog{l: zerolog.New(&buf)}
	if err := l.Output(2, "socketmode: reconnecting\n"); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %q", buf.String())
	}
	if m["message"] != "socketmode: reconnecting" {
		t.Errorf("message = %v", m["message"])
	}
}

// TestJobLogLines: every line a job writes through a.logger(ctx) names its envelope, actor,
// incident and step (issue 12: job log lines carry incident, step and actor).
func TestJobLogLines(t *testing.T) {
	var buf bytes.Buffer
	a := &App{log: zerolog.New(&buf)}
	click := &slack.InteractionCallback{Type: slack.InteractionTypeBlockActions, User: slack.User{ID: "U0ALICE"},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: "step:deny", Value: "INC-7K2QXM"}}}}
	ctx := a.jobLogger(job{envelopeID: "e1", callback: click}).WithContext(context.Background())
	a.logger(ctx).Info().Msg("a job line")
	a.logErr(ctx, errors.New("boom"), "INC-7K2QXM", "step")
	a.logger(context.Background()).Info().Msg("not a job line")
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 3 {
		t.Fatalf("got %d lines: %s", len(lines), buf.String())
	}
	for _, l := range lines[:2] {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{"envelope": "e1", "actor": "U0ALICE", "incident": "INC-7K2QXM", "step": "deny"} {
			if m[k] != want {
				t.Errorf("line %s: %s = %v, want %s", l, k, m[k], want)
			}
		}
	}
	if bytes.Contains(lines[2], []byte("envelope")) {
		t.Errorf("a line outside a job has job fields: %s", lines[2])
	}
	cmd := &slack.SlashCommand{UserID: "U0BOB", Text: "1001@acme.example intl calls"}
	var buf2 bytes.Buffer
	a.log = zerolog.New(&buf2)
	ctx = a.jobLogger(job{envelopeID: "e2", command: cmd}).WithContext(context.Background())
	a.logger(ctx).Info().Msg("open")
	if !bytes.Contains(buf2.Bytes(), []byte(`"actor":"U0BOB"`)) || !bytes.Contains(buf2.Bytes(), []byte(`"user":"1001@acme.example"`)) {
		t.Errorf("open line: %s", buf2.String())
	}
}
