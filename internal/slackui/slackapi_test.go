package slackui

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
)

// apiErrors reads bot_slack_api_errors_total{method, error} from reg.
func apiErrors(t *testing.T, reg *prometheus.Registry, method, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "compromised_slack_api_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["method"] == method && labels["error"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestSlackRetry: through the real slack-go client against slackfake, a 429 is waited out
// (Retry-After) and the call sent again, at most rateLimitRetries times, under the call's
// context; a Slack error is returned at once; every 429 and error is counted per method.
func TestSlackRetry(t *testing.T) {
	h := newHarness(t)
	reg := prometheus.NewRegistry()
	app, err := New(Config{BotToken: "xoxb-test", AppToken: "xapp-1-test", APIURL: h.fake.APIURL(),
		Logger: zerolog.New(zerolog.NewTestWriter(t))}, h.eng, h.store, NewChanges(), NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	api := app.api

	t.Run("429 waited out, posted once", func(t *testing.T) {
		t.Parallel()
		h.fake.RateLimit("chat.postMessage", 1, 1)
		start := time.Now()
		ts, err := api.post(h.ctx, hChan, "", "retry me", nil)
		if err != nil || ts == "" {
			t.Fatalf("post = %q, %v", ts, err)
		}
		if d := time.Since(start); d < 900*time.Millisecond {
			t.Errorf("retried after %s, before Retry-After (1 s)", d)
		}
		calls := h.fake.Calls("chat.postMessage")
		if len(calls) != 2 || calls[0].Error != "ratelimited" || calls[1].Error != "" {
			t.Errorf("calls %+v, want a 429 then a success", calls)
		}
		n := 0
		for _, m := range h.fake.Channel(hChan) {
			if m.Text == "retry me" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d messages posted, want 1", n)
		}
		if got := apiErrors(t, reg, "chat.postMessage", "ratelimited"); got != 1 {
			t.Errorf("ratelimited count %v, want 1", got)
		}
	})

	t.Run("at most rateLimitRetries", func(t *testing.T) {
		t.Parallel()
		h.fake.RateLimit("chat.getPermalink", rateLimitRetries+1, 1)
		_, err := api.permalink(h.ctx, hChan, "1.2")
		if code := slackCode(err); code != "ratelimited" {
			t.Fatalf("permalink after the retries = %v (%s), want ratelimited", err, code)
		}
		if n := len(h.fake.Calls("chat.getPermalink")); n != rateLimitRetries+1 {
			t.Errorf("%d calls, want %d", n, rateLimitRetries+1)
		}
		if got := apiErrors(t, reg, "chat.getPermalink", "ratelimited"); got != rateLimitRetries+1 {
			t.Errorf("ratelimited count %v, want %d (each 429)", got, rateLimitRetries+1)
		}
	})

	t.Run("the wait ends with the context", func(t *testing.T) {
		t.Parallel()
		h.fake.RateLimit("chat.update", 1, 30)
		ctx, cancel := context.WithTimeout(h.ctx, 200*time.Millisecond)
		defer cancel()
		err := api.update(ctx, hChan, "1.2", func(context.Context) (string, []slack.Block, error) { return "x", nil, nil })
		if code := slackCode(err); code != "canceled" {
			t.Fatalf("update = %v (%s), want canceled", err, code)
		}
		if n := len(h.fake.Calls("chat.update")); n != 1 {
			t.Errorf("%d calls, want 1", n)
		}
	})

	t.Run("Slack errors are not retried", func(t *testing.T) {
		t.Parallel()
		h.fake.FailMethod("chat.postEphemeral", "not_in_channel", 1)
		err := api.ephemeral(h.ctx, hChan, hAlice, "x", nil)
		if code := slackCode(err); code != "not_in_channel" {
			t.Fatalf("ephemeral = %v (%s), want not_in_channel", err, code)
		}
		if n := len(h.fake.Calls("chat.postEphemeral")); n != 1 {
			t.Errorf("%d calls, want 1", n)
		}
		if got := apiErrors(t, reg, "chat.postEphemeral", "not_in_channel"); got != 1 {
			t.Errorf("not_in_channel count %v, want 1", got)
		}
	})
}

// TestRetryMethodName: a retried request is counted under its Web API method, a response_url
// post as "response_url".
func TestRetryMethodName(t *testing.T) {
	h := countedRetry{apiURL: "https://slack.com/api/"}
	for url, want := range map[string]string{
		"https://slack.com/api/chat.update":                    "chat.update",
		"https://slack.com/api/conversations.info?channel=C1":  "conversations.info",
		"https://hooks.slack.com/actions/T1/123/abc":           "response_url",
		"https://slack.com/api/":                               "response_url",
		"https://slack.com/api/../actions/T1/1/x":              "response_url",
		"https://slack.com/apix/chat.update":                   "response_url",
		"https://slack.com/api/chat.update#frag":               "chat.update",
		"https://slack.com.evil.example/api/chat.postMessage":  "response_url",
		"https://slack.com/api/chat.postMessage/extra/segment": "response_url",
	} {
		req, err := http.NewRequest(http.MethodPost, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.method(req); got != want {
			t.Errorf("method(%s) = %q, want %q", url, got, want)
		}
	}
}
