package slackui

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/slackfake"
)

// tap records each reply that passes it (status, Retry-After, body) and hands it on unchanged.
type tap struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []tapped
}

type tapped struct {
	status     int
	retryAfter string
	body       []byte
}

func (t *tap) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	t.mu.Lock()
	t.seen = append(t.seen, tapped{status: resp.StatusCode,
		retryAfter: resp.Header.Get("Retry-After"), body: body})
	t.mu.Unlock()
	return resp, nil
}

// replies returns what the tap saw, and forgets it.
func (t *tap) replies() []tapped {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.seen
	t.seen = nil
	return out
}

func members(t *testing.T, body []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("reply %s: %v", body, err)
	}
	return m
}

// TestEcholess: through the real slack-go client against slackfake, chat.postMessage and
// chat.update replies reach slack-go without the echoed message and with every other member as
// Slack sent it (so the ts, channel and text slack-go returns are the real ones); Slack errors,
// 429s with their Retry-After (still waited out and retried by slack-go) and other methods'
// replies reach slack-go unchanged.
func TestEcholess(t *testing.T) {
	fake := slackfake.Start(t, slackfake.Options{})
	fake.AddChannel(hChan, "incident", true)
	wire := &tap{next: http.DefaultTransport} // what Slack sent
	seen := &tap{next: echoless{next: wire, apiURL: fake.APIURL()}}
	c := slack.New("xoxb-test", slack.OptionAPIURL(fake.APIURL()),
		slack.OptionHTTPClient(&http.Client{Transport: seen}), retryOption(fake.APIURL(), NewMetrics(nil), nil))
	ctx := context.Background()

	// checkDropped: slack-go saw the wire reply less "message", and nothing else changed.
	checkDropped := func(t *testing.T) {
		t.Helper()
		w, s := wire.replies(), seen.replies()
		if len(w) != 1 || len(s) != 1 {
			t.Fatalf("%d replies on the wire, %d seen, want 1", len(w), len(s))
		}
		want := members(t, w[0].body)
		if _, ok := want["message"]; !ok {
			t.Fatalf("Slack's reply %s has no message: the test checks nothing", w[0].body)
		}
		delete(want, "message")
		got := members(t, s[0].body)
		if len(got) != len(want) {
			t.Errorf("slack-go saw %s, want %s less message", s[0].body, w[0].body)
		}
		for k, v := range want {
			if !bytes.Equal(got[k], v) {
				t.Errorf("member %s = %s, want %s", k, got[k], v)
			}
		}
	}

	t.Run("postMessage keeps ts and channel", func(t *testing.T) {
		ch, ts, err := c.PostMessageContext(ctx, hChan, slack.MsgOptionText("card", false),
			slack.MsgOptionBlocks(slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*card*", false, false), nil, nil)))
		if err != nil || ch != hChan || ts == "" {
			t.Fatalf("post = %q %q %v", ch, ts, err)
		}
		if m, ok := fake.Message(hChan, ts); !ok || m.Text != "card" {
			t.Errorf("message at %s = %+v, %v", ts, m, ok)
		}
		checkDropped(t)

		t.Run("update keeps ts, channel and text", func(t *testing.T) {
			ch2, ts2, text, err := c.UpdateMessageContext(ctx, hChan, ts, slack.MsgOptionText("card v2", false))
			if err != nil || ch2 != hChan || ts2 != ts || text != "card v2" {
				t.Fatalf("update = %q %q %q %v", ch2, ts2, text, err)
			}
			checkDropped(t)
		})
	})

	t.Run("Slack error unchanged", func(t *testing.T) {
		fake.FailMethod("chat.postMessage", "channel_not_found", 1)
		_, _, err := c.PostMessageContext(ctx, hChan, slack.MsgOptionText("x", false))
		if code := slackCode(err); code != "channel_not_found" {
			t.Fatalf("post = %v (%s), want channel_not_found", err, code)
		}
		w, s := wire.replies(), seen.replies()
		if len(w) != 1 || len(s) != 1 || !bytes.Equal(w[0].body, s[0].body) {
			t.Errorf("error reply changed: wire %+v, seen %+v", w, s)
		}
	})

	t.Run("429 and Retry-After unchanged, retried", func(t *testing.T) {
		fake.RateLimit("chat.update", 1, 1)
		_, ts, err := c.PostMessageContext(ctx, hChan, slack.MsgOptionText("y", false))
		if err != nil {
			t.Fatal(err)
		}
		wire.replies()
		seen.replies()
		if _, _, _, err := c.UpdateMessageContext(ctx, hChan, ts, slack.MsgOptionText("y2", false)); err != nil {
			t.Fatalf("update after a 429 = %v", err)
		}
		s := seen.replies()
		if len(s) != 2 || s[0].status != http.StatusTooManyRequests || s[0].retryAfter != "1" || s[1].status != http.StatusOK {
			t.Fatalf("slack-go saw %+v, want a 429 with Retry-After 1, then a 200", s)
		}
		if w := wire.replies(); !bytes.Equal(w[0].body, s[0].body) {
			t.Errorf("429 body changed: %s → %s", w[0].body, s[0].body)
		}
	})

	t.Run("other methods unchanged", func(t *testing.T) {
		_, ts, err := c.PostMessageContext(ctx, hChan, slack.MsgOptionText("z", false))
		if err != nil {
			t.Fatal(err)
		}
		wire.replies()
		seen.replies()
		if _, err := c.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: hChan, Ts: ts}); err != nil {
			t.Fatal(err)
		}
		w, s := wire.replies(), seen.replies()
		if len(w) != 1 || len(s) != 1 || !bytes.Equal(w[0].body, s[0].body) {
			t.Errorf("chat.getPermalink reply changed: wire %+v, seen %+v", w, s)
		}
	})
}
