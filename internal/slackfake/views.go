package slackfake

// This file holds the modals: views.open (with the checks Slack makes of a modal), the views a
// test reads back, and a user submitting one (view_submission), with the checks Slack's client
// makes before it sends a submission at all.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// trigger is a trigger_id handed out with an envelope: it opens one view within 3 s.
type trigger struct {
	at   time.Time
	user string
	used bool
}

// openView is a modal opened with views.open.
type openView struct {
	id     string
	user   string
	view   map[string]any // as answered by views.open
	closed bool           // a submission's ack closed it
}

// closesView reports whether a view_submission's ack closes the modal, as Slack does: a bare
// ack or response_action clear does; errors, update and push keep it open.
func closesView(payload json.RawMessage) bool {
	var p struct {
		Action string `json:"response_action"`
	}
	if len(payload) == 0 || json.Unmarshal(payload, &p) != nil {
		return true
	}
	return p.Action == "" || p.Action == "clear"
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
	var typ string
	_ = json.Unmarshal(view["type"], &typ)
	if typ != "modal" {
		return nil, errCode("invalid_arguments")
	}
	if problems := checkModal(view); len(problems) > 0 {
		return nil, &apiError{code: "invalid_arguments", messages: problems}
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

// checkModal applies Slack's rules for a modal's own fields: a plain_text title of at most 24
// characters; a submit button (plain_text, ≤ 24) when the view has an input block; close ≤ 24;
// callback_id ≤ 255 and private_metadata ≤ 3000 characters.
func checkModal(view map[string]json.RawMessage) []string {
	c := &checker{}
	parse := func(k string) any {
		var v any
		if raw, ok := view[k]; ok && json.Unmarshal(raw, &v) == nil {
			return v
		}
		return nil
	}
	if t := parse("title"); t == nil {
		c.add("/view/title", "must be provided")
	} else {
		c.text("/view/title", t, 24, true)
	}
	hasInput := false
	var blocks []map[string]any
	if json.Unmarshal(view["blocks"], &blocks) == nil {
		for _, b := range blocks {
			hasInput = hasInput || b["type"] == "input"
		}
	}
	switch sub := parse("submit"); {
	case sub != nil:
		c.text("/view/submit", sub, 24, true)
	case hasInput:
		c.add("/view/submit", "must provide a submit property when using input blocks")
	}
	if cl := parse("close"); cl != nil {
		c.text("/view/close", cl, 24, true)
	}
	top := map[string]any{"callback_id": parse("callback_id"), "private_metadata": parse("private_metadata")}
	for k, v := range top {
		if v == nil {
			delete(top, k)
		}
	}
	c.maxLen("/view", top, "callback_id", 255)
	c.maxLen("/view", top, "private_metadata", 3000)
	return c.problems
}

// View is a modal as views.open answered it, for a test to read.
type View struct {
	ID, User, CallbackID, PrivateMetadata string
	Blocks                                json.RawMessage
	Closed                                bool // a submission's ack closed it
}

// Views returns the modals opened so far, oldest first.
func (s *Server) Views() []View {
	s.recordAcks() // a view's closing is in its submission's ack
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]View, 0, len(s.views))
	for _, v := range s.views {
		w := View{ID: v.id, User: v.user, Closed: v.closed}
		raw := func(k string) json.RawMessage { r, _ := v.view[k].(json.RawMessage); return r }
		_ = json.Unmarshal(raw("callback_id"), &w.CallbackID)
		_ = json.Unmarshal(raw("private_metadata"), &w.PrivateMetadata)
		w.Blocks = compactBlocks(raw("blocks"))
		out = append(out, w)
	}
	return out
}

// ViewSubmission is a user submitting an open modal.
type ViewSubmission struct {
	UserID string // default: the user whose trigger_id opened the view
	ViewID string // default: the view opened last (by UserID when it is set)
	// Values are the text inputs' values: block_id → action_id → text. Each becomes a
	// plain_text_input state value.
	Values map[string]map[string]string
	// Selected are the static selects' choices: block_id → action_id → the chosen option's value.
	// Each becomes a static_select state value with that option (its text from the view).
	Selected map[string]map[string]string
	// Forged delivers the values as given, without the checks Slack's client makes before it
	// sends a submission (each value belongs to an input of the view and of its type, a select's
	// value is one of its options, every required input has one): what a test of the app's own
	// checks needs, since a real submission can only break them when the view went stale.
	Forged bool
}

// ErrNoSuchView is returned by SubmitView when no matching view is open.
var ErrNoSuchView = errors.New("slackfake: no such view")

// ErrInvalidSubmission is returned by SubmitView for a submission Slack's client would not send
// (a required input left empty, a value for no input of the view, an option not offered).
var ErrInvalidSubmission = errors.New("slackfake: Slack's client would not send this submission")

// SubmitView delivers a view_submission envelope (accepts_response_payload true) for a
// view opened with views.open and still open (the bare or clear ack of a submission closes
// it, as in Slack; an errors ack keeps it): its id, callback_id, private_metadata, hash, blocks and the
// given state values. The ack's payload (response_action errors/update/…) is in
// WaitAck's Ack. It returns the envelope_id, ErrNoSuchView or ErrInvalidSubmission (wrapped),
// or SendEnvelope's errors.
func (s *Server) SubmitView(ctx context.Context, v ViewSubmission) (string, error) {
	envID := newEnvelopeID()
	s.mu.Lock()
	var ov *openView
	for i := len(s.views) - 1; i >= 0; i-- {
		c := s.views[i]
		if !c.closed && (v.ViewID == "" || c.id == v.ViewID) && (v.ViewID != "" || v.UserID == "" || c.user == v.UserID) {
			ov = c
			break
		}
	}
	if ov == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("slackfake: submit view %q: %w", v.ViewID, ErrNoSuchView)
	}
	if v.UserID == "" {
		v.UserID = ov.user
	}
	inputs := viewInputs(ov.view)
	values, err := submissionValues(inputs, v)
	if err != nil {
		s.mu.Unlock()
		return "", fmt.Errorf("slackfake: submit view %s: %w", ov.id, err)
	}
	view := map[string]any{}
	for k, val := range ov.view {
		view[k] = val
	}
	view["state"] = map[string]any{"values": values}
	_, tid := s.issueLocked(&responseTarget{kind: "view", user: v.UserID})
	payload := map[string]any{
		"type": "view_submission", "api_app_id": s.opts.AppID, "token": "fake-verification-token",
		"trigger_id": tid, "is_enterprise_install": false, "enterprise": nil, "response_urls": []any{},
		"team": map[string]any{"id": s.opts.TeamID, "domain": "fake"},
		"user": map[string]any{"id": v.UserID, "username": s.userNameLocked(v.UserID),
			"name": s.userNameLocked(v.UserID), "team_id": s.opts.TeamID},
		"view": view,
	}
	s.envelopes[envID] = envelopeInfo{kind: "interactive", user: v.UserID, view: ov}
	s.mu.Unlock()
	return s.sendEnvelopeOf(ctx, envID, "interactive", true, payload)
}

// input is one input block of a view: its element's action_id and type, whether it may be left
// empty, and a select's options (value → text object).
type input struct {
	blockID, actionID, typ string
	optional               bool
	options                map[string]any
}

type option struct {
	Text  any    `json:"text"`
	Value string `json:"value"`
}

// viewInputs reads a view's input blocks.
func viewInputs(view map[string]any) []input {
	raw, _ := view["blocks"].(json.RawMessage)
	var blocks []struct {
		Type     string `json:"type"`
		BlockID  string `json:"block_id"`
		Optional bool   `json:"optional"`
		Element  struct {
			Type     string   `json:"type"`
			ActionID string   `json:"action_id"`
			Options  []option `json:"options"`
			Groups   []struct {
				Options []option `json:"options"`
			} `json:"option_groups"`
		} `json:"element"`
	}
	_ = json.Unmarshal(raw, &blocks)
	var out []input
	for _, b := range blocks {
		if b.Type != "input" {
			continue
		}
		in := input{blockID: b.BlockID, actionID: b.Element.ActionID, typ: b.Element.Type, optional: b.Optional,
			options: map[string]any{}}
		opts := b.Element.Options
		for _, g := range b.Element.Groups {
			opts = append(opts, g.Options...)
		}
		for _, o := range opts {
			in.options[o.Value] = o.Text
		}
		out = append(out, in)
	}
	return out
}

// submissionValues builds state.values from a submission, checking it as Slack's client does
// unless it is forged.
func submissionValues(inputs []input, v ViewSubmission) (map[string]any, error) {
	find := func(block, action string) *input {
		for i := range inputs {
			if inputs[i].blockID == block && inputs[i].actionID == action {
				return &inputs[i]
			}
		}
		return nil
	}
	values := map[string]any{}
	set := func(block, action string, val any) {
		m, _ := values[block].(map[string]any)
		if m == nil {
			m = map[string]any{}
			values[block] = m
		}
		m[action] = val
	}
	for b, as := range v.Values {
		for a, text := range as {
			if in := find(b, a); !v.Forged && (in == nil || in.typ != "plain_text_input") {
				return nil, fmt.Errorf("%w: no text input %s/%s in the view", ErrInvalidSubmission, b, a)
			}
			set(b, a, map[string]any{"type": "plain_text_input", "value": text})
		}
	}
	for b, as := range v.Selected {
		for a, val := range as {
			in := find(b, a)
			if !v.Forged && (in == nil || in.typ != "static_select") {
				return nil, fmt.Errorf("%w: no static select %s/%s in the view", ErrInvalidSubmission, b, a)
			}
			var text any = map[string]any{"type": "plain_text", "text": val}
			if in != nil && in.options[val] != nil {
				text = in.options[val]
			} else if !v.Forged {
				return nil, fmt.Errorf("%w: %q is not an option of %s/%s", ErrInvalidSubmission, val, b, a)
			}
			set(b, a, map[string]any{"type": "static_select", "selected_option": map[string]any{"text": text, "value": val}})
		}
	}
	if !v.Forged {
		for _, in := range inputs {
			m, _ := values[in.blockID].(map[string]any)
			if !in.optional && m[in.actionID] == nil {
				return nil, fmt.Errorf("%w: the required input %s is empty", ErrInvalidSubmission, in.blockID)
			}
		}
	}
	return values, nil
}
