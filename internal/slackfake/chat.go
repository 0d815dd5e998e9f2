package slackfake

// This file holds the chat.* Web API methods: post, update, post ephemeral, delete, permalink,
// and the checks Slack makes of a message's text and blocks.

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
)

// content is the text and blocks of a message request.
type content struct {
	text      string
	blocks    json.RawMessage // nil when absent or an empty array
	hasText   bool
	hasBlocks bool
}

func (s *Server) parseContent(r *apiReq) (content, *apiError) {
	c := content{text: r.get("text"), hasText: r.has("text"), hasBlocks: r.has("blocks")}
	if c.hasBlocks {
		raw := json.RawMessage(r.get("blocks"))
		if len(bytes.TrimSpace(raw)) > 0 {
			if err := ValidateBlocks(raw); err != nil {
				return c, blocksAPIError(err)
			}
			c.blocks = compactBlocks(raw)
		}
	}
	if utf8.RuneCountInString(c.text) > 40000 {
		return c, errCode("msg_too_long")
	}
	return c, nil
}

func blocksAPIError(err error) *apiError {
	var be *BlocksError
	if errors.As(err, &be) {
		return &apiError{code: be.Code, messages: be.Problems}
	}
	return errCode("invalid_blocks")
}

// checkFallback applies Slack's rule for a message that has blocks but no text.
func (s *Server) checkFallback(c content, body map[string]any) *apiError {
	if c.text == "" && c.blocks == nil {
		return errCode("no_text")
	}
	if c.text == "" && c.blocks != nil {
		if s.opts.RequireTextFallback {
			return errCode("no_text")
		}
		body["warning"] = "missing_text_fallback"
		body["response_metadata"] = map[string]any{"warnings": []string{"missing_text_fallback"}}
	}
	return nil
}

// postChannelLocked resolves the channel of a post: a channel the bot is in, an IM,
// or a user ID (Slack then posts to the app's DM with that user).
func (s *Server) postChannelLocked(id string, allowUser bool) (*channel, *apiError) {
	if c, ok := s.channels[id]; ok {
		if !c.member {
			return nil, errCode("not_in_channel")
		}
		return c, nil
	}
	if u, ok := s.users[id]; ok && allowUser && !u.bot {
		for _, c := range s.channels {
			if c.im && c.imUser == id {
				return c, nil
			}
		}
		c := &channel{id: "D" + id, member: true, im: true, imUser: id}
		s.channels[c.id] = c
		return c, nil
	}
	return nil, errCode("channel_not_found")
}

func (s *Server) messageJSON(m Message) map[string]any {
	out := map[string]any{
		"type": "message", "user": s.opts.BotUserID, "bot_id": s.opts.BotID, "app_id": s.opts.AppID,
		"team": s.opts.TeamID, "text": m.Text, "ts": m.TS,
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if m.Blocks != nil {
		out["blocks"] = m.Blocks
	}
	return out
}

func (s *Server) apiPostMessage(r *apiReq) (map[string]any, *apiError) {
	ch, aerr := s.postChannelLocked(r.get("channel"), true)
	if aerr != nil {
		return nil, aerr
	}
	c, aerr := s.parseContent(r)
	if aerr != nil {
		return nil, aerr
	}
	body := map[string]any{}
	if aerr := s.checkFallback(c, body); aerr != nil {
		return nil, aerr
	}
	m := Message{Method: "chat.postMessage", Channel: ch.id, TS: s.nextTSLocked(), Text: c.text, Blocks: c.blocks}
	if t := r.get("thread_ts"); t != "" {
		// A reply to a reply lands in the root's thread.
		if p, ok := s.byKey[key(ch.id, t)]; ok && p.ThreadTS != "" {
			t = p.ThreadTS
		}
		m.ThreadTS = t
		m.Broadcast = r.get("reply_broadcast") == "true" || string(r.json["reply_broadcast"]) == "true"
	}
	s.storeLocked(m, false)
	s.recordLocked(m)
	body["channel"], body["ts"], body["message"] = ch.id, m.TS, s.messageJSON(m)
	return body, nil
}

func (s *Server) apiUpdate(r *apiReq) (map[string]any, *apiError) {
	chID := r.get("channel")
	if _, ok := s.channels[chID]; !ok {
		return nil, errCode("channel_not_found")
	}
	st, ok := s.byKey[key(chID, r.get("ts"))]
	if !ok || st.deleted || st.ephemeral {
		// Ephemeral messages can be changed only through their response_url.
		return nil, errCode("message_not_found")
	}
	c, aerr := s.parseContent(r)
	if aerr != nil {
		return nil, aerr
	}
	if !c.hasText && !c.hasBlocks {
		return nil, errCode("no_text")
	}
	next := st.Message
	if c.hasText {
		next.Text = c.text
	}
	if c.hasBlocks {
		// An empty array clears the blocks; an omitted field keeps them.
		next.Blocks = c.blocks
	}
	body := map[string]any{}
	if aerr := s.checkFallback(content{text: next.Text, blocks: next.Blocks}, body); aerr != nil {
		return nil, aerr
	}
	next.Method = "chat.update"
	st.Message = cloneMessage(next)
	s.recordLocked(next)
	body["channel"], body["ts"], body["text"], body["message"] = chID, next.TS, next.Text, s.messageJSON(next)
	return body, nil
}

func (s *Server) apiPostEphemeral(r *apiReq) (map[string]any, *apiError) {
	ch, aerr := s.postChannelLocked(r.get("channel"), false)
	if aerr != nil {
		return nil, aerr
	}
	target := r.get("user")
	if u, ok := s.users[target]; !ok || u.bot {
		return nil, errCode("user_not_found")
	}
	c, aerr := s.parseContent(r)
	if aerr != nil {
		return nil, aerr
	}
	body := map[string]any{}
	if aerr := s.checkFallback(c, body); aerr != nil {
		return nil, aerr
	}
	m := Message{Method: "chat.postEphemeral", Channel: ch.id, TS: s.nextTSLocked(), ThreadTS: r.get("thread_ts"),
		User: target, Text: c.text, Blocks: c.blocks}
	s.storeLocked(m, true)
	s.recordLocked(m)
	body["message_ts"] = m.TS
	return body, nil
}

// liveMessageLocked finds a channel message that still exists (not ephemeral, not deleted), with
// Slack's error codes when it does not.
func (s *Server) liveMessageLocked(chID, ts string) (*stored, *apiError) {
	if _, ok := s.channels[chID]; !ok {
		return nil, errCode("channel_not_found")
	}
	st, ok := s.byKey[key(chID, ts)]
	if !ok || st.deleted || st.ephemeral {
		return nil, errCode("message_not_found")
	}
	return st, nil
}

func (s *Server) apiDelete(r *apiReq) (map[string]any, *apiError) {
	chID, ts := r.get("channel"), r.get("ts")
	st, aerr := s.liveMessageLocked(chID, ts)
	if aerr != nil {
		return nil, aerr
	}
	st.deleted = true
	s.recordLocked(Message{Method: "chat.delete", Channel: chID, TS: ts, ThreadTS: st.ThreadTS})
	return map[string]any{"channel": chID, "ts": ts}, nil
}

// apiGetPermalink answers like Slack: a URL under the workspace with the ts's dot removed, and
// thread_ts/cid for a thread reply; ephemeral and deleted messages are not found.
func (s *Server) apiGetPermalink(r *apiReq) (map[string]any, *apiError) {
	chID, ts := r.get("channel"), r.get("message_ts")
	st, aerr := s.liveMessageLocked(chID, ts)
	if aerr != nil {
		return nil, aerr
	}
	link := "https://fake.slack.com/archives/" + chID + "/p" + strings.Replace(ts, ".", "", 1)
	if st.ThreadTS != "" && st.ThreadTS != ts {
		link += "?thread_ts=" + st.ThreadTS + "&cid=" + chID
	}
	return map[string]any{"channel": chID, "permalink": link}, nil
}
