package slackfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// apiReq is one Web API request, form or JSON, with its token.
type apiReq struct {
	form  url.Values
	json  map[string]json.RawMessage
	raw   json.RawMessage
	token string
}

// has reports whether the request carries field k at all.
func (r *apiReq) has(k string) bool {
	if _, ok := r.form[k]; ok {
		return true
	}
	_, ok := r.json[k]
	return ok
}

// get returns field k: a form value, a JSON string, or other JSON as its raw text
// (so "blocks" reads the same from a form and from a JSON body).
func (r *apiReq) get(k string) string {
	if v, ok := r.form[k]; ok && len(v) > 0 {
		return v[0]
	}
	raw, ok := r.json[k]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if string(raw) == "null" {
		return ""
	}
	return string(raw)
}

type apiError struct {
	code     string
	messages []string // response_metadata.messages, e.g. the invalid_blocks details
}

func errCode(code string) *apiError { return &apiError{code: code} }

type apiHandler func(*Server, *apiReq) (map[string]any, *apiError)

// apiMethods are the Web API methods the fake implements; anything else answers
// unknown_method, as Slack does.
var apiMethods = map[string]apiHandler{
	"apps.connections.open": func(s *Server, _ *apiReq) (map[string]any, *apiError) { return s.openConnectionLocked(), nil },
	"auth.test":             (*Server).apiAuthTest,
	"chat.postMessage":      (*Server).apiPostMessage,
	"chat.update":           (*Server).apiUpdate,
	"chat.postEphemeral":    (*Server).apiPostEphemeral,
	"chat.delete":           (*Server).apiDelete,
	"chat.getPermalink":     (*Server).apiGetPermalink,
	"users.info":            (*Server).apiUsersInfo,
	"usergroups.users.list": (*Server).apiUserGroupMembers,
	"conversations.info":    (*Server).apiConversationsInfo,
	"conversations.join":    (*Server).apiConversationsJoin,
	"views.open":            (*Server).apiViewsOpen,
}

func parseAPIRequest(r *http.Request) (*apiReq, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	req := &apiReq{form: r.URL.Query()}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		req.raw = append(json.RawMessage(nil), body...)
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &req.json); err != nil {
				return nil, err
			}
		}
	} else {
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		for k, v := range vals {
			req.form[k] = append(req.form[k], v...)
		}
	}
	if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		req.token = strings.TrimSpace(auth)
	}
	if req.token == "" {
		req.token = req.get("token")
	}
	return req, nil
}

func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	req, perr := parseAPIRequest(r)

	s.mu.Lock()
	call := APICall{Method: method, At: time.Now()}
	var (
		status     = http.StatusOK
		retryAfter int
		body       map[string]any
		aerr       *apiError
	)
	if perr != nil {
		aerr = errCode("invalid_form_data")
	} else {
		call.Form = cloneValues(req.form)
		if call.Form.Has("token") {
			call.Form.Set("token", "REDACTED")
		}
		call.JSON = req.raw
		body, aerr, retryAfter = s.dispatchLocked(method, req, call.At)
		if retryAfter > 0 {
			status = http.StatusTooManyRequests
		}
	}
	if aerr != nil {
		call.Error = aerr.code
		body = map[string]any{"ok": false, "error": aerr.code}
		if len(aerr.messages) > 0 {
			body["response_metadata"] = map[string]any{"messages": aerr.messages}
		}
	} else {
		body["ok"] = true
	}
	s.calls = append(s.calls, call)
	s.countLocked(method, status)
	s.notifyLocked()
	s.mu.Unlock()

	if aerr != nil {
		s.log.Debug().Str("method", method).Str("error", aerr.code).Msg("web api refused")
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	writeJSON(w, status, body)
}

// dispatchLocked checks the method, the token and the fault knobs, then runs the
// method. A positive retryAfter means answer 429.
func (s *Server) dispatchLocked(method string, req *apiReq, now time.Time) (map[string]any, *apiError, int) {
	h, ok := apiMethods[method]
	if !ok {
		return nil, errCode("unknown_method"), 0
	}
	want := s.opts.BotToken
	if method == "apps.connections.open" {
		want = s.opts.AppToken
	}
	switch {
	case req.token == "":
		return nil, errCode("not_authed"), 0
	case req.token != want:
		return nil, errCode("invalid_auth"), 0
	}
	if f := s.limits[method]; f != nil && f.n > 0 {
		f.n--
		return nil, errCode("ratelimited"), max(f.retryAfter, 1)
	}
	if ra := s.rateLimitedLocked(method, req, now); ra > 0 {
		return nil, errCode("ratelimited"), ra
	}
	if f := s.failures[method]; f != nil && f.n > 0 {
		f.n--
		return nil, errCode(f.code), 0
	}
	body, aerr := h(s, req)
	if aerr == nil && body == nil {
		body = map[string]any{}
	}
	return body, aerr, 0
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) apiAuthTest(*apiReq) (map[string]any, *apiError) {
	return map[string]any{
		"url": "https://fake.slack.com/", "team": "Fake Workspace", "user": s.userNameLocked(s.opts.BotUserID),
		"team_id": s.opts.TeamID, "user_id": s.opts.BotUserID, "bot_id": s.opts.BotID,
		"is_enterprise_install": false,
	}, nil
}

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

func (s *Server) apiUsersInfo(r *apiReq) (map[string]any, *apiError) {
	u, ok := s.users[r.get("user")]
	if !ok {
		return nil, errCode("user_not_found")
	}
	return map[string]any{"user": map[string]any{
		"id": u.id, "team_id": s.opts.TeamID, "name": u.name, "real_name": u.name, "deleted": false,
		"is_bot": u.bot, "is_admin": false, "tz": "UTC", "tz_label": "Coordinated Universal Time", "tz_offset": 0,
		"profile": map[string]any{"display_name": u.name, "real_name": u.name, "team": s.opts.TeamID},
	}}, nil
}

func (s *Server) apiUserGroupMembers(r *apiReq) (map[string]any, *apiError) {
	members, ok := s.groups[r.get("usergroup")]
	if !ok {
		return nil, errCode("no_such_subteam")
	}
	return map[string]any{"users": append([]string{}, members...)}, nil
}

func (s *Server) channelJSON(c *channel) map[string]any {
	out := map[string]any{
		"id": c.id, "created": 1700000000, "is_channel": !c.im, "is_group": false, "is_im": c.im,
		"is_mpim": false, "is_private": false, "is_archived": false, "is_general": false,
		"is_member": c.member,
	}
	if c.im {
		out["user"] = c.imUser
	} else {
		out["name"] = c.name
		out["name_normalized"] = c.name
	}
	return out
}

func (s *Server) apiConversationsInfo(r *apiReq) (map[string]any, *apiError) {
	c, ok := s.channels[r.get("channel")]
	if !ok {
		return nil, errCode("channel_not_found")
	}
	return map[string]any{"channel": s.channelJSON(c)}, nil
}

func (s *Server) apiConversationsJoin(r *apiReq) (map[string]any, *apiError) {
	c, ok := s.channels[r.get("channel")]
	if !ok {
		return nil, errCode("channel_not_found")
	}
	if c.im {
		return nil, errCode("method_not_supported_for_channel_type")
	}
	body := map[string]any{}
	if c.member {
		body["warning"] = "already_in_channel"
	}
	c.member = true
	body["channel"] = s.channelJSON(c)
	return body, nil
}

// triggerTTL is how long a trigger_id can open a view (Slack: 3 s, single use).
const triggerTTL = 3 * time.Second

func (s *Server) apiViewsOpen(r *apiReq) (map[string]any, *apiError) {
	tid := r.get("trigger_id")
	tr, ok := s.triggers[tid]
	switch {
	case tid == "":
		return nil, errCode("invalid_arguments")
	case !ok:
		return nil, errCode("invalid_trigger_id")
	case tr.used:
		return nil, errCode("exchanged_trigger_id")
	case time.Since(tr.at) > triggerTTL:
		return nil, errCode("expired_trigger_id")
	}
	var view map[string]json.RawMessage
	if json.Unmarshal([]byte(r.get("view")), &view) != nil {
		return nil, errCode("invalid_arguments")
	}
	var typ, pm string
	_ = json.Unmarshal(view["type"], &typ)
	_ = json.Unmarshal(view["private_metadata"], &pm)
	if typ != "modal" {
		return nil, errCode("invalid_arguments")
	}
	if utf8.RuneCountInString(pm) > 3000 {
		return nil, &apiError{code: "invalid_arguments", messages: []string{
			"[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]"}}
	}
	if err := validateBlocks(view["blocks"], 100, "/view/blocks"); err != nil {
		return nil, blocksAPIError(err)
	}
	tr.used = true
	out := map[string]any{}
	for k, v := range view {
		out[k] = v
	}
	id := s.nextIDLocked("V")
	out["id"], out["team_id"], out["app_id"], out["bot_id"] = id, s.opts.TeamID, s.opts.AppID, s.opts.BotID
	out["hash"], out["root_view_id"], out["state"] = id+".hash", id, map[string]any{"values": map[string]any{}}
	s.views = append(s.views, &openView{id: id, user: tr.user, view: out})
	s.notifyLocked()
	return map[string]any{"view": out}, nil
}

// compactBlocks normalizes a blocks array for storage and comparison; an empty array
// or null becomes nil.
func compactBlocks(raw json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil
	}
	if b := buf.String(); b == "[]" || b == "null" || b == "" {
		return nil
	}
	return json.RawMessage(buf.Bytes())
}
