package slacksocket

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/jsoncut"
)

// The Socket Mode frame types (https://api.slack.com/apis/socket-mode).
const (
	TypeHello         = "hello"
	TypeDisconnect    = "disconnect"
	TypeSlashCommands = "slash_commands"
	TypeInteractive   = "interactive"
	TypeEventsAPI     = "events_api"
)

// Envelope is one request Slack delivered over the link. It must be acknowledged (Ack) within
// 3 s, or Slack delivers it again (RetryAttempt 1, 2, 3).
type Envelope struct {
	ID   string // envelope_id
	Type string // TypeSlashCommands, TypeInteractive or TypeEventsAPI
	// AcceptsResponsePayload: Slack reads a payload in the ack (an ephemeral answer, a view
	// submission's errors). When false it ignores one.
	AcceptsResponsePayload bool
	RetryAttempt           int    // 0 = the first delivery
	RetryReason            string // why Slack delivered it again ("timeout", …)

	Command  *slack.SlashCommand        // slash_commands
	Callback *slack.InteractionCallback // interactive; its Message has no Blocks (not decoded)

	Received time.Time // when its frame was read

	client *Client
	conn   *conn // the connection it arrived on, where its ack goes while that is open
}

// frame is a decoded Socket Mode frame: Slack's control messages (hello, disconnect) and the
// envelopes, with the payload decoded once into slack-go's type for it.
type frame struct {
	Type           string `json:"type"`
	EnvelopeID     string `json:"envelope_id"`
	Reason         string `json:"reason"`          // disconnect
	NumConnections int    `json:"num_connections"` // hello
	// AcceptsResponsePayload, RetryAttempt, RetryReason: envelopes.
	AcceptsResponsePayload bool    `json:"accepts_response_payload"`
	RetryAttempt           int     `json:"retry_attempt"`
	RetryReason            string  `json:"retry_reason"`
	Payload                rawView `json:"payload"`

	command  *slack.SlashCommand
	callback *slack.InteractionCallback
}

// rawView is json.RawMessage without the copy: it points into the frame's buffer, which is
// decoded (into slack-go's types, which copy what they keep) before the buffer is reused.
type rawView []byte

// UnmarshalJSON keeps a view of data (valid JSON: encoding/json checked it).
func (r *rawView) UnmarshalJSON(data []byte) error {
	*r = data
	return nil
}

// errBadFrame is a frame that is not a Socket Mode message this client understands.
var errBadFrame = errors.New("bad socket mode frame")

// parseFrame decodes one text frame. A request envelope (slash_commands, interactive,
// events_api) must carry an envelope_id; its payload is decoded into slack.SlashCommand or
// slack.InteractionCallback (events_api is acked but not decoded: this app subscribes to no
// events). Errors wrap errBadFrame; a frame whose envelope could be read but whose payload
// could not is returned with the error too, so it can still be acked (Slack would otherwise
// deliver the same bad payload three more times).
func parseFrame(data []byte) (frame, error) {
	if f, ok := fastSlashFrame(data); ok {
		return f, nil
	}
	return decodeFrame(data)
}

// decodeFrame is parseFrame by encoding/json, for every frame.
func decodeFrame(data []byte) (frame, error) {
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		return frame{}, fmt.Errorf("%w: %w", errBadFrame, err)
	}
	switch f.Type {
	case TypeHello, TypeDisconnect:
		return f, nil
	case TypeSlashCommands, TypeInteractive, TypeEventsAPI:
	default:
		return frame{}, fmt.Errorf("%w: type %q", errBadFrame, f.Type)
	}
	if f.EnvelopeID == "" {
		return frame{}, fmt.Errorf("%w: %s without an envelope_id", errBadFrame, f.Type)
	}
	var err error
	switch f.Type {
	case TypeSlashCommands:
		var c slack.SlashCommand
		if err = json.Unmarshal(f.Payload, &c); err == nil {
			f.command = &c
		}
	case TypeInteractive:
		// A click's payload carries the whole message it was on (a card: ≈ 20 blocks), which
		// slack-go decodes block by block, each level again from its raw bytes: ≈ 0.5 ms of a
		// burst's CPU per click, for blocks this app never reads (a click's incident and step
		// are in its action; a view submission's blocks are in view, kept).
		var cb slack.InteractionCallback
		if err = json.Unmarshal(jsoncut.Without(f.Payload, "message", "blocks"), &cb); err == nil {
			// jsoncut matches names exactly; encoding/json also takes "Message" or a second
			// "message" member: what they held is dropped too, so a click reads alike however
			// it is spelled (FuzzParseFrame).
			cb.Message.Blocks = slack.Blocks{}
			f.callback = &cb
		}
	}
	f.Payload = nil // a view of the read buffer: not kept
	if err != nil {
		return f, fmt.Errorf("%w: %s payload: %w", errBadFrame, f.Type, err)
	}
	return f, nil
}

// maxAckFrame is Slack's limit on a frame it reads: a bigger one closes the socket ("Max frame
// length of 20480 has been exceeded"), and one just under it may be dropped silently, so, like
// slack-go, an ack of maxAckFrame bytes or more is refused before it is written.
const maxAckFrame = 20 * 1024

// ErrAckTooBig is an ack whose frame would reach Slack's 20 KiB limit (wrapped, with its size).
var ErrAckTooBig = errors.New("socket mode ack reaches Slack's 20 KiB frame limit")

// ackBody is an ack's payload as JSON: nil for a bare ack (and for null), a json.RawMessage as
// is, anything else marshalled.
func ackBody(payload any) ([]byte, error) {
	var body []byte
	switch p := payload.(type) {
	case nil:
	case json.RawMessage:
		body = p
	default:
		b, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("marshal ack payload: %w", err)
		}
		body = b
	}
	if len(body) == 4 && string(body) == "null" {
		body = nil
	}
	return body, nil
}

// appendAck appends to out the frame acknowledging envelope id with body (ackBody's). It is
// built by hand around the payload's JSON: the ack of a burst is on the reading goroutine's
// path, and encoding/json's reflection over the wrapper costs as much as the payload; out is a
// reused buffer (ackBufs), so an ack costs no allocation either. A frame that reaches Slack's
// limit is ErrAckTooBig (wrapped, with its size), with out as it was.
func appendAck(out []byte, id string, body []byte) ([]byte, error) {
	start := len(out)
	out = append(out, `{"envelope_id":`...)
	out = appendJSONString(out, id)
	if len(body) > 0 {
		out = append(out, `,"payload":`...)
		out = append(out, body...)
	}
	out = append(out, '}')
	if n := len(out) - start; n >= maxAckFrame {
		return out[:start], fmt.Errorf("%w: %d bytes", ErrAckTooBig, n)
	}
	return out, nil
}

// appendJSONString appends s as a JSON string: as is when it is plain (an envelope_id is a
// UUID), else by encoding/json.
func appendJSONString(out []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			return append(out, b...)
		}
	}
	out = append(out, '"')
	out = append(out, s...)
	return append(out, '"')
}
