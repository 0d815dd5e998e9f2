package slackfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// SlashCommand is a user running a slash command.
type SlashCommand struct {
	UserID    string
	ChannelID string
	Text      string
	Command   string // default "/compromised"
}

// Click is a user clicking an interactive element of a message.
type Click struct {
	UserID    string
	ChannelID string
	MessageTS string // the channel message, or the ephemeral message shown to UserID
	ActionID  string
	BlockID   string // optional: the element is looked up by ActionID when empty
	Value     string // optional: the element's own value when empty

	// Stale delivers the click even when the current version of the message no longer
	// shows that element, as Slack does for a user whose client still shows an old
	// rendering. BlockID and Value are then taken as given.
	Stale bool
}

// ErrNoSuchMessage and ErrNoSuchAction are returned by Click when the message, or the
// element in its current version, does not exist (and Click.Stale is not set).
var (
	ErrNoSuchMessage = errors.New("slackfake: no such message")
	ErrNoSuchAction  = errors.New("slackfake: no such action in the message")
)

// envelopeInfo is what an ack needs to know about the envelope it answers.
type envelopeInfo struct {
	kind          string // slash_commands or interactive
	channel, user string
	view          *openView // the view a view_submission submits
}

// responseTarget is what a response_url acts on.
type responseTarget struct {
	kind      string // command or action
	channel   string
	user      string
	msgTS     string // action: the message clicked
	ephemeral bool   // action: that message is ephemeral
	uses      int
}

// maxResponseURLUses is Slack's limit: a response_url works 5 times (within 30 min).
const maxResponseURLUses = 5

// issueLocked hands out a response_url and a trigger_id; s.mu must be held.
func (s *Server) issueLocked(t *responseTarget) (responseURL, triggerID string) {
	id := s.nextIDLocked("r")
	s.responses[id] = t
	tid := fmt.Sprintf("%d.%d.%s", 1000000000+s.ids, 1700000000+s.ids, strings.ReplaceAll(newEnvelopeID(), "-", "")[:16])
	s.triggers[tid] = &trigger{at: time.Now(), user: t.user}
	return s.srv.URL + "/response/" + id, tid
}

// CommandResponseURL hands out the response_url Slack puts in a slash command that user ran in
// channel, without sending the command: for a test that calls the app's command handler itself
// and checks how the command was answered (Ephemerals shows what came by it, as "response_url").
func (s *Server) CommandResponseURL(channel, user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, _ := s.issueLocked(&responseTarget{kind: "command", channel: channel, user: user})
	return u
}

// encodeEnvelope is the Socket Mode envelope around payload.
func encodeEnvelope(envID, typ string, acceptsResponse bool, payload map[string]any) ([]byte, error) {
	env := map[string]any{"envelope_id": envID, "type": typ, "accepts_response_payload": acceptsResponse,
		"payload": payload}
	data, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("slackfake: marshal envelope: %w", err)
	}
	return data, nil
}

// sendEnvelopeOf wraps payload in a Socket Mode envelope of the given type, as Slack does, sends
// it and returns its envelope_id; the one tail of every Drive method (s.mu not held).
func (s *Server) sendEnvelopeOf(ctx context.Context, envID, typ string, acceptsResponse bool, payload map[string]any) (string, error) {
	data, err := encodeEnvelope(envID, typ, acceptsResponse, payload)
	if err != nil {
		return "", err
	}
	if err := s.send(ctx, envID, data); err != nil {
		return "", err
	}
	return envID, nil
}

// SlashCommand delivers a slash_commands envelope with the payload Slack builds
// (is_enterprise_install as the string "false", a response_url and a trigger_id) and
// returns its envelope_id. Errors are SendEnvelope's.
func (s *Server) SlashCommand(ctx context.Context, c SlashCommand) (string, error) {
	id, data, err := s.slashEnvelope(c)
	if err != nil {
		return "", err
	}
	if err := s.send(ctx, id, data); err != nil {
		return "", err
	}
	return id, nil
}

// SlashCommands delivers a burst of slash commands the way Slack's edge sends commands that
// reached it at once: every envelope is built first, then they are written back to back from
// this goroutine, each timed from its own write. Building 200 envelopes in 200 goroutines instead
// makes the fake's own work (and its goroutines' turns on the CPU) part of every ack's latency.
// It returns the envelope_ids in cs's order, as far as they were sent, and SendEnvelope's errors.
func (s *Server) SlashCommands(ctx context.Context, cs []SlashCommand) ([]string, error) {
	ids := make([]string, len(cs))
	frames := make([][]byte, len(cs))
	for i, c := range cs {
		id, data, err := s.slashEnvelope(c)
		if err != nil {
			return nil, err
		}
		ids[i], frames[i] = id, data
	}
	// Registered for Redeliver before the first write, so the writes are all that is left
	// between the first envelope and the last (the frames are the fake's own: no copy).
	s.mu.Lock()
	for i, id := range ids {
		s.sent[id] = frames[i]
	}
	s.mu.Unlock()
	for i := range frames {
		if err := s.sendSent(ctx, ids[i], frames[i]); err != nil {
			return ids[:i], err
		}
	}
	return ids, nil
}

// slashEnvelope builds one slash_commands envelope and registers it (its response_url,
// trigger_id and where its ack's message shows), but not for Redeliver (send does that).
func (s *Server) slashEnvelope(c SlashCommand) (id string, data []byte, err error) {
	if c.Command == "" {
		c.Command = "/compromised"
	}
	envID := newEnvelopeID()
	s.mu.Lock()
	respURL, trigger := s.issueLocked(&responseTarget{kind: "command", channel: c.ChannelID, user: c.UserID})
	payload := map[string]any{
		"token": "fake-verification-token", "team_id": s.opts.TeamID, "team_domain": "fake",
		"channel_id": c.ChannelID, "channel_name": s.channelNameLocked(c.ChannelID),
		"user_id": c.UserID, "user_name": s.userNameLocked(c.UserID),
		"command": c.Command, "text": c.Text, "api_app_id": s.opts.AppID,
		"is_enterprise_install": "false", "response_url": respURL, "trigger_id": trigger,
	}
	s.envelopes[envID] = envelopeInfo{kind: "slash_commands", channel: c.ChannelID, user: c.UserID}
	s.mu.Unlock()
	data, err = encodeEnvelope(envID, "slash_commands", true, payload)
	return envID, data, err
}

// Click delivers a block_actions envelope for an element of a message's current
// version: container, channel, the message with its blocks (left out for an ephemeral
// message, as Slack does), the action with its block_id, text, value and style, a
// response_url and a trigger_id. It returns the envelope_id, ErrNoSuchMessage or
// ErrNoSuchAction (wrapped) when the element is not shown, or SendEnvelope's errors.
func (s *Server) Click(ctx context.Context, c Click) (string, error) {
	envID := newEnvelopeID()
	s.mu.Lock()
	payload, err := s.clickPayloadLocked(c)
	if err != nil {
		s.mu.Unlock()
		return "", fmt.Errorf("slackfake: click %q on %s/%s: %w", c.ActionID, c.ChannelID, c.MessageTS, err)
	}
	s.envelopes[envID] = envelopeInfo{kind: "interactive", channel: c.ChannelID, user: c.UserID}
	s.mu.Unlock()
	return s.sendEnvelopeOf(ctx, envID, "interactive", false, payload)
}

func (s *Server) clickPayloadLocked(c Click) (map[string]any, error) {
	st, ok := s.byKey[key(c.ChannelID, c.MessageTS)]
	if ok && (st.deleted || (st.ephemeral && st.User != c.UserID)) {
		ok = false
	}
	if !ok && !c.Stale {
		return nil, ErrNoSuchMessage
	}
	now := time.Now()
	action := map[string]any{
		"type": "button", "action_id": c.ActionID, "block_id": c.BlockID,
		"text":      map[string]any{"type": "plain_text", "text": c.ActionID, "emoji": true},
		"action_ts": fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000),
	}
	if c.Value != "" {
		action["value"] = c.Value
	}
	if ok {
		blockID, elem, found := findAction(st.Blocks, c.BlockID, c.ActionID)
		switch {
		case found:
			fillAction(action, blockID, elem, c.Value)
		case !c.Stale:
			return nil, ErrNoSuchAction
		}
	}
	if action["block_id"] == "" {
		// Slack generates a block_id for a block sent without one, and slack-go only
		// routes actions that have one to HandleInteractionBlockAction.
		action["block_id"] = "auto-" + c.ActionID
	}
	ephemeral := ok && st.ephemeral
	respURL, trigger := s.issueLocked(&responseTarget{kind: "action", channel: c.ChannelID, user: c.UserID,
		msgTS: c.MessageTS, ephemeral: ephemeral})
	p := map[string]any{
		"type": "block_actions", "api_app_id": s.opts.AppID, "token": "fake-verification-token",
		"trigger_id": trigger, "response_url": respURL, "is_enterprise_install": false, "enterprise": nil,
		"team": map[string]any{"id": s.opts.TeamID, "domain": "fake"},
		"user": map[string]any{"id": c.UserID, "username": s.userNameLocked(c.UserID),
			"name": s.userNameLocked(c.UserID), "team_id": s.opts.TeamID},
		"container": map[string]any{"type": "message", "message_ts": c.MessageTS, "channel_id": c.ChannelID,
			"is_ephemeral": ephemeral},
		"channel": map[string]any{"id": c.ChannelID, "name": s.channelNameLocked(c.ChannelID)},
		"state":   map[string]any{"values": map[string]any{}},
		"actions": []any{action},
	}
	if ok && !ephemeral {
		p["message"] = s.messageJSON(st.Message)
		if st.ThreadTS != "" {
			p["container"].(map[string]any)["thread_ts"] = st.ThreadTS
		}
	}
	return p, nil
}

// findAction finds the interactive element actionID (in block blockID when given) in
// a blocks array: actions and context elements, a section's accessory, an input's
// element. It returns the block's block_id and the element.
func findAction(blocks json.RawMessage, blockID, actionID string) (string, map[string]any, bool) {
	var bs []map[string]any
	if json.Unmarshal(blocks, &bs) != nil {
		return "", nil, false
	}
	for _, b := range bs {
		bid, _ := b["block_id"].(string)
		if blockID != "" && bid != blockID {
			continue
		}
		var elems []any
		if es, ok := b["elements"].([]any); ok {
			elems = append(elems, es...)
		}
		for _, k := range []string{"accessory", "element"} {
			if e, ok := b[k]; ok {
				elems = append(elems, e)
			}
		}
		for _, e := range elems {
			if m, ok := e.(map[string]any); ok && m["action_id"] == actionID {
				return bid, m, true
			}
		}
	}
	return "", nil, false
}

// fillAction copies what Slack reports about the clicked element into the action.
func fillAction(action map[string]any, blockID string, elem map[string]any, value string) {
	action["block_id"] = blockID
	if t, ok := elem["type"].(string); ok {
		action["type"] = t
	}
	if t, ok := elem["text"]; ok {
		action["text"] = t
	} else {
		delete(action, "text")
	}
	if st, ok := elem["style"]; ok {
		action["style"] = st
	}
	if value == "" {
		if v, ok := elem["value"].(string); ok {
			value = v
		}
	}
	opts, hasOptions := elem["options"].([]any)
	switch {
	case action["type"] == "button" && value != "":
		action["value"] = value
	case hasOptions:
		delete(action, "value")
		for _, o := range opts {
			if om, ok := o.(map[string]any); ok && (value == "" || om["value"] == value) {
				action["selected_option"] = om
				break
			}
		}
	}
}

// handleResponseURL records a post to a response_url and applies it: replace or delete
// the clicked message, or post a new ephemeral (default) or in_channel message.
func (s *Server) handleResponseURL(w http.ResponseWriter, r *http.Request) {
	s.recordAcks() // what the client did after an ack comes after it
	id := strings.TrimPrefix(r.URL.Path, "/response/")
	var p struct {
		Text            string          `json:"text"`
		Blocks          json.RawMessage `json:"blocks"`
		ResponseType    string          `json:"response_type"`
		ReplaceOriginal bool            `json:"replace_original"`
		DeleteOriginal  bool            `json:"delete_original"`
		ThreadTS        string          `json:"thread_ts"`
	}
	decodeErr := json.NewDecoder(r.Body).Decode(&p)

	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.responses[id]
	switch {
	case !ok:
		http.Error(w, "invalid_url", http.StatusNotFound)
		return
	case s.expireURLs:
		// Slack answers an expired hook with 404; slack-go surfaces it as StatusCodeError.
		http.Error(w, "expired_url", http.StatusNotFound)
		return
	case t.uses >= maxResponseURLUses:
		http.Error(w, "used_url", http.StatusNotFound)
		return
	case decodeErr != nil:
		writeJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "invalid_payload"})
		return
	}
	t.uses++
	blocks := compactBlocks(p.Blocks)
	if blocks != nil {
		if err := ValidateBlocks(blocks); err != nil {
			ae := blocksAPIError(err)
			writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": ae.code,
				"response_metadata": map[string]any{"messages": ae.messages}})
			return
		}
	}
	m := Message{Method: "response_url", Channel: t.channel, Text: p.Text, Blocks: blocks,
		ResponseType: p.ResponseType, Replace: p.ReplaceOriginal, Delete: p.DeleteOriginal}
	orig := s.byKey[key(t.channel, t.msgTS)]
	hasOrig := t.kind == "action" && orig != nil && !orig.deleted
	switch {
	case p.DeleteOriginal:
		if !hasOrig {
			writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "message_not_found"})
			return
		}
		orig.deleted = true
		m.TS, m.User = orig.TS, orig.User
	case p.Text == "" && blocks == nil:
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "no_text"})
		return
	case p.ReplaceOriginal && hasOrig:
		orig.Method, orig.Text, orig.Blocks = "response_url", p.Text, blocks
		m.TS, m.ThreadTS, m.User = orig.TS, orig.ThreadTS, orig.User
	default:
		m.TS, m.ThreadTS = s.nextTSLocked(), p.ThreadTS
		ephemeral := p.ResponseType != "in_channel"
		if ephemeral {
			m.User = t.user
		}
		s.storeLocked(m, ephemeral)
	}
	s.recordLocked(m)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}
