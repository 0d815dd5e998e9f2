package slackui

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// FuzzEnvelope covers the whole path from a Socket Mode frame to what the app acts on: the
// envelope decoded as socketmode.Request, its payload decoded by type exactly as slack-go's
// socketmode client does before it hands the app an Event (slash_commands → slack.SlashCommand,
// interactive → slack.InteractionCallback: block_actions and view_submission), then the app's
// own decoders (ParseCommand, ActionsFrom). No panic, and whatever is accepted is well formed
// (checkCommand, checkAction).
func FuzzEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"envelope_id":"e1","type":"slash_commands","accepts_response_payload":true,"payload":{"command":"/compromised",` +
			`"text":"1001@acme.example intl calls","user_id":"U1","channel_id":"C1","is_enterprise_install":"false","trigger_id":"1.2.3"}}`,
		`{"envelope_id":"e2","type":"interactive","retry_attempt":2,"retry_reason":"timeout","payload":{"type":"block_actions",` +
			`"user":{"id":"U1"},"channel":{"id":"C1"},"container":{"type":"message","message_ts":"1.2"},` +
			`"actions":[{"action_id":"step:deny","block_id":"s:deny:v3","value":"INC-7K2QXM","type":"button","action_ts":"1.3"}]}}`,
		`{"envelope_id":"e3","type":"interactive","payload":{"type":"view_submission","user":{"id":"U1"},"view":{"id":"V1",` +
			`"type":"modal","callback_id":"restore_original","private_metadata":"INC-7K2QXM","state":{"values":{"b1":{"a1":` +
			`{"type":"static_select","selected_option":{"text":{"type":"plain_text","text":"US"},"value":"US and Canada"}}}}}}}}`,
		`{"envelope_id":"e4","type":"interactive","payload":{"type":"view_submission","view":{"state":{"values":{"b":{"a":null}}}}}}`,
		`{"envelope_id":"e5","type":"interactive","payload":{"type":"block_actions","actions":[null,{"action_id":"abort"}]}}`,
		`{"envelope_id":"e6","type":"events_api","payload":{}}`, `{"type":"hello"}`, `{"type":"disconnect","reason":"warning"}`,
		`{"envelope_id":"e7","type":"interactive","payload":"not an object"}`, `{"payload":[1,2]}`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var req socketmode.Request
		if err := json.Unmarshal(frame, &req); err != nil {
			return // slack-go drops a frame it cannot decode
		}
		switch req.Type {
		case socketmode.RequestTypeSlashCommands:
			var cmd slack.SlashCommand
			if err := json.Unmarshal(req.Payload, &cmd); err != nil {
				return
			}
			checkCommand(t, cmd.Text, ParseCommand(cmd.Text))
		case socketmode.RequestTypeInteractive:
			var cb slack.InteractionCallback
			if err := json.Unmarshal(req.Payload, &cb); err != nil {
				return
			}
			for _, a := range ActionsFrom(cb) {
				checkAction(t, a)
			}
			// A view submission's values are read by checkRestoreView, fuzzed (with its
			// properties) by FuzzRestoreView.
		}
	})
}

// FuzzRestoreView runs any view_submission payload through the restore_original dialog's check
// (checkRestoreView, against real Redis and the simulator, with one open incident): no panic;
// a submission it accepts names that incident in its private_metadata and a policy the dialog
// offered that is not the deny policy, and was made by a responder.
func FuzzRestoreView(f *testing.F) {
	for _, s := range []string{
		`{"type":"view_submission","user":{"id":"U0ALICE"},"view":{"callback_id":"restore_original","private_metadata":"INC-7K2QXM",` +
			`"state":{"values":{"policy":{"policy":{"type":"static_select","selected_option":{"value":"US and Canada"}}}}}}}`,
		`{"type":"view_submission","user":{"id":"U0ALICE"},"view":{"callback_id":"restore_original","private_metadata":"INC-7K2QXM"}}`,
		`{"type":"view_submission","view":{"callback_id":"restore_original","state":{"values":{"policy":null}}}}`,
		`{"type":"view_submission","view":{"callback_id":"restore_original","state":null,"blocks":[{"type":"input","block_id":"x"}]}}`,
		`{}`,
		// A submission the check accepts once it names the incident (an even length does): the
		// properties below are then checked, not only reached.
		`{"type":"view_submission","user":{"id":"U0ALICE"},"view":{"callback_id":"restore_original","blocks":[{"type":"input",` +
			`"block_id":"policy","label":{"type":"plain_text","text":"p"},"element":{"type":"static_select","action_id":"policy",` +
			`"options":[{"text":{"type":"plain_text","text":"US"},"value":"US and Canada"}]}}],` +
			`"state":{"values":{"policy":{"policy":{"type":"static_select","selected_option":{"value":"US and Canada"}}}}}}}`,
	} {
		f.Add([]byte(s))
	}
	h := newHarness(f)
	inc := h.open()
	f.Fuzz(func(t *testing.T, payload []byte) {
		var cb slack.InteractionCallback
		if err := json.Unmarshal(payload, &cb); err != nil {
			return
		}
		// Half the inputs name the open incident, so the checks past the ID are reached too.
		if len(payload)%2 == 0 {
			cb.View.PrivateMetadata = inc.ID
		}
		s, errs, _ := h.apps[0].checkRestoreView(h.ctx, &cb)
		if errs != nil {
			return
		}
		if cb.View.PrivateMetadata != inc.ID || s.inc.ID != inc.ID {
			t.Fatalf("accepted a submission for %q", cb.View.PrivateMetadata)
		}
		if s.value == "" || strings.EqualFold(s.value, "Deny All") || !offeredIn(cb.View, s.value) {
			t.Fatalf("accepted the policy %q (the deny policy, or not an option of the dialog)", s.value)
		}
		if s.user != hAlice && s.user != hBob {
			t.Fatalf("accepted a submission by %q", s.user)
		}
	})
}

// offeredIn reports whether value is an option of a select in one of the view's input blocks:
// what the dialog offered, as its submission carries it back.
func offeredIn(v slack.View, value string) bool {
	for _, b := range v.Blocks.BlockSet {
		ib, ok := b.(*slack.InputBlock)
		if !ok {
			continue
		}
		if sel, ok := ib.Element.(*slack.SelectBlockElement); ok {
			for _, o := range sel.Options {
				if o != nil && o.Value == value {
					return true
				}
			}
		}
	}
	return false
}
