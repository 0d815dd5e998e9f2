package slackfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// BlocksError is Slack's refusal of a blocks array. Code is invalid_blocks_format (not
// a JSON array of objects) or invalid_blocks; Problems are Slack-style lines such as
// "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]",
// which Slack returns in response_metadata.messages.
type BlocksError struct {
	Code     string
	Problems []string
}

// Error lists the code and every problem.
func (e *BlocksError) Error() string {
	return "slackfake: " + e.Code + ": " + strings.Join(e.Problems, "; ")
}

// ValidateBlocks checks a message's blocks against the Block Kit limits that make
// Slack refuse a message: at most 50 blocks; known block and element types; unique
// block_ids (≤ 255) in the message; unique action_ids (≤ 255) within a block; at most
// 25 elements in an actions block and 10 in a context block; section text ≤ 3000,
// fields ≤ 10 of ≤ 2000; header ≤ 150; button text ≤ 75, value ≤ 2000, url ≤ 3000;
// confirm title ≤ 100, text ≤ 300, confirm/deny ≤ 30; a static select's options (see
// options); text objects non-empty. It
// returns nil or a *BlocksError. It is exported so that renderers can be tested
// without a server.
func ValidateBlocks(blocks json.RawMessage) error {
	return validateBlocks(blocks, 50, "/blocks")
}

type checker struct {
	problems []string
}

func (c *checker) add(ptr, format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf("[ERROR] %s [json-pointer:%s]", fmt.Sprintf(format, args...), ptr))
}

func validateBlocks(raw json.RawMessage, maxBlocks int, root string) error {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	var blocks []map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&blocks); err != nil {
		return &BlocksError{Code: "invalid_blocks_format", Problems: []string{
			fmt.Sprintf("[ERROR] blocks must be a JSON array of objects [json-pointer:%s]", root)}}
	}
	c := &checker{}
	if len(blocks) > maxBlocks {
		c.add(root, "no more than %d items allowed", maxBlocks)
	}
	ids := map[string]bool{}
	for i, b := range blocks {
		c.block(fmt.Sprintf("%s/%d", root, i), b, ids)
	}
	if len(c.problems) > 0 {
		return &BlocksError{Code: "invalid_blocks", Problems: c.problems}
	}
	return nil
}

// str reads a string field; ok is false when it is present with another type.
func str(m map[string]any, k string) (s string, present, ok bool) {
	v, present := m[k]
	if !present {
		return "", false, true
	}
	s, ok = v.(string)
	return s, true, ok
}

// maxLen checks an optional string field's length in characters.
func (c *checker) maxLen(ptr string, m map[string]any, k string, limit int) {
	s, present, ok := str(m, k)
	switch {
	case !present:
	case !ok:
		c.add(ptr+"/"+k, "must be a string")
	case utf8.RuneCountInString(s) > limit:
		c.add(ptr+"/"+k, "must be less than %d characters", limit+1)
	}
}

func (c *checker) block(ptr string, b map[string]any, ids map[string]bool) {
	if b == nil {
		c.add(ptr, "must be an object")
		return
	}
	if id, present, ok := str(b, "block_id"); present {
		switch {
		case !ok:
			c.add(ptr+"/block_id", "must be a string")
		case utf8.RuneCountInString(id) > 255:
			c.add(ptr+"/block_id", "must be less than 256 characters")
		case ids[id]:
			c.add(ptr+"/block_id", "duplicate block_id %q", id)
		default:
			ids[id] = true
		}
	}
	typ, _, _ := str(b, "type")
	switch typ {
	case "section":
		hasText := b["text"] != nil
		if hasText {
			c.text(ptr+"/text", b["text"], 3000, false)
		}
		fields, hasFields := b["fields"].([]any)
		if hasFields {
			if len(fields) > 10 {
				c.add(ptr+"/fields", "no more than 10 items allowed")
			}
			for i, f := range fields {
				c.text(fmt.Sprintf("%s/fields/%d", ptr, i), f, 2000, false)
			}
		}
		if !hasText && !hasFields {
			c.add(ptr, "must provide either text or fields")
		}
		if a, ok := b["accessory"]; ok {
			c.element(ptr+"/accessory", a)
		}
	case "header":
		if b["text"] == nil {
			c.add(ptr+"/text", "must be provided")
		} else {
			c.text(ptr+"/text", b["text"], 150, true)
		}
	case "actions":
		c.elements(ptr, b, 25, true)
	case "context":
		c.elements(ptr, b, 10, false)
	case "divider":
	case "image":
		c.maxLen(ptr, b, "image_url", 3000)
		c.maxLen(ptr, b, "alt_text", 2000)
	case "input":
		if b["label"] == nil {
			c.add(ptr+"/label", "must be provided")
		} else {
			c.text(ptr+"/label", b["label"], 2000, true)
		}
		if e, ok := b["element"]; ok {
			c.element(ptr+"/element", e)
		} else {
			c.add(ptr+"/element", "must be provided")
		}
	case "markdown":
		c.maxLen(ptr, b, "text", 12000)
	case "rich_text", "file", "video", "table", "call", "context_actions", "plan", "task_card", "card",
		"alert", "carousel", "data_table", "data_visualization":
		// Accepted without a closer look: the bot does not render these.
	case "":
		c.add(ptr+"/type", "must be provided")
	default:
		c.add(ptr+"/type", "unsupported block type %q", typ)
	}
}

// elements checks an actions or context block's element list.
func (c *checker) elements(ptr string, b map[string]any, limit int, interactive bool) {
	es, ok := b["elements"].([]any)
	if !ok || len(es) == 0 {
		c.add(ptr+"/elements", "must provide at least 1 item")
		return
	}
	if len(es) > limit {
		c.add(ptr+"/elements", "no more than %d items allowed", limit)
	}
	actionIDs := map[string]bool{}
	for i, e := range es {
		ep := fmt.Sprintf("%s/elements/%d", ptr, i)
		if !interactive {
			m, _ := e.(map[string]any)
			if t, _, _ := str(m, "type"); t == "image" {
				c.maxLen(ep, m, "image_url", 3000)
				continue
			}
			c.text(ep, e, 3000, false)
			continue
		}
		if id := c.element(ep, e); id != "" {
			if actionIDs[id] {
				c.add(ep+"/action_id", "duplicate action_id %q in this block", id)
			}
			actionIDs[id] = true
		}
	}
}

var knownElements = map[string]bool{
	"button": true, "checkboxes": true, "datepicker": true, "datetimepicker": true, "email_text_input": true,
	"image": true, "multi_static_select": true, "multi_external_select": true, "multi_users_select": true,
	"multi_conversations_select": true, "multi_channels_select": true, "number_input": true, "overflow": true,
	"plain_text_input": true, "radio_buttons": true, "rich_text_input": true, "static_select": true,
	"external_select": true, "users_select": true, "conversations_select": true, "channels_select": true,
	"timepicker": true, "url_text_input": true, "file_input": true, "workflow_button": true,
}

// element checks an interactive element and returns its action_id.
func (c *checker) element(ptr string, e any) string {
	m, ok := e.(map[string]any)
	if !ok {
		c.add(ptr, "must be an object")
		return ""
	}
	typ, _, _ := str(m, "type")
	if !knownElements[typ] {
		c.add(ptr+"/type", "unsupported element type %q", typ)
		return ""
	}
	c.maxLen(ptr, m, "action_id", 255)
	id, _, _ := str(m, "action_id")
	if cf, ok := m["confirm"]; ok {
		c.confirm(ptr+"/confirm", cf)
	}
	if p, ok := m["placeholder"]; ok {
		c.text(ptr+"/placeholder", p, 150, true)
	}
	if typ == "static_select" {
		c.options(ptr, m)
	}
	if typ == "button" {
		if m["text"] == nil {
			c.add(ptr+"/text", "must be provided")
		} else {
			c.text(ptr+"/text", m["text"], 75, true)
		}
		c.maxLen(ptr, m, "value", 2000)
		c.maxLen(ptr, m, "url", 3000)
		c.maxLen(ptr, m, "accessibility_label", 75)
		if st, present, _ := str(m, "style"); present && st != "primary" && st != "danger" {
			c.add(ptr+"/style", "must be one of [primary, danger]")
		}
	}
	return id
}

// options checks a static select's choices: options (1–100) or option_groups (1–100, each with
// a plain_text label ≤ 75 and 1–100 options), not both; each option a plain_text text ≤ 75 and a
// value of 1–150 characters, unique in the select; an initial_option must be one of them.
func (c *checker) options(ptr string, m map[string]any) {
	opts, hasOpts := m["options"].([]any)
	groups, hasGroups := m["option_groups"].([]any)
	values := map[string]bool{}
	list := func(ptr string, os []any) {
		switch {
		case len(os) == 0:
			c.add(ptr, "must provide at least 1 item")
		case len(os) > 100:
			c.add(ptr, "no more than 100 items allowed")
		}
		for i, o := range os {
			op := fmt.Sprintf("%s/%d", ptr, i)
			om, ok := o.(map[string]any)
			if !ok {
				c.add(op, "must be an object")
				continue
			}
			if om["text"] == nil {
				c.add(op+"/text", "must be provided")
			} else {
				c.text(op+"/text", om["text"], 75, true)
			}
			switch v, _, ok := str(om, "value"); {
			case !ok || v == "":
				c.add(op+"/value", "must be a string of at least 1 character")
			case utf8.RuneCountInString(v) > 150:
				c.add(op+"/value", "must be less than 151 characters")
			case values[v]:
				c.add(op+"/value", "duplicate option value %q", v)
			default:
				values[v] = true
			}
		}
	}
	switch {
	case hasOpts && hasGroups:
		c.add(ptr, "must provide either options or option_groups, not both")
	case hasOpts:
		list(ptr+"/options", opts)
	case hasGroups:
		if len(groups) == 0 || len(groups) > 100 {
			c.add(ptr+"/option_groups", "must provide 1 to 100 items")
		}
		for i, g := range groups {
			gp := fmt.Sprintf("%s/option_groups/%d", ptr, i)
			gm, _ := g.(map[string]any)
			if gm["label"] == nil {
				c.add(gp+"/label", "must be provided")
			} else {
				c.text(gp+"/label", gm["label"], 75, true)
			}
			os, _ := gm["options"].([]any)
			list(gp+"/options", os)
		}
	default:
		c.add(ptr+"/options", "must provide options or option_groups")
	}
	if io, ok := m["initial_option"].(map[string]any); ok {
		if v, _, _ := str(io, "value"); !values[v] {
			c.add(ptr+"/initial_option", "must match one of the options")
		}
	}
}

func (c *checker) confirm(ptr string, v any) {
	m, ok := v.(map[string]any)
	if !ok {
		c.add(ptr, "must be an object")
		return
	}
	for _, f := range []struct {
		k         string
		limit     int
		plainOnly bool
	}{{"title", 100, true}, {"text", 300, false}, {"confirm", 30, true}, {"deny", 30, true}} {
		if m[f.k] == nil {
			c.add(ptr+"/"+f.k, "must be provided")
			continue
		}
		c.text(ptr+"/"+f.k, m[f.k], f.limit, f.plainOnly)
	}
	if st, present, _ := str(m, "style"); present && st != "primary" && st != "danger" {
		c.add(ptr+"/style", "must be one of [primary, danger]")
	}
}

// text checks a text object: plain_text or mrkdwn, 1..limit characters.
func (c *checker) text(ptr string, v any, limit int, plainOnly bool) {
	m, ok := v.(map[string]any)
	if !ok {
		c.add(ptr, "must be a text object")
		return
	}
	typ, _, _ := str(m, "type")
	switch {
	case typ == "plain_text":
	case typ == "mrkdwn" && !plainOnly:
	case plainOnly:
		c.add(ptr+"/type", "must be one of [plain_text]")
	default:
		c.add(ptr+"/type", "must be one of [plain_text, mrkdwn]")
	}
	s, _, ok := str(m, "text")
	switch {
	case !ok:
		c.add(ptr+"/text", "must be a string")
	case s == "":
		c.add(ptr+"/text", "must be more than 0 characters")
	case utf8.RuneCountInString(s) > limit:
		c.add(ptr+"/text", "must be less than %d characters", limit+1)
	}
}
