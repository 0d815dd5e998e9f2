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
