package slackfake

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
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
	s.recordAcks() // what the client did after an ack comes after it
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	req, perr := parseAPIRequest(r)

	s.mu.Lock()
	delay, ok := s.latency[method]
	if !ok {
		delay = s.latency["*"]
	}
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return // the client gave up: nothing was done
		}
	}

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
		if f := s.httpFails[method]; f != nil && f.n > 0 {
			f.n--
			status, aerr = f.status, errCode("internal_error")
		} else {
			body, aerr, retryAfter = s.dispatchLocked(method, req, call.At)
		}
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
