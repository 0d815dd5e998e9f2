package slacksocket

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/compromised-responder/bot/internal/jsoncut"
)

// FuzzParseFrame: any frame is parsed without a panic, and what parseFrame accepts is what
// slack-go's socketmode client would have decoded from it (the envelope fields, and the payload
// as slack.SlashCommand or slack.InteractionCallback, less the blocks of a click's message, which
// are not decoded), so replacing that client changes nothing the app sees. The ack built for an accepted envelope is valid JSON naming it. The seed corpus
// is in testdata/fuzz/FuzzParseFrame.
func FuzzParseFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if fast, ok := fastSlashFrame(data); ok {
			slow, err := decodeFrame(data)
			if err != nil {
				t.Fatalf("the fast path accepted a frame encoding/json refuses: %v", err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("fast path %+v %+v, encoding/json %+v %+v", fast, fast.command, slow, slow.command)
			}
		}
		fr, err := parseFrame(data)
		if err != nil {
			if !errors.Is(err, errBadFrame) {
				t.Fatalf("error %v does not wrap errBadFrame", err)
			}
			if fr.command != nil || fr.callback != nil {
				t.Fatalf("a refused frame carries a payload")
			}
			return
		}
		var req socketmode.Request
		if err := json.Unmarshal(data, &req); err != nil {
			// debug_info is Slack's, for Slack: this client does not read it (frame.go), so a
			// debug_info slack-go cannot decode is no reason to refuse the frame.
			if err := json.Unmarshal(withoutMember(t, data, "debug_info"), &req); err != nil {
				t.Fatalf("accepted a frame slack-go cannot decode: %v", err)
			}
		}
		if req.Type != fr.Type || req.EnvelopeID != fr.EnvelopeID || req.RetryAttempt != fr.RetryAttempt ||
			req.RetryReason != fr.RetryReason || req.AcceptsResponsePayload != fr.AcceptsResponsePayload ||
			req.Reason != fr.Reason || req.NumConnections != fr.NumConnections {
			t.Fatalf("envelope fields differ from slack-go's: %+v vs %+v", fr, req)
		}
		switch fr.Type {
		case TypeSlashCommands:
			var want slack.SlashCommand
			if err := json.Unmarshal(req.Payload, &want); err != nil {
				t.Fatalf("accepted a command slack-go cannot decode: %v", err)
			}
			if fr.command == nil || !reflect.DeepEqual(*fr.command, want) {
				t.Fatalf("command %+v, slack-go decodes %+v", fr.command, want)
			}
		case TypeInteractive:
			var want slack.InteractionCallback
			if err := json.Unmarshal(req.Payload, &want); err != nil {
				// The message's blocks are not decoded (frame.go): a payload whose blocks slack-go
				// rejects is still read, and everything else must be as slack-go reads it.
				if err := json.Unmarshal(jsoncut.Without(req.Payload, "message", "blocks"), &want); err != nil {
					t.Fatalf("accepted a callback slack-go cannot decode: %v", err)
				}
			}
			want.Message.Blocks = slack.Blocks{}
			if fr.callback == nil {
				t.Fatal("interactive envelope without its callback")
			}
			g, _ := json.Marshal(fr.callback)
			w, _ := json.Marshal(&want)
			if string(g) != string(w) {
				t.Fatalf("callback %s, slack-go decodes %s", g, w)
			}
		}
		if fr.EnvelopeID == "" {
			return
		}
		ack, err := ackFrame(fr.EnvelopeID, json.RawMessage(`{"text":"ok"}`))
		if errors.Is(err, ErrAckTooBig) {
			return
		}
		var back struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if err != nil || json.Unmarshal(ack, &back) != nil || back.EnvelopeID != fr.EnvelopeID || string(back.Payload) != `{"text":"ok"}` {
			t.Fatalf("ack %s for %q (%v)", ack, fr.EnvelopeID, err)
		}
	})
}

// withoutMember is the JSON object data without its members named name, matched as encoding/json
// matches a struct field's name (any case), whichever occurrence.
func withoutMember(t *testing.T, data []byte, name string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return data
	}
	for k := range m {
		if strings.EqualFold(k, name) {
			delete(m, k)
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("encode the frame again: %v", err)
	}
	return out
}
