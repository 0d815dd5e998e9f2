package slacksocket

import (
	"reflect"
	"testing"
)

// slackfakeFrame is a slash command envelope as slackfake (and Slack) sends it.
const slackfakeFrame = `{"accepts_response_payload":true,"envelope_id":"4b1c0b7e-6d1a-4a57-9c3e-1f2a3b4c5d6e",` +
	`"payload":{"api_app_id":"A0001","channel_id":"C1","channel_name":"incident","command":"/compromised",` +
	`"is_enterprise_install":"false","response_url":"http://127.0.0.1:1/response/r1","team_domain":"fake",` +
	`"team_id":"T0001","text":"1001@acme.example naïve • ✓","token":"fake-verification-token",` +
	`"trigger_id":"1000000001.1700000001.abcdef","user_id":"U1","user_name":"alice"},"type":"slash_commands"}`

// TestFastSlashFrame: a slash command frame as Slack sends it takes the fast path, with the
// result encoding/json gives; frames it does not handle fall back (FuzzParseFrame checks the
// rest).
func TestFastSlashFrame(t *testing.T) {
	fast, ok := fastSlashFrame([]byte(slackfakeFrame))
	if !ok {
		t.Fatal("a plain slash command frame missed the fast path")
	}
	slow, err := decodeFrame([]byte(slackfakeFrame))
	if err != nil || !reflect.DeepEqual(fast, slow) {
		t.Fatalf("fast %+v %+v\nslow %+v %+v (%v)", fast, fast.command, slow, slow.command, err)
	}
	for _, s := range []string{
		`{"envelope_id":"e","type":"slash_commands","payload":{"text":"a\"b"}}`, // an escape
		`{"envelope_id":"e","type":"slash_commands","payload":{"Text":"x"}}`,    // a case-folded key
		`{"envelope_id":"e","type":"slash_commands","retry_attempt":1e0,"payload":{}}`,
		`{"envelope_id":"e","type":"interactive","payload":{}}`,       // not a command
		`{"envelope_id":"e","type":"slash_commands","payload":{}} {}`, // trailing value
	} {
		if _, ok := fastSlashFrame([]byte(s)); ok {
			t.Errorf("fast path took %s", s)
		}
	}
}

func BenchmarkParseFrame(b *testing.B) {
	data := []byte(slackfakeFrame)
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := parseFrame(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeFrame(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestClickBlocksNotDecoded: a click's payload is decoded without the blocks of the message it
// was on (the whole card, which the app never reads), and with everything else: the action, the
// message's ts and text, the view's blocks of a submission.
func TestClickBlocksNotDecoded(t *testing.T) {
	const click = `{"envelope_id":"e1","type":"interactive","payload":{"type":"block_actions","user":{"id":"U1"},` +
		`"channel":{"id":"C1"},"container":{"type":"message","message_ts":"1.2"},` +
		`"message":{"type":"message","ts":"1.2","text":"card","blocks":[{"type":"section","block_id":"s:deny:v3",` +
		`"text":{"type":"mrkdwn","text":"1 ⬜ *Deny all calls* \"}\""}}]},` +
		`"actions":[{"action_id":"step:deny","block_id":"s:deny:v3","value":"INC-7K2QXM","type":"button","action_ts":"1.3"}]}}`
	f, err := parseFrame([]byte(click))
	if err != nil || f.callback == nil {
		t.Fatalf("parseFrame = %+v, %v", f, err)
	}
	cb := f.callback
	if cb.Message.Timestamp != "1.2" || cb.Message.Text != "card" || len(cb.Message.Blocks.BlockSet) != 0 {
		t.Errorf("message ts %q text %q, %d blocks; want 1.2, card, none decoded", cb.Message.Timestamp, cb.Message.Text, len(cb.Message.Blocks.BlockSet))
	}
	if a := cb.ActionCallback.BlockActions; len(a) != 1 || a[0].ActionID != "step:deny" || a[0].Value != "INC-7K2QXM" {
		t.Errorf("actions %+v", a)
	}

	const submit = `{"envelope_id":"e2","type":"interactive","payload":{"type":"view_submission","user":{"id":"U1"},` +
		`"view":{"id":"V1","type":"modal","callback_id":"restore","blocks":[{"type":"input","block_id":"b1",` +
		`"label":{"type":"plain_text","text":"Policy"},"element":{"type":"plain_text_input","action_id":"a1"}}]}}}`
	if f, err = parseFrame([]byte(submit)); err != nil || f.callback == nil || len(f.callback.View.Blocks.BlockSet) != 1 {
		t.Errorf("view submission = %+v, %v; want its view's block", f.callback, err)
	}
}

// ackFrame is the frame acknowledging envelope id with payload (see ackBody), in a buffer of its
// own.
func ackFrame(id string, payload any) ([]byte, error) {
	body, err := ackBody(payload)
	if err != nil {
		return nil, err
	}
	return appendAck(nil, id, body)
}

// TestFastSlashFrameAllocs: the fast path's strings are pieces of one copy of the frame, so a
// slash command costs that copy and its slack.SlashCommand, not an allocation per field.
func TestFastSlashFrameAllocs(t *testing.T) {
	data := []byte(slackfakeFrame)
	if n := testing.AllocsPerRun(100, func() { fastSlashFrame(data) }); n > 2 {
		t.Errorf("fastSlashFrame: %.0f allocations per frame, want 2", n)
	}
}
