package slackfake_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/compromised-responder/bot/internal/slackfake"
)

// clientPingInterval is the slack-go watchdog used in these tests; the fake pings every
// fakePing, far more often.
const (
	clientPingInterval = 400 * time.Millisecond
	fakePing           = 50 * time.Millisecond
)

// newFake starts a fake with a small workspace: alice (U1), bob (U2), #incident (C1,
// bot is a member), #random (C2, bot is not), an IM with alice (D1), group S1.
func newFake(t testing.TB) *slackfake.Server {
	t.Helper()
	level := zerolog.DebugLevel
	if _, bench := t.(*testing.B); bench {
		level = zerolog.WarnLevel // a debug line per envelope would drown the benchmark output
	}
	fake := slackfake.Start(t, slackfake.Options{PingInterval: fakePing, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(level)})
	fake.AddUser("U1", "alice")
	fake.AddUser("U2", "bob")
	fake.AddChannel("C1", "incident", true)
	fake.AddChannel("C2", "random", false)
	fake.AddIM("D1", "U1")
	fake.AddUserGroup("S1", "U1", "U2")
	return fake
}

// newAPI is the unmodified slack-go Web API client pointed at the fake.
func newAPI(fake *slackfake.Server, botToken string) *slack.Client {
	return slack.New(botToken, slack.OptionAPIURL(fake.APIURL()), slack.OptionAppLevelToken("xapp-1-test"))
}

// runSocket runs an unmodified socketmode client with the handlers register adds, and
// waits until its socket is live. It is stopped at the end of the test.
func runSocket(t testing.TB, fake *slackfake.Server, register func(*socketmode.SocketmodeHandler)) *socketmode.Client {
	t.Helper()
	sm := socketmode.New(newAPI(fake, "xoxb-test"), socketmode.OptionPingInterval(clientPingInterval))
	h := socketmode.NewSocketmodeHandler(sm)
	// The stock Default handler prints every unhandled event to stderr.
	h.HandleDefault(func(*socketmode.Event, *socketmode.Client) {})
	if register != nil {
		register(h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.RunEventLoopContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitFor(t, fake, "a live socket", func(s *slackfake.Server) bool { return s.LiveSockets() == 1 })
	return sm
}

// waitFor fails the test when cond does not hold within 5 s.
func waitFor(t testing.TB, fake *slackfake.Server, what string, cond func(*slackfake.Server) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fake.WaitFor(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func ctx5s(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// recv receives one value or fails the test after 5 s.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
