package slackfake

import (
	"context"
	"fmt"
	"strings"
)

// MessageShortcut is a user choosing a message shortcut ("Contain this user") in the "…" menu
// of a channel message.
type MessageShortcut struct {
	UserID     string
	ChannelID  string
	MessageTS  string // a message in ChannelID (PostAs, or one the app posted)
	CallbackID string // the shortcut's callback_id from the manifest
}

// PostAs stores a message written by someone other than the app (a person, a monitoring
// integration), as a message shortcut's target, and returns its ts. It is not recorded among
// the app's sends (Messages); Channel shows it, with Method "user:<author>". author is a user or
// bot ID; text is mrkdwn as Slack stores it (a pasted address arrives as <mailto:a@b|a@b>).
func (s *Server) PostAs(channel, author, text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := Message{Method: "user:" + author, Channel: channel, TS: s.nextTSLocked(), Text: text}
	s.storeLocked(m, false)
	return m.TS
}

// MessageShortcut delivers an interactive envelope of type message_action with the payload
// Slack builds: callback_id, trigger_id, response_url, the user, the channel and the message
// (type, user, text, ts). It returns the envelope_id, ErrNoSuchMessage (wrapped) when the
// message does not exist, or SendEnvelope's errors.
func (s *Server) MessageShortcut(ctx context.Context, c MessageShortcut) (string, error) {
	envID := newEnvelopeID()
	s.mu.Lock()
	st, ok := s.byKey[key(c.ChannelID, c.MessageTS)]
	if !ok || st.deleted || st.ephemeral {
		s.mu.Unlock()
		return "", fmt.Errorf("slackfake: shortcut on %s/%s: %w", c.ChannelID, c.MessageTS, ErrNoSuchMessage)
	}
	author := s.opts.BotUserID
	if a, ok := strings.CutPrefix(st.Method, "user:"); ok {
		author = a
	}
	respURL, trigger := s.issueLocked(&responseTarget{kind: "action", channel: c.ChannelID, user: c.UserID, msgTS: c.MessageTS})
	payload := map[string]any{
		"type": "message_action", "callback_id": c.CallbackID, "api_app_id": s.opts.AppID,
		"token": "fake-verification-token", "trigger_id": trigger, "response_url": respURL,
		"message_ts": c.MessageTS, "action_ts": st.TS, "is_enterprise_install": false, "enterprise": nil,
		"team": map[string]any{"id": s.opts.TeamID, "domain": "fake"},
		"user": map[string]any{"id": c.UserID, "username": s.userNameLocked(c.UserID),
			"name": s.userNameLocked(c.UserID), "team_id": s.opts.TeamID},
		"channel": map[string]any{"id": c.ChannelID, "name": s.channelNameLocked(c.ChannelID)},
		"message": map[string]any{"type": "message", "user": author, "text": st.Text, "ts": st.TS},
	}
	s.envelopes[envID] = envelopeInfo{kind: "interactive", channel: c.ChannelID, user: c.UserID}
	s.mu.Unlock()
	return s.sendEnvelopeOf(ctx, envID, "interactive", false, payload)
}
