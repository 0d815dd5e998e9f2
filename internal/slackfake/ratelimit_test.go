package slackfake_test

import (
	"errors"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/slackfake"
)

// slow is a limit that refills one call a minute, so a test never sees a token come back.
func slow(burst int, perChannel bool) slackfake.Limit {
	return slackfake.Limit{PerMinute: 1, Burst: burst, PerChannel: perChannel}
}

func post(t *testing.T, api *slack.Client, channel string) error {
	t.Helper()
	_, _, err := api.PostMessageContext(ctx5s(t), channel, slack.MsgOptionText("hi", false))
	return err
}

// rateLimited returns the Retry-After of a 429 as slack-go reports it, or fails the test.
func rateLimited(t *testing.T, err error, what string) time.Duration {
	t.Helper()
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) {
		t.Fatalf("%s: %v, want *slack.RateLimitedError", what, err)
	}
	return rl.RetryAfter
}

func TestRateLimitModeOffByDefault(t *testing.T) {
	fake := newFake(t)
	api := newAPI(fake, "xoxb-test")
	for i := range 10 {
		if err := post(t, api, "C1"); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	if got := fake.Stat("chat.postMessage"); got != (slackfake.MethodStats{Calls: 10}) {
		t.Errorf("stats %+v, want 10 calls and no 429", got)
	}
}

func TestRateLimitPerChannel(t *testing.T) {
	fake := newFake(t)
	fake.SetRateLimits(map[string]slackfake.Limit{"chat.postMessage": slow(2, true)})
	api := newAPI(fake, "xoxb-test")
	for i := range 2 {
		if err := post(t, api, "C1"); err != nil {
			t.Fatalf("post %d within the burst: %v", i, err)
		}
	}
	ra := rateLimited(t, post(t, api, "C1"), "third post in C1")
	if ra <= 0 || ra > time.Minute {
		t.Errorf("Retry-After %s, want the seconds until the next token (≤ 60 s)", ra)
	}
	// Another channel has its own bucket.
	if err := post(t, api, "D1"); err != nil {
		t.Errorf("post in D1 while C1 is limited: %v", err)
	}
	// The refused post did nothing and took no token: still limited, still 2 messages.
	rateLimited(t, post(t, api, "C1"), "fourth post in C1")
	if n := len(fake.Channel("C1")); n != 2 {
		t.Errorf("C1 holds %d messages, want the 2 that passed", n)
	}
	if got := fake.Stat("chat.postMessage"); got != (slackfake.MethodStats{Calls: 5, RateLimited: 2}) {
		t.Errorf("stats %+v, want 5 calls, 2 of them 429", got)
	}
	// Turning the mode off lets the channel post again.
	fake.SetRateLimits(nil)
	if err := post(t, api, "C1"); err != nil {
		t.Errorf("post after SetRateLimits(nil): %v", err)
	}
}

func TestRateLimitPerWorkspace(t *testing.T) {
	fake := slackfake.Start(t, slackfake.Options{RateLimits: map[string]slackfake.Limit{"chat.update": slow(1, false)}})
	fake.AddChannel("C1", "incident", true)
	fake.AddChannel("C3", "other", true)
	api := newAPI(fake, "xoxb-test")
	_, ts1, err := api.PostMessageContext(ctx5s(t), "C1", slack.MsgOptionText("one", false))
	if err != nil {
		t.Fatal(err)
	}
	_, ts3, err := api.PostMessageContext(ctx5s(t), "C3", slack.MsgOptionText("three", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx5s(t), "C1", ts1, slack.MsgOptionText("one'", false)); err != nil {
		t.Fatalf("first update: %v", err)
	}
	// A tiered method is limited per workspace: another channel's message shares the bucket.
	_, _, _, err = api.UpdateMessageContext(ctx5s(t), "C3", ts3, slack.MsgOptionText("three'", false))
	rateLimited(t, err, "second update, other channel")
	if m, _ := fake.Message("C3", ts3); m.Text != "three" {
		t.Errorf("a refused update changed the message: %q", m.Text)
	}
	stats := fake.Stats()
	if stats["chat.update"] != (slackfake.MethodStats{Calls: 2, RateLimited: 1}) ||
		stats["chat.postMessage"] != (slackfake.MethodStats{Calls: 2}) {
		t.Errorf("stats %+v", stats)
	}
}

// TestSlackLimits posts a burst into one channel under Slack's own limits: the burst passes, the
// rest is refused with Retry-After 1 s (one message per second per channel), and the passes never
// exceed the burst plus one per elapsed second.
func TestSlackLimits(t *testing.T) {
	fake := slackfake.Start(t, slackfake.Options{RateLimits: slackfake.SlackLimits()})
	fake.AddChannel("C1", "incident", true)
	fake.AddUser("U1", "alice")
	api := newAPI(fake, "xoxb-test")
	start := time.Now()
	passed, limited := 0, 0
	for range 20 {
		err := post(t, api, "C1")
		if err == nil {
			passed++
			continue
		}
		if ra := rateLimited(t, err, "post"); ra != time.Second {
			t.Errorf("Retry-After %s, want 1s at one message per second", ra)
		}
		limited++
	}
	elapsed := time.Since(start)
	if passed < slackfake.PostMessageBurst || limited == 0 {
		t.Errorf("%d passed, %d refused: want the burst of %d to pass and the rest refused", passed, limited, slackfake.PostMessageBurst)
	}
	if most := slackfake.PostMessageBurst + int(elapsed/time.Second) + 1; passed > most {
		t.Errorf("%d posts passed in %s, want at most %d", passed, elapsed, most)
	}
	// chat.postEphemeral is Tier 4: 20 at once is well within its burst.
	for i := range 20 {
		if _, err := api.PostEphemeralContext(ctx5s(t), "C1", "U1", slack.MsgOptionText("psst", false)); err != nil {
			t.Fatalf("ephemeral %d: %v", i, err)
		}
	}
	if got := fake.Stat("chat.postEphemeral"); got.RateLimited != 0 || got.Calls != 20 {
		t.Errorf("ephemeral stats %+v", got)
	}
}

func TestStatsCountInjectedRateLimits(t *testing.T) {
	fake := newFake(t)
	api := newAPI(fake, "xoxb-test")
	fake.RateLimit("chat.postMessage", 2, 1)
	for range 3 {
		_ = post(t, api, "C1")
	}
	if got := fake.Stat("chat.postMessage"); got != (slackfake.MethodStats{Calls: 3, RateLimited: 2}) {
		t.Errorf("stats %+v, want 3 calls, 2 of them 429", got)
	}
}

func TestMessagesSince(t *testing.T) {
	fake := newFake(t)
	api := newAPI(fake, "xoxb-test")
	for range 3 {
		if err := post(t, api, "C1"); err != nil {
			t.Fatal(err)
		}
	}
	all := fake.Messages()
	if got := fake.MessagesSince(1); len(got) != 2 || got[0].TS != all[1].TS || got[1].TS != all[2].TS {
		t.Errorf("MessagesSince(1) = %+v, want the last 2 of %+v", got, all)
	}
	if got := fake.MessagesSince(3); got != nil {
		t.Errorf("MessagesSince(3) = %+v, want none", got)
	}
}

// TestRetryAfterIsHonoured: slack-go's own 429 retry waits out the fake's Retry-After and the post
// then passes, once.
func TestRetryAfterIsHonoured(t *testing.T) {
	fake := slackfake.Start(t, slackfake.Options{RateLimits: map[string]slackfake.Limit{
		"chat.postMessage": {PerMinute: 60, Burst: 1, PerChannel: true}}})
	fake.AddChannel("C1", "incident", true)
	api := slack.New("xoxb-test", slack.OptionAPIURL(fake.APIURL()), slack.OptionRetry(3))
	for i := range 2 {
		if err := post(t, api, "C1"); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	if got := fake.Stat("chat.postMessage"); got.Calls != 3 || got.RateLimited != 1 || len(fake.Channel("C1")) != 2 {
		t.Errorf("stats %+v and %d messages: want the second post refused once, then posted", got, len(fake.Channel("C1")))
	}
}
