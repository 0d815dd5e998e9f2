package slackfake_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/compromised-responder/bot/internal/slackfake"
	"github.com/compromised-responder/bot/internal/testenv"
)

var ignoreAt = cmpopts.IgnoreFields(slackfake.Message{}, "At")

func TestRateLimited(t *testing.T) {
	fake := newFake(t)
	api := newAPI(fake, "xoxb-test")
	fake.RateLimit("chat.postMessage", 1, 7)
	_, _, err := api.PostMessageContext(ctx5s(t), "C1", slack.MsgOptionText("hi", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
		t.Fatalf("first post: %v, want *slack.RateLimitedError after 7s", err)
	}
	if _, _, err := api.PostMessageContext(ctx5s(t), "C1", slack.MsgOptionText("hi", false)); err != nil {
		t.Fatalf("second post: %v", err)
	}
	calls := fake.Calls("chat.postMessage")
	got := []string{calls[0].Error, calls[1].Error}
	if d := cmp.Diff(got, []string{"ratelimited", ""}); d != "" {
		t.Errorf("recorded errors (-got +want):\n%s", d)
	}
	if calls[1].Form.Get("token") != "REDACTED" || calls[1].Form.Get("text") != "hi" {
		t.Errorf("recorded form %v: want the token redacted and the text kept", calls[1].Form)
	}
}

// slackErr is the Slack error code of err, or its text.
func slackErr(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	if err == nil {
		return ""
	}
	return "other: " + err.Error()
}

func TestWebAPIErrors(t *testing.T) {
	fake := newFake(t)
	api := newAPI(fake, "xoxb-test")
	_, root, err := api.PostMessageContext(ctx5s(t), "C1", slack.MsgOptionText("root", false))
	if err != nil {
		t.Fatal(err)
	}
	tooMany := make([]slack.Block, 51)
	for i := range tooMany {
		tooMany[i] = slack.NewDividerBlock()
	}
	for _, tc := range []struct {
		name string
		call func(ctx context.Context) error
		want string
	}{
		{"not in channel", func(ctx context.Context) error {
			_, _, err := api.PostMessageContext(ctx, "C2", slack.MsgOptionText("x", false))
			return err
		}, "not_in_channel"},
		{"unknown channel", func(ctx context.Context) error {
			_, _, err := api.PostMessageContext(ctx, "C404", slack.MsgOptionText("x", false))
			return err
		}, "channel_not_found"},
		{"no text", func(ctx context.Context) error {
			_, _, err := api.PostMessageContext(ctx, "C1")
			return err
		}, "no_text"},
		{"51 blocks", func(ctx context.Context) error {
			_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false), slack.MsgOptionBlocks(tooMany...))
			return err
		}, "invalid_blocks"},
		{"update unknown message", func(ctx context.Context) error {
			_, _, _, err := api.UpdateMessageContext(ctx, "C1", "1.1", slack.MsgOptionText("x", false))
			return err
		}, "message_not_found"},
		{"injected failure", func(ctx context.Context) error {
			fake.FailMethod("chat.update", "cant_update_message", 1)
			_, _, _, err := api.UpdateMessageContext(ctx, "C1", root, slack.MsgOptionText("x", false))
			return err
		}, "cant_update_message"},
		{"ephemeral to unknown user", func(ctx context.Context) error {
			_, err := api.PostEphemeralContext(ctx, "C1", "U404", slack.MsgOptionText("x", false))
			return err
		}, "user_not_found"},
		{"unknown user", func(ctx context.Context) error {
			_, err := api.GetUserInfoContext(ctx, "U404")
			return err
		}, "user_not_found"},
		{"unknown group", func(ctx context.Context) error {
			_, err := api.GetUserGroupMembersContext(ctx, "S404")
			return err
		}, "no_such_subteam"},
		{"wrong bot token", func(ctx context.Context) error {
			_, err := newAPI(fake, "xoxb-wrong").AuthTestContext(ctx)
			return err
		}, "invalid_auth"},
		{"app token on a bot method", func(ctx context.Context) error {
			_, err := newAPI(fake, "xapp-1-test").AuthTestContext(ctx)
			return err
		}, "invalid_auth"},
		{"views.open with an unknown trigger", func(ctx context.Context) error {
			_, err := api.OpenViewContext(ctx, "9.9.9", slack.ModalViewRequest{Type: slack.VTModal,
				Title: slack.NewTextBlockObject(slack.PlainTextType, "t", false, false)})
			return err
		}, "invalid_trigger_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := slackErr(tc.call(ctx5s(t))); got != tc.want {
				t.Errorf("error %q, want %q", got, tc.want)
			}
		})
	}
	if got := fake.Calls("chat.postMessage"); got[len(got)-1].Error != "invalid_blocks" {
		t.Errorf("last postMessage recorded error %q", got[len(got)-1].Error)
	}
}

func TestInvalidBlocksDetails(t *testing.T) {
	fake := newFake(t)
	api := newAPI(fake, "xoxb-test")
	long := strings.Repeat("x", 3001)
	_, _, err := api.PostMessageContext(ctx5s(t), "C1", slack.MsgOptionText("x", false),
		slack.MsgOptionBlocks(slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, long, false, false), nil, nil)))
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		t.Fatalf("post: %v, want a SlackErrorResponse", err)
	}
	want := []string{"[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"}
	if d := cmp.Diff(se.ResponseMetadata.Messages, want); d != "" {
		t.Errorf("response_metadata.messages (-got +want):\n%s", d)
	}
}

func TestUnknownMethodAndMissingToken(t *testing.T) {
	fake := newFake(t)
	for _, tc := range []struct{ method, body, want string }{
		{"chat.scheduleMessage", "token=xoxb-test", "unknown_method"},
		{"auth.test", "", "not_authed"},
	} {
		resp, err := http.Post(fake.APIURL()+tc.method, "application/x-www-form-urlencoded", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		_ = resp.Body.Close()
		if body.OK || body.Error != tc.want {
			t.Errorf("%s: %+v, want error %s", tc.method, body, tc.want)
		}
	}
}

func TestWorkspaceReads(t *testing.T) {
	fake := newFake(t)
	api := newAPI(fake, "xoxb-test")
	ctx := ctx5s(t)
	auth, err := api.AuthTestContext(ctx)
	if err != nil || auth.UserID != "U0BOT" || auth.TeamID != "T0001" || auth.BotID != "B0001" {
		t.Errorf("auth.test = %+v, %v", auth, err)
	}
	u, err := api.GetUserInfoContext(ctx, "U1")
	if err != nil || u.ID != "U1" || u.Name != "alice" || u.Profile.DisplayName != "alice" || u.IsBot {
		t.Errorf("users.info = %+v, %v", u, err)
	}
	members, err := api.GetUserGroupMembersContext(ctx, "S1")
	if d := cmp.Diff(members, []string{"U1", "U2"}); err != nil || d != "" {
		t.Errorf("usergroups.users.list: %v (-got +want):\n%s", err, d)
	}
	type info struct {
		ID, Name              string
		Channel, IM, IsMember bool
		User                  string
	}
	for _, tc := range []struct {
		id   string
		want info
	}{
		{"C1", info{ID: "C1", Name: "incident", Channel: true, IsMember: true}},
		{"C2", info{ID: "C2", Name: "random", Channel: true}},
		{"D1", info{ID: "D1", IM: true, IsMember: true, User: "U1"}},
	} {
		ch, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: tc.id})
		if err != nil {
			t.Fatal(err)
		}
		got := info{ch.ID, ch.Name, ch.IsChannel, ch.IsIM, ch.IsMember, ch.User}
		if d := cmp.Diff(got, tc.want); d != "" {
			t.Errorf("conversations.info %s (-got +want):\n%s", tc.id, d)
		}
	}
	if _, _, _, err := api.JoinConversationContext(ctx, "C2"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C2", slack.MsgOptionText("joined", false)); err != nil {
		t.Errorf("post after conversations.join: %v", err)
	}
}

func TestMessageRecording(t *testing.T) {
	fake := newFake(t)
	api := newAPI(fake, "xoxb-test")
	ctx := ctx5s(t)
	_, root, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("card v1", false), slack.MsgOptionBlocks(cardBlocks("INC-1")...))
	if err != nil {
		t.Fatal(err)
	}
	_, reply, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("audit 1", false), slack.MsgOptionTS(root))
	if err != nil {
		t.Fatal(err)
	}
	_, reply2, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("audit 2", false), slack.MsgOptionTS(reply))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", root, slack.MsgOptionText("card v2", false)); err != nil {
		t.Fatal(err)
	}
	eph, err := api.PostEphemeralContext(ctx, "C1", "U1", slack.MsgOptionText("secret for alice", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.DeleteMessageContext(ctx, "C1", reply2); err != nil {
		t.Fatal(err)
	}
	if !(root < reply && reply < eph) {
		t.Errorf("ts not monotonic: %s %s %s", root, reply, eph)
	}

	blocks := fake.Calls("chat.postMessage")[0].Form.Get("blocks")
	wantRoot := slackfake.Message{Method: "chat.update", Channel: "C1", TS: root, Text: "card v2", Blocks: json.RawMessage(blocks)}
	got, ok := fake.Message("C1", root)
	if d := cmp.Diff(got, wantRoot, ignoreAt); !ok || d != "" {
		t.Errorf("Message(root) (-got +want):\n%s", d)
	}
	wantReply := slackfake.Message{Method: "chat.postMessage", Channel: "C1", TS: reply, ThreadTS: root, Text: "audit 1"}
	if d := cmp.Diff(fake.Channel("C1"), []slackfake.Message{wantRoot, wantReply}, ignoreAt); d != "" {
		t.Errorf("Channel (-got +want):\n%s", d)
	}
	if d := cmp.Diff(fake.Thread("C1", root), []slackfake.Message{wantReply}, ignoreAt); d != "" {
		t.Errorf("Thread (-got +want):\n%s", d)
	}
	wantEph := slackfake.Message{Method: "chat.postEphemeral", Channel: "C1", TS: eph, User: "U1", Text: "secret for alice"}
	if d := cmp.Diff(fake.Ephemerals("U1"), []slackfake.Message{wantEph}, ignoreAt); d != "" {
		t.Errorf("Ephemerals (-got +want):\n%s", d)
	}
	var methods []string
	for _, m := range fake.Messages() {
		methods = append(methods, m.Method+" "+m.Text)
	}
	want := []string{"chat.postMessage card v1", "chat.postMessage audit 1", "chat.postMessage audit 2",
		"chat.update card v2", "chat.postEphemeral secret for alice", "chat.delete "}
	if d := cmp.Diff(methods, want); d != "" {
		t.Errorf("Messages (-got +want):\n%s", d)
	}
	// The second reply was threaded under the root, not under the first reply.
	for _, m := range fake.Messages() {
		if m.TS == reply2 && m.ThreadTS != root {
			t.Errorf("reply to a reply has thread_ts %q, want the root %q", m.ThreadTS, root)
		}
	}
}

// TestGetPermalink: links like Slack's for a message and a thread reply; ephemeral, deleted and
// unknown messages are message_not_found, an unknown channel channel_not_found.
func TestGetPermalink(t *testing.T) {
	fake := newFake(t)
	api := newAPI(fake, "xoxb-test")
	ctx := ctx5s(t)
	_, root, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("card", false))
	if err != nil {
		t.Fatal(err)
	}
	_, reply, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("audit", false), slack.MsgOptionTS(root))
	if err != nil {
		t.Fatal(err)
	}
	eph, err := api.PostEphemeralContext(ctx, "C1", "U1", slack.MsgOptionText("secret", false))
	if err != nil {
		t.Fatal(err)
	}
	link := func(ch, ts string) (string, error) {
		return api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: ch, Ts: ts})
	}
	got, err := link("C1", root)
	if want := "https://fake.slack.com/archives/C1/p" + strings.Replace(root, ".", "", 1); err != nil || got != want {
		t.Errorf("permalink of the root = %q, %v; want %q", got, err, want)
	}
	got, err = link("C1", reply)
	if want := "?thread_ts=" + root + "&cid=C1"; err != nil || !strings.HasSuffix(got, want) {
		t.Errorf("permalink of a reply = %q, %v; want it to end in %q", got, err, want)
	}
	if _, _, err := api.DeleteMessageContext(ctx, "C1", reply); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ch, ts, code string }{
		{"C1", eph, "message_not_found"}, {"C1", reply, "message_not_found"}, {"C1", "1.000001", "message_not_found"},
		{"C404", root, "channel_not_found"},
	} {
		if _, err := link(tc.ch, tc.ts); err == nil || err.Error() != tc.code {
			t.Errorf("permalink %s/%s: %v, want %s", tc.ch, tc.ts, err, tc.code)
		}
	}
}

func TestResponseURLs(t *testing.T) {
	fake := newFake(t)
	urls := make(chan string, 2)
	runSocket(t, fake, func(h *socketmode.SocketmodeHandler) {
		h.HandleInteractionBlockAction("step:deny", func(evt *socketmode.Event, c *socketmode.Client) {
			_ = c.AckCtx(context.Background(), evt.Request.EnvelopeID, nil)
			urls <- evt.Data.(slack.InteractionCallback).ResponseURL
		})
		h.HandleSlashCommand("/compromised", func(evt *socketmode.Event, c *socketmode.Client) {
			_ = c.AckCtx(context.Background(), evt.Request.EnvelopeID, nil)
			urls <- evt.Data.(slack.SlashCommand).ResponseURL
		})
	})
	api := newAPI(fake, "xoxb-test")
	ctx := ctx5s(t)
	_, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("card", false), slack.MsgOptionBlocks(cardBlocks("INC-1")...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fake.Click(ctx, slackfake.Click{UserID: "U1", ChannelID: "C1", MessageTS: ts, ActionID: "step:deny"}); err != nil {
		t.Fatal(err)
	}
	clickURL := recv(t, urls, "click response_url")
	if _, _, err := api.PostMessageContext(ctx, "", slack.MsgOptionText("replaced", false), slack.MsgOptionReplaceOriginal(clickURL)); err != nil {
		t.Fatalf("replace_original: %v", err)
	}
	if got, _ := fake.Message("C1", ts); got.Text != "replaced" || got.Blocks != nil {
		t.Errorf("after replace_original the card is %+v", got)
	}
	if _, err := fake.SlashCommand(ctx, slackfake.SlashCommand{UserID: "U2", ChannelID: "C2", Text: "help"}); err != nil {
		t.Fatal(err)
	}
	cmdURL := recv(t, urls, "command response_url")
	if _, _, err := api.PostMessageContext(ctx, "", slack.MsgOptionText("usage", false),
		slack.MsgOptionResponseURL(cmdURL, slack.ResponseTypeEphemeral)); err != nil {
		t.Fatalf("ephemeral response: %v", err)
	}
	eph := fake.Ephemerals("U2")
	if len(eph) != 1 || eph[0].Method != "response_url" || eph[0].Channel != "C2" || eph[0].Text != "usage" {
		t.Errorf("ephemerals of bob = %+v", eph)
	}

	fake.ExpireResponseURLs(true)
	_, _, err = api.PostMessageContext(ctx, "", slack.MsgOptionText("late", false), slack.MsgOptionResponseURL(cmdURL, slack.ResponseTypeEphemeral))
	var sce slack.StatusCodeError
	if !errors.As(err, &sce) || sce.Code != http.StatusNotFound {
		t.Errorf("post to an expired response_url: %v, want StatusCodeError 404", err)
	}
}

func TestViewsOpenAndSubmit(t *testing.T) {
	fake := newFake(t)
	triggers := make(chan string, 1)
	submits := make(chan slack.InteractionCallback, 1)
	runSocket(t, fake, func(h *socketmode.SocketmodeHandler) {
		h.HandleSlashCommand("/compromised", func(evt *socketmode.Event, c *socketmode.Client) {
			_ = c.AckCtx(context.Background(), evt.Request.EnvelopeID, nil)
			triggers <- evt.Data.(slack.SlashCommand).TriggerID
		})
		h.HandleViewSubmission("reason", func(evt *socketmode.Event, c *socketmode.Client) {
			_ = c.AckCtx(context.Background(), evt.Request.EnvelopeID,
				slack.NewErrorsViewSubmissionResponse(map[string]string{"reason_b": "too short"}))
			submits <- evt.Data.(slack.InteractionCallback)
		})
	})
	if _, err := fake.SlashCommand(ctx5s(t), slackfake.SlashCommand{UserID: "U1", ChannelID: "C1"}); err != nil {
		t.Fatal(err)
	}
	trigger := recv(t, triggers, "trigger_id")
	api := newAPI(fake, "xoxb-test")
	input := slack.NewInputBlock("reason_b", slack.NewTextBlockObject(slack.PlainTextType, "Reason", false, false), nil,
		slack.NewPlainTextInputBlockElement(nil, "reason_a"))
	view := slack.ModalViewRequest{Type: slack.VTModal, CallbackID: "reason", PrivateMetadata: "INC-1",
		Title:  slack.NewTextBlockObject(slack.PlainTextType, "Reason", false, false),
		Submit: slack.NewTextBlockObject(slack.PlainTextType, "Send", false, false),
		Blocks: slack.Blocks{BlockSet: []slack.Block{input}}}
	resp, err := api.OpenViewContext(ctx5s(t), trigger, view)
	if err != nil || resp.View.ID == "" || resp.View.CallbackID != "reason" || resp.View.PrivateMetadata != "INC-1" {
		t.Fatalf("views.open = %+v, %v", resp, err)
	}
	if _, err := api.OpenViewContext(ctx5s(t), trigger, view); slackErr(err) != "exchanged_trigger_id" {
		t.Errorf("second views.open: %v, want exchanged_trigger_id", err)
	}
	call := fake.Calls("views.open")[0]
	var body struct {
		TriggerID string `json:"trigger_id"`
	}
	if err := json.Unmarshal(call.JSON, &body); err != nil || body.TriggerID != trigger {
		t.Errorf("recorded JSON %s", call.JSON)
	}

	id, err := fake.SubmitView(ctx5s(t), slackfake.ViewSubmission{
		Values: map[string]map[string]string{"reason_b": {"reason_a": "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	cb := recv(t, submits, "view submission")
	got := []string{cb.User.ID, cb.View.ID, cb.View.CallbackID, cb.View.PrivateMetadata, cb.View.State.Values["reason_b"]["reason_a"].Value}
	if d := cmp.Diff(got, []string{"U1", resp.View.ID, "reason", "INC-1", "x"}); d != "" {
		t.Errorf("submission (-got +want):\n%s", d)
	}
	ack, err := fake.WaitAck(ctx5s(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(string(ack.Payload), `{"response_action":"errors","errors":{"reason_b":"too short"}}`); d != "" {
		t.Errorf("ack payload (-got +want):\n%s", d)
	}
	if _, err := fake.SubmitView(ctx5s(t), slackfake.ViewSubmission{ViewID: "V404"}); !errors.Is(err, slackfake.ErrNoSuchView) {
		t.Errorf("submit unknown view: %v", err)
	}
}

func TestTextFallback(t *testing.T) {
	for _, tc := range []struct {
		strict bool
		want   string
	}{{false, ""}, {true, "no_text"}} {
		fake := slackfake.Start(t, slackfake.Options{RequireTextFallback: tc.strict})
		fake.AddChannel("C1", "incident", true)
		form := url.Values{"token": {"xoxb-test"}, "channel": {"C1"}, "blocks": {`[{"type":"divider"}]`}}
		resp, err := http.PostForm(fake.APIURL()+"chat.postMessage", form)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		var body struct {
			Error, Warning string
		}
		_ = json.Unmarshal(b, &body)
		if body.Error != tc.want || (!tc.strict && body.Warning != "missing_text_fallback") {
			t.Errorf("strict=%v: %s", tc.strict, b)
		}
	}
}

func TestEphemeralClick(t *testing.T) {
	fake := newFake(t)
	clicks := make(chan slack.InteractionCallback, 1)
	runSocket(t, fake, func(h *socketmode.SocketmodeHandler) {
		h.HandleInteractionBlockAction("step:deny", func(evt *socketmode.Event, c *socketmode.Client) {
			_ = c.AckCtx(context.Background(), evt.Request.EnvelopeID, nil)
			clicks <- evt.Data.(slack.InteractionCallback)
		})
	})
	api := newAPI(fake, "xoxb-test")
	ctx := ctx5s(t)
	ts, err := api.PostEphemeralContext(ctx, "C1", "U1", slack.MsgOptionText("confirm?", false), slack.MsgOptionBlocks(cardBlocks("INC-1")...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fake.Click(ctx, slackfake.Click{UserID: "U2", ChannelID: "C1", MessageTS: ts, ActionID: "step:deny"}); !errors.Is(err, slackfake.ErrNoSuchMessage) {
		t.Errorf("bob clicking alice's ephemeral: %v, want ErrNoSuchMessage", err)
	}
	if _, err := fake.Click(ctx, slackfake.Click{UserID: "U1", ChannelID: "C1", MessageTS: ts, ActionID: "step:deny"}); err != nil {
		t.Fatal(err)
	}
	cb := recv(t, clicks, "ephemeral click")
	if !cb.Container.IsEphemeral || cb.Container.MessageTs != ts || cb.Message.Timestamp != "" {
		t.Errorf("container %+v, message ts %q: want ephemeral, no message", cb.Container, cb.Message.Timestamp)
	}
	if _, _, err := api.PostMessageContext(ctx, "", slack.MsgOptionText("done", false), slack.MsgOptionReplaceOriginal(cb.ResponseURL)); err != nil {
		t.Fatal(err)
	}
	want := []slackfake.Message{{Method: "response_url", Channel: "C1", TS: ts, User: "U1", Text: "done"}}
	if d := cmp.Diff(fake.Ephemerals("U1"), want, ignoreAt); d != "" {
		t.Errorf("ephemerals after replace_original (-got +want):\n%s", d)
	}
	if _, _, err := api.PostMessageContext(ctx, "", slack.MsgOptionDeleteOriginal(cb.ResponseURL)); err != nil {
		t.Fatal(err)
	}
	if got := fake.Ephemerals("U1"); len(got) != 0 {
		t.Errorf("ephemerals after delete_original: %+v", got)
	}
}

func TestJSONBodyWithBearer(t *testing.T) {
	fake := newFake(t)
	body := `{"channel":"C1","text":"hi","blocks":[{"type":"divider"}]}`
	req, _ := http.NewRequest(http.MethodPost, fake.APIURL()+"chat.postMessage", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer xoxb-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		OK bool   `json:"ok"`
		TS string `json:"ts"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	_ = resp.Body.Close()
	if !out.OK {
		t.Fatalf("JSON post refused")
	}
	want := []slackfake.Message{{Method: "chat.postMessage", Channel: "C1", TS: out.TS, Text: "hi", Blocks: json.RawMessage(`[{"type":"divider"}]`)}}
	if d := cmp.Diff(fake.Channel("C1"), want, ignoreAt); d != "" {
		t.Errorf("Channel (-got +want):\n%s", d)
	}
}

func TestTokensNeverExposed(t *testing.T) {
	var logs testenv.SyncBuffer
	opts := slackfake.Options{AppToken: "xapp-1-secret", BotToken: "xoxb-secret", PingInterval: fakePing,
		Logger: zerolog.New(&logs).Level(zerolog.DebugLevel)}
	fake := slackfake.Start(t, opts)
	fake.AddChannel("C1", "incident", true)
	api := slack.New("xoxb-secret", slack.OptionAPIURL(fake.APIURL()))
	if _, _, err := api.PostMessageContext(ctx5s(t), "C1", slack.MsgOptionText("hi", false)); err != nil {
		t.Fatal(err)
	}
	_, _ = slack.New("xoxb-wrong-secret", slack.OptionAPIURL(fake.APIURL())).AuthTestContext(ctx5s(t))
	fake.Close()
	var calls strings.Builder
	for _, c := range fake.Calls("") {
		fmt.Fprintf(&calls, "%v %s\n", c.Form, c.JSON)
	}
	for what, s := range map[string]string{"Options.String": opts.String(), "logs": logs.String(), "calls": calls.String()} {
		if strings.Contains(s, "secret") {
			t.Errorf("%s shows a token: %s", what, s)
		}
	}
}

// TestViewsStaticSelect: views.open checks a modal and its select as Slack does, and a
// submission is what Slack's client would send (an offered option, every required input
// filled) unless the test forges it.
func TestViewsStaticSelect(t *testing.T) {
	fake := newFake(t)
	triggers := make(chan string, 4)
	submits := make(chan slack.InteractionCallback, 2)
	runSocket(t, fake, func(h *socketmode.SocketmodeHandler) {
		h.HandleSlashCommand("/compromised", func(evt *socketmode.Event, c *socketmode.Client) {
			_ = c.AckCtx(context.Background(), evt.Request.EnvelopeID, nil)
			triggers <- evt.Data.(slack.SlashCommand).TriggerID
		})
		h.HandleViewSubmission("pick", func(evt *socketmode.Event, c *socketmode.Client) {
			_ = c.AckCtx(context.Background(), evt.Request.EnvelopeID, nil)
			submits <- evt.Data.(slack.InteractionCallback)
		})
	})
	trigger := func() string {
		if _, err := fake.SlashCommand(ctx5s(t), slackfake.SlashCommand{UserID: "U1", ChannelID: "C1"}); err != nil {
			t.Fatal(err)
		}
		return recv(t, triggers, "trigger_id")
	}
	plainText := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}
	modal := func(opts []*slack.OptionBlockObject, title string, submit bool) slack.ModalViewRequest {
		sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plainText("Choose"), "pick_a", opts...)
		v := slack.ModalViewRequest{Type: slack.VTModal, CallbackID: "pick", Title: plainText(title),
			Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewInputBlock("pick_b", plainText("Policy"), nil, sel)}}}
		if submit {
			v.Submit = plainText("Go")
		}
		return v
	}
	opt := func(v string) *slack.OptionBlockObject {
		return slack.NewOptionBlockObject(v, plainText(v+" text"), nil)
	}
	api := newAPI(fake, "xoxb-test")
	for _, tc := range []struct {
		name string
		view slack.ModalViewRequest
		want string
	}{
		{"no options", modal(nil, "Pick", true), "/view/blocks/0/element/options"},
		{"empty value", modal([]*slack.OptionBlockObject{opt("")}, "Pick", true), "/view/blocks/0/element/options/0/value"},
		{"duplicate value", modal([]*slack.OptionBlockObject{opt("a"), opt("a")}, "Pick", true), "duplicate option value"},
		{"long value", modal([]*slack.OptionBlockObject{opt(strings.Repeat("v", 151))}, "Pick", true), "less than 151"},
		{"long title", modal([]*slack.OptionBlockObject{opt("a")}, strings.Repeat("t", 25), true), "/view/title"},
		{"no submit", modal([]*slack.OptionBlockObject{opt("a")}, "Pick", false), "/view/submit"},
	} {
		_, err := api.OpenViewContext(ctx5s(t), trigger(), tc.view)
		var se slack.SlackErrorResponse
		if !errors.As(err, &se) || !strings.Contains(strings.Join(se.ResponseMetadata.Messages, " "), tc.want) {
			t.Errorf("%s: views.open = %v, want a refusal naming %s", tc.name, err, tc.want)
		}
	}

	resp, err := api.OpenViewContext(ctx5s(t), trigger(), modal([]*slack.OptionBlockObject{opt("a"), opt("b")}, "Pick", true))
	if err != nil {
		t.Fatal(err)
	}
	if vs := fake.Views(); len(vs) != 1 || vs[0].ID != resp.View.ID || vs[0].CallbackID != "pick" || !strings.Contains(string(vs[0].Blocks), `"b text"`) {
		t.Errorf("Views() = %+v", vs)
	}
	for _, bad := range []slackfake.ViewSubmission{
		{}, // the required select left empty
		{Selected: map[string]map[string]string{"pick_b": {"pick_a": "c"}}}, // not offered
		{Selected: map[string]map[string]string{"other": {"pick_a": "a"}}},  // no such input
		{Values: map[string]map[string]string{"pick_b": {"pick_a": "a"}}},   // not a text input
	} {
		if _, err := fake.SubmitView(ctx5s(t), bad); !errors.Is(err, slackfake.ErrInvalidSubmission) {
			t.Errorf("SubmitView(%+v) = %v, want ErrInvalidSubmission", bad, err)
		}
	}
	if _, err := fake.SubmitView(ctx5s(t), slackfake.ViewSubmission{Selected: map[string]map[string]string{"pick_b": {"pick_a": "b"}}}); err != nil {
		t.Fatal(err)
	}
	cb := recv(t, submits, "view submission")
	testenv.WaitFor(t, 5*time.Second, "the bare ack to close the view", func() bool { return fake.Views()[0].Closed })
	if _, err := fake.SubmitView(ctx5s(t), slackfake.ViewSubmission{ViewID: resp.View.ID,
		Selected: map[string]map[string]string{"pick_b": {"pick_a": "a"}}}); !errors.Is(err, slackfake.ErrNoSuchView) {
		t.Errorf("submitting a closed view: %v, want ErrNoSuchView", err)
	}
	if got := cb.View.State.Values["pick_b"]["pick_a"]; got.Type != "static_select" || got.SelectedOption.Value != "b" || got.SelectedOption.Text.Text != "b text" {
		t.Errorf("submitted state = %+v", got)
	}
	if _, err := api.OpenViewContext(ctx5s(t), trigger(), modal([]*slack.OptionBlockObject{opt("a")}, "Pick", true)); err != nil {
		t.Fatal(err)
	}
	if _, err := fake.SubmitView(ctx5s(t), slackfake.ViewSubmission{Forged: true, Selected: map[string]map[string]string{"pick_b": {"pick_a": "zz"}}}); err != nil {
		t.Fatal(err)
	}
	if cb := recv(t, submits, "forged submission"); cb.View.State.Values["pick_b"]["pick_a"].SelectedOption.Value != "zz" {
		t.Errorf("forged state = %+v", cb.View.State.Values)
	}
}
