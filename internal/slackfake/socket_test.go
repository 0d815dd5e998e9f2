package slackfake_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/compromised-responder/bot/internal/slackfake"
)

func TestHelloAndSlashCommand(t *testing.T) {
	fake := newFake(t)
	hellos := make(chan *socketmode.Request, 1)
	cmds := make(chan slack.SlashCommand, 1)
	runSocket(t, fake, func(h *socketmode.SocketmodeHandler) {
		h.Handle(socketmode.EventTypeHello, func(evt *socketmode.Event, _ *socketmode.Client) { hellos <- evt.Request })
		h.HandleSlashCommand("/compromised", func(evt *socketmode.Event, c *socketmode.Client) {
			cmds <- evt.Data.(slack.SlashCommand)
			_ = c.AckCtx(context.Background(), evt.Request.EnvelopeID, map[string]any{"text": "working on it"})
		})
	})
	hello := recv(t, hellos, "hello")
	if hello.NumConnections != 1 || hello.ConnectionInfo.AppID != "A0001" || hello.DebugInfo.Host == "" {
		t.Errorf("hello = %+v, want 1 connection, app A0001, a debug host", hello)
	}

	id, err := fake.SlashCommand(ctx5s(t), slackfake.SlashCommand{UserID: "U1", ChannelID: "C1", Text: "1001@acme.example stolen"})
	if err != nil {
		t.Fatal(err)
	}
	got := recv(t, cmds, "slash command")
	if !strings.HasPrefix(got.ResponseURL, fake.URL()+"/response/") || got.TriggerID == "" {
		t.Errorf("response_url %q / trigger_id %q: want a fake response_url and a trigger_id", got.ResponseURL, got.TriggerID)
	}
	got.ResponseURL, got.TriggerID = "", ""
	want := slack.SlashCommand{Token: "fake-verification-token", TeamID: "T0001", TeamDomain: "fake",
		ChannelID: "C1", ChannelName: "incident", UserID: "U1", UserName: "alice", Command: "/compromised",
		Text: "1001@acme.example stolen", APIAppID: "A0001"}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("slash command (-got +want):\n%s", d)
	}

	ack, err := fake.WaitAck(ctx5s(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Latency <= 0 || ack.Latency > 5*time.Second {
		t.Errorf("ack latency %v, want measured and small", ack.Latency)
	}
	if string(ack.Payload) != `{"text":"working on it"}` {
		t.Errorf("ack payload %s", ack.Payload)
	}
	// Slack shows an ack's message to the user who ran the command only.
	eph := fake.Ephemerals("U1")
	if len(eph) != 1 || eph[0].Method != "ack" || eph[0].Text != "working on it" || eph[0].Channel != "C1" {
		t.Errorf("ephemerals after ack = %+v", eph)
	}
}

// TestSlashCommandsBurst: a burst sent back to back reaches the client whole, each
// envelope its own id, each acked once, each ack's latency measured and its message shown.
func TestSlashCommandsBurst(t *testing.T) {
	fake := newFake(t)
	const n = 20
	cmds := make(chan slack.SlashCommand, n)
	runSocket(t, fake, func(h *socketmode.SocketmodeHandler) {
		h.HandleSlashCommand("/compromised", func(evt *socketmode.Event, c *socketmode.Client) {
			cmd := evt.Data.(slack.SlashCommand)
			cmds <- cmd
			_ = c.AckCtx(context.Background(), evt.Request.EnvelopeID, map[string]any{"text": "answer " + cmd.Text})
		})
	})
	burst := make([]slackfake.SlashCommand, n)
	for i := range burst {
		burst[i] = slackfake.SlashCommand{UserID: "U1", ChannelID: "C1", Text: fmt.Sprint(i)}
	}
	ids, err := fake.SlashCommands(ctx5s(t), burst)
	if err != nil || len(ids) != n {
		t.Fatalf("SlashCommands = %d ids, %v; want %d", len(ids), err, n)
	}
	seen := map[string]bool{}
	for i, id := range ids {
		if id == "" || seen[id] {
			t.Fatalf("envelope %d: id %q empty or repeated", i, id)
		}
		seen[id] = true
		ack, err := fake.WaitAck(ctx5s(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if ack.Latency <= 0 || ack.Latency > 5*time.Second || string(ack.Payload) != fmt.Sprintf(`{"text":"answer %d"}`, i) {
			t.Errorf("ack %d: latency %v, payload %s", i, ack.Latency, ack.Payload)
		}
	}
	// slack-go's handler runs commands concurrently, so they are checked as a set.
	texts := map[string]bool{}
	for range n {
		texts[recv(t, cmds, "slash command").Text] = true
	}
	for i := range n {
		if !texts[fmt.Sprint(i)] {
			t.Errorf("command %d never reached the client", i)
		}
	}
	if eph := fake.Ephemerals("U1"); len(eph) != n {
		t.Errorf("%d ack messages shown, want %d", len(eph), n)
	}
}

// cardBlocks is a small card with one actions block, as the bot renders it.
func cardBlocks(value string) []slack.Block {
	btn := slack.NewButtonBlockElement("step:deny", value, slack.NewTextBlockObject(slack.PlainTextType, "Deny all", false, false)).
		WithStyle(slack.StylePrimary)
	return []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*INC-1*", false, false), nil, nil),
		slack.NewActionBlock("steps_v1", btn),
	}
}

func TestClickReachesBlockActionHandler(t *testing.T) {
	fake := newFake(t)
	clicks := make(chan slack.InteractionCallback, 1)
	runSocket(t, fake, func(h *socketmode.SocketmodeHandler) {
		h.HandleInteractionBlockAction("step:deny", func(evt *socketmode.Event, c *socketmode.Client) {
			_ = c.AckCtx(context.Background(), evt.Request.EnvelopeID, nil)
			clicks <- evt.Data.(slack.InteractionCallback)
		})
	})
	api := newAPI(fake, "xoxb-test")
	_, ts, err := api.PostMessageContext(ctx5s(t), "C1", slack.MsgOptionText("INC-1", false), slack.MsgOptionBlocks(cardBlocks("INC-1")...))
	if err != nil {
		t.Fatal(err)
	}
	id, err := fake.Click(ctx5s(t), slackfake.Click{UserID: "U2", ChannelID: "C1", MessageTS: ts, ActionID: "step:deny"})
	if err != nil {
		t.Fatal(err)
	}
	cb := recv(t, clicks, "block action")
	if len(cb.ActionCallback.BlockActions) != 1 {
		t.Fatalf("block actions = %+v", cb.ActionCallback)
	}
	a := cb.ActionCallback.BlockActions[0]
	type view struct{ Type, User, Channel, ContainerTS, MessageTS, ActionID, BlockID, Value, Text string }
	got := view{string(cb.Type), cb.User.ID, cb.Channel.ID, cb.Container.MessageTs, cb.Message.Timestamp,
		a.ActionID, a.BlockID, a.Value, a.Text.Text}
	want := view{"block_actions", "U2", "C1", ts, ts, "step:deny", "steps_v1", "INC-1", "Deny all"}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("click (-got +want):\n%s", d)
	}
	if len(cb.Message.Blocks.BlockSet) != 2 || cb.ResponseURL == "" || cb.TriggerID == "" || a.ActionTs == "" {
		t.Errorf("message blocks %d, response_url %q, trigger %q, action_ts %q: want the card and all ids",
			len(cb.Message.Blocks.BlockSet), cb.ResponseURL, cb.TriggerID, a.ActionTs)
	}
	if _, err := fake.WaitAck(ctx5s(t), id); err != nil {
		t.Fatal(err)
	}

	// A button that the current version does not show cannot be clicked, unless stale.
	_, err = fake.Click(ctx5s(t), slackfake.Click{UserID: "U2", ChannelID: "C1", MessageTS: ts, ActionID: "step:nope"})
	if !errors.Is(err, slackfake.ErrNoSuchAction) {
		t.Errorf("click on a missing action: %v, want ErrNoSuchAction", err)
	}
	_, err = fake.Click(ctx5s(t), slackfake.Click{UserID: "U2", ChannelID: "C1", MessageTS: "1.2", ActionID: "step:deny"})
	if !errors.Is(err, slackfake.ErrNoSuchMessage) {
		t.Errorf("click on a missing message: %v, want ErrNoSuchMessage", err)
	}
	if _, err := fake.Click(ctx5s(t), slackfake.Click{UserID: "U2", ChannelID: "C1", MessageTS: ts, ActionID: "step:deny",
		BlockID: "steps_v0", Value: "INC-1", Stale: true}); err != nil {
		t.Fatal(err)
	}
	if cb := recv(t, clicks, "stale click"); cb.ActionCallback.BlockActions[0].BlockID != "steps_v0" {
		t.Errorf("stale click block_id %q, want steps_v0", cb.ActionCallback.BlockActions[0].BlockID)
	}
}

func TestReconnects(t *testing.T) {
	for _, tc := range []struct {
		name      string
		onlyTwice bool // exactly one reconnect
		fault     func(*testing.T, *slackfake.Server)
	}{
		{"disconnect refresh_requested", true, func(_ *testing.T, f *slackfake.Server) { f.Disconnect("refresh_requested") }},
		{"disconnect warning", true, func(_ *testing.T, f *slackfake.Server) { f.Disconnect("warning") }},
		{"dropped TCP", true, func(_ *testing.T, f *slackfake.Server) { f.DropSockets() }},
		{"pings stop", false, func(t *testing.T, f *slackfake.Server) {
			f.StopPings(true)
			// The watchdog drops the silent socket and slack-go opens a new link.
			waitFor(t, f, "a second connection", func(s *slackfake.Server) bool { return s.Connects() >= 2 })
			f.StopPings(false)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFake(t)
			cmds := make(chan string, 4)
			runSocket(t, fake, func(h *socketmode.SocketmodeHandler) {
				h.HandleSlashCommand("/compromised", func(evt *socketmode.Event, c *socketmode.Client) {
					_ = c.AckCtx(context.Background(), evt.Request.EnvelopeID, nil)
					cmds <- evt.Data.(slack.SlashCommand).Text
				})
			})
			tc.fault(t, fake)
			waitFor(t, fake, "a reconnect", func(s *slackfake.Server) bool { return s.Connects() >= 2 && s.LiveSockets() == 1 })
			id, err := fake.SlashCommand(ctx5s(t), slackfake.SlashCommand{UserID: "U1", ChannelID: "C1", Text: "after"})
			if err != nil {
				t.Fatal(err)
			}
			if got := recv(t, cmds, "command after reconnect"); got != "after" {
				t.Errorf("text %q", got)
			}
			if _, err := fake.WaitAck(ctx5s(t), id); err != nil {
				t.Fatal(err)
			}
			if n := fake.Opens(); n < 2 || (tc.onlyTwice && n != 2) {
				t.Errorf("Opens() = %d, want 2", n)
			}
		})
	}
}

func TestDuplicateDelivery(t *testing.T) {
	fake := newFake(t)
	ids := make(chan string, 4)
	runSocket(t, fake, func(h *socketmode.SocketmodeHandler) {
		h.HandleSlashCommand("/compromised", func(evt *socketmode.Event, c *socketmode.Client) {
			_ = c.AckCtx(context.Background(), evt.Request.EnvelopeID, nil)
			ids <- evt.Request.EnvelopeID + " " + evt.Data.(slack.SlashCommand).TriggerID
		})
	})
	env := json.RawMessage(`{"envelope_id":"dup-1","type":"slash_commands","accepts_response_payload":true,
		"payload":{"command":"/compromised","text":"x","user_id":"U1","channel_id":"C1",
		"is_enterprise_install":"false","trigger_id":"1.2.3"}}`)
	for range 2 {
		if err := fake.SendEnvelope(ctx5s(t), env); err != nil {
			t.Fatal(err)
		}
	}
	got := []string{recv(t, ids, "first delivery"), recv(t, ids, "second delivery")}
	if d := cmp.Diff(got, []string{"dup-1 1.2.3", "dup-1 1.2.3"}); d != "" {
		t.Errorf("deliveries (-got +want):\n%s", d)
	}
	waitFor(t, fake, "two acks", func(s *slackfake.Server) bool { return len(s.Acks()) == 2 })
}

func TestWrongAppTokenIsFatal(t *testing.T) {
	fake := newFake(t)
	api := slack.New("xoxb-test", slack.OptionAPIURL(fake.APIURL()), slack.OptionAppLevelToken("xapp-wrong"))
	sm := socketmode.New(api, socketmode.OptionPingInterval(clientPingInterval))
	go func() {
		for range sm.Events { //nolint:revive // drain so the client never blocks
		}
	}()
	err := sm.RunContext(ctx5s(t))
	if err == nil || err.Error() != "invalid_auth" {
		t.Errorf("RunContext = %v, want invalid_auth", err)
	}
	if fake.Opens() != 0 || fake.LiveSockets() != 0 {
		t.Errorf("opens %d, sockets %d after a refused token", fake.Opens(), fake.LiveSockets())
	}
}

// TestOversizedAckClosesSocket speaks the protocol by hand, since slack-go itself
// refuses to send an ack of 20 KiB or more.
func TestOversizedAckClosesSocket(t *testing.T) {
	fake := newFake(t)
	conn := dialRaw(t, fake)
	big := `{"envelope_id":"e1","payload":{"text":"` + strings.Repeat("x", 20480) + `"}}`
	if err := conn.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var err error
	for {
		_, _, err = conn.ReadMessage()
		if err != nil {
			break
		}
	}
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Errorf("read after a 20 KiB ack: %v, want close 1009", err)
	}
	if n := len(fake.Acks()); n != 0 {
		t.Errorf("%d acks recorded from an oversized frame", n)
	}
}

// TestAcksReadIntact: acks of every size up to Slack's limit, many more than one slab of the
// fake's reader holds (ackSlab), each recorded with the payload it was sent with, in order.
func TestAcksReadIntact(t *testing.T) {
	fake := newFake(t)
	conn := dialRaw(t, fake)
	const n = 150
	frame := func(i int) (id, text string) {
		id = fmt.Sprintf("e%03d", i)
		size := (i * 2741) % 20400 // 0 to 20399 bytes of text, in no order
		if i == n-1 {
			size = 20480 - len(`{"envelope_id":"e149","payload":{"text":""}}`) // exactly the limit
		}
		return id, strings.Repeat(string(rune('a'+i%26)), size)
	}
	for i := range n {
		id, text := frame(i)
		ack := `{"envelope_id":"` + id + `","payload":{"text":"` + text + `"}}`
		if err := conn.WriteMessage(websocket.TextMessage, []byte(ack)); err != nil {
			t.Fatalf("ack %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fake.WaitAcks(ctx, n); err != nil {
		t.Fatalf("%d of %d acks recorded: %v", fake.AckCount(), n, err)
	}
	for i, a := range fake.Acks() {
		id, text := frame(i)
		var p struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(a.Payload, &p); err != nil || a.EnvelopeID != id || p.Text != text {
			t.Fatalf("ack %d recorded as %s with %d bytes of text (%v), want %s with %d", i, a.EnvelopeID, len(p.Text), err, id, len(text))
		}
	}
}

// dialRaw opens a Socket Mode connection to fake by hand (apps.connections.open, the WebSocket,
// its hello), for what slack-go itself refuses to send.
func dialRaw(t *testing.T, fake *slackfake.Server) *websocket.Conn {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, fake.APIURL()+"apps.connections.open", nil)
	req.Header.Set("Authorization", "Bearer xapp-1-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var open struct {
		OK  bool   `json:"ok"`
		URL string `json:"url"`
	}
	err = json.NewDecoder(resp.Body).Decode(&open)
	_ = resp.Body.Close()
	if err != nil || !open.OK {
		t.Fatalf("apps.connections.open: %+v, %v", open, err)
	}
	conn, _, err := websocket.DefaultDialer.Dial(open.URL, http.Header{"Origin": {"https://api.slack.com"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, _, err := websocket.DefaultDialer.Dial(open.URL, nil); err == nil {
		t.Error("a ticket was accepted twice")
	}
	var hello struct {
		Type string `json:"type"`
	}
	if err := conn.ReadJSON(&hello); err != nil || hello.Type != "hello" {
		t.Fatalf("hello: %+v, %v", hello, err)
	}
	return conn
}

func TestSendEnvelopeWithoutSocket(t *testing.T) {
	fake := newFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := fake.SlashCommand(ctx, slackfake.SlashCommand{UserID: "U1", ChannelID: "C1"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SlashCommand with no socket: %v, want deadline exceeded", err)
	}
	fake.Close()
	if err := fake.WaitFor(context.Background(), func(*slackfake.Server) bool { return false }); !errors.Is(err, slackfake.ErrClosed) {
		t.Errorf("WaitFor on a closed server: %v, want ErrClosed", err)
	}
}

// BenchmarkSlashCommandAck measures one envelope → handler → ack round trip through
// the real slack-go client.
func BenchmarkSlashCommandAck(b *testing.B) {
	fake := newFake(b)
	runSocket(b, fake, func(h *socketmode.SocketmodeHandler) {
		h.HandleSlashCommand("/compromised", func(evt *socketmode.Event, c *socketmode.Client) {
			_ = c.AckCtx(context.Background(), evt.Request.EnvelopeID, nil)
		})
	})
	ctx := context.Background()
	for b.Loop() {
		id, err := fake.SlashCommand(ctx, slackfake.SlashCommand{UserID: "U1", ChannelID: "C1", Text: "status"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := fake.WaitAck(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}
