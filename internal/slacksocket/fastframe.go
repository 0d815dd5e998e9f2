package slacksocket

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// fastSlashFrame decodes the common frame, a slash_commands envelope, in one pass without
// reflection; ok false means "not that simple": parseFrame then decodes it with encoding/json,
// whose result this must equal whenever ok is true (FuzzParseFrame checks it against slack-go's
// decode). It is hand-written because decoding was 60 % of the bot's CPU per command under
// BenchmarkBurstHelp even after decoding each frame only once: encoding/json validates the frame,
// skips the payload into a RawMessage, then validates and decodes the payload twice more
// (slack.SlashCommand's UnmarshalJSON decodes again into a copy of itself). A slash command is
// a flat object of strings, so anything else (an escape in a string, a number that is not a
// plain integer, a key that only matches case-insensitively, a payload that is not an object of
// strings) is left to encoding/json rather than handled here.
//
// Every string it returns is a piece of one copy of the frame (scanner.text): 2 allocations per
// frame instead of 15 (one per field).
func fastSlashFrame(data []byte) (f frame, ok bool) {
	p := scanner{b: data, text: string(data)}
	var c slack.SlashCommand
	hasPayload := false
	if !p.object(func(key []byte) bool {
		switch string(key) {
		case "type":
			return p.str(&f.Type)
		case "envelope_id":
			return p.str(&f.EnvelopeID)
		case "retry_reason":
			return p.str(&f.RetryReason)
		case "reason":
			return p.str(&f.Reason)
		case "accepts_response_payload":
			return p.boolean(&f.AcceptsResponsePayload)
		case "retry_attempt":
			return p.integer(&f.RetryAttempt)
		case "num_connections":
			return p.integer(&f.NumConnections)
		case "payload":
			// Read where it stands, as a slash command, in the same pass (the type may come
			// after it: a frame of another type fails here or below, and goes to encoding/json).
			// A repeated key: the last one wins, as in encoding/json.
			if p.i >= len(p.b) || p.b[p.i] != '{' {
				return false
			}
			c, hasPayload = slack.SlashCommand{}, true
			return p.object(func(key []byte) bool {
				if dst := slashField(&c, key); dst != nil {
					return p.str(dst)
				}
				if string(key) == "is_enterprise_install" {
					return p.enterpriseInstall(&c.IsEnterpriseInstall)
				}
				return !foldsToAny(key, slashKeys) && p.skip(1)
			})
		}
		return !foldsToAny(key, frameKeys) && p.skip(0)
	}) || !p.end() || f.Type != TypeSlashCommands || f.EnvelopeID == "" || !hasPayload {
		return frame{}, false
	}
	f.command = &c
	return f, true
}

var (
	frameKeys = []string{"type", "envelope_id", "reason", "num_connections", "accepts_response_payload",
		"retry_attempt", "retry_reason", "payload"}
	slashKeys = []string{"token", "team_id", "team_domain", "enterprise_id", "enterprise_name", "is_enterprise_install",
		"channel_id", "channel_name", "user_id", "user_name", "command", "text", "response_url", "trigger_id", "api_app_id"}
)

// slashField is the string field of c that key names exactly (encoding/json's tag match).
func slashField(c *slack.SlashCommand, key []byte) *string {
	switch string(key) {
	case "token":
		return &c.Token
	case "team_id":
		return &c.TeamID
	case "team_domain":
		return &c.TeamDomain
	case "enterprise_id":
		return &c.EnterpriseID
	case "enterprise_name":
		return &c.EnterpriseName
	case "channel_id":
		return &c.ChannelID
	case "channel_name":
		return &c.ChannelName
	case "user_id":
		return &c.UserID
	case "user_name":
		return &c.UserName
	case "command":
		return &c.Command
	case "text":
		return &c.Text
	case "response_url":
		return &c.ResponseURL
	case "trigger_id":
		return &c.TriggerID
	case "api_app_id":
		return &c.APIAppID
	}
	return nil
}

// foldsToAny: key is not one of keys but matches one case-insensitively, as encoding/json
// would: the fast path leaves such a frame to it.
func foldsToAny(key []byte, keys []string) bool {
	for _, k := range keys {
		if strings.EqualFold(k, string(key)) {
			return true
		}
	}
	return false
}

// scanner reads JSON from b at i. Its methods report false on anything they do not handle,
// valid JSON or not. text is b as a string: the strings it reads are slices of it.
type scanner struct {
	b    []byte
	text string
	i    int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// end: only whitespace is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// object reads an object, calling field with each key (the scanner then at its value).
func (s *scanner) object(field func(key []byte) bool) bool {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		s.ws()
		key, ok := s.plainString()
		if !ok {
			return false
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		if !field(key) {
			return false
		}
		if more, ok := s.next('}'); !more {
			return ok
		}
	}
}

// next reads what follows a member: ',' (more to come) or closer (ok, no more); anything else fails.
func (s *scanner) next(closer byte) (more, ok bool) {
	s.ws()
	if s.i >= len(s.b) {
		return false, false
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return true, true
	case closer:
		s.i++
		return false, true
	}
	return false, false
}

// plainString reads a string without escapes or control characters, in valid UTF-8 (so its
// bytes are what encoding/json would decode).
func (s *scanner) plainString() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	rest := s.b[s.i+1:]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil, false
	}
	v := rest[:end]
	ascii := true
	for _, c := range v {
		if c < 0x20 || c == '\\' {
			return nil, false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(v) {
		return nil, false
	}
	s.i += end + 2
	return v, true
}

// str reads a string into dst; null leaves dst as it is (as encoding/json does).
func (s *scanner) str(dst *string) bool {
	if s.literal("null") {
		return true
	}
	start := s.i + 1 // after the quote
	v, ok := s.plainString()
	if ok {
		*dst = s.text[start : start+len(v)]
	}
	return ok
}

func (s *scanner) literal(lit string) bool {
	if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		s.i += len(lit)
		return true
	}
	return false
}

func (s *scanner) boolean(dst *bool) bool {
	switch {
	case s.literal("true"):
		*dst = true
	case s.literal("false"):
		*dst = false
	case s.literal("null"):
	default:
		return false
	}
	return true
}

// integer reads a plain integer (-?[1-9][0-9]* or 0) that fits an int.
func (s *scanner) integer(dst *int) bool {
	if s.literal("null") {
		return true
	}
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	n := s.i - digits
	if n == 0 || n > 18 || (n > 1 && s.b[digits] == '0') {
		return false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return false
	}
	v, err := strconv.Atoi(string(s.b[start:s.i]))
	if err != nil {
		return false
	}
	*dst = v
	return true
}

// enterpriseInstall is slack.SlashCommand's is_enterprise_install: a bool, or the strings "true"
// and "false" as strconv.ParseBool reads them; null leaves it.
func (s *scanner) enterpriseInstall(dst *bool) bool {
	if s.i < len(s.b) && s.b[s.i] == '"' {
		v, ok := s.plainString()
		if !ok {
			return false
		}
		b, err := strconv.ParseBool(string(v))
		if err != nil {
			return false
		}
		*dst = b
		return true
	}
	if s.literal("null") {
		// slack-go: a null leaves it false even when an earlier key set it.
		*dst = false
		return true
	}
	return s.boolean(dst)
}

// maxDepth bounds skip's recursion (encoding/json allows 10000; Slack nests a few levels).
const maxDepth = 64

// skip passes over one value without decoding it, accepting only what it can check is valid:
// plain strings, numbers, literals, arrays and objects of those.
func (s *scanner) skip(depth int) bool {
	if depth > maxDepth || s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, ok := s.plainString()
		return ok
	case c == '{':
		return s.object(func([]byte) bool { return s.skip(depth + 1) })
	case c == '[':
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return true
		}
		for {
			s.ws()
			if !s.skip(depth + 1) {
				return false
			}
			if more, ok := s.next(']'); !more {
				return ok
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	return false
}

// number passes over a JSON number.
func (s *scanner) number() bool {
	if s.b[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	start := s.i
	n := digits()
	if n == 0 || (n > 1 && s.b[start] == '0') {
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}
