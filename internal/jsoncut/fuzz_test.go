package jsoncut

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"
)

// FuzzWithout: whatever the body, Without either returns it unchanged or returns valid JSON
// whose every other member is byte for byte the body's, as encoding/json decodes both; the
// member at the path's first name is the only one that may differ. (Slack's replies and
// payloads are untrusted input: a cut must never change what the bot reads from the rest.)
func FuzzWithout(f *testing.F) {
	for _, s := range []string{
		`{"ok":true,"ts":"1.2","message":{"blocks":[{"type":"section"}]},"warning":"w"}`,
		`{ "message" : [1, {"a":"}"}] , "ok" : true }`,
		`{"message":1,"message":2}`,
		`{"ok":true,"message":{"ts":"1","blocks":[1,{"x":"]"}],"text":"t"}}`,
		`{"mess\u0061ge":1,"ok":true}`,
		`{"ok":true,"message":1`,
		`["message"]`,
		`null`,
	} {
		f.Add([]byte(s), "message", "")
		f.Add([]byte(s), "message", "blocks")
	}
	f.Fuzz(func(t *testing.T, body []byte, name, inner string) {
		path := []string{name}
		if inner != "" {
			path = append(path, inner)
		}
		in := bytes.Clone(body)
		out := Without(body, path...)
		if !bytes.Equal(body, in) {
			t.Fatalf("Without changed its input")
		}
		if bytes.Equal(out, body) {
			return // nothing cut is always safe
		}
		if !json.Valid(out) {
			t.Fatalf("Without(%q, %q) = %q: not valid JSON", body, path, out)
		}
		var before, after map[string]json.RawMessage
		if err := json.Unmarshal(body, &before); err != nil {
			t.Fatalf("cut a body that is not an object %q: %v", body, err)
		}
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("the cut %q is not an object: %v", out, err)
		}
		delete(before, name)
		delete(after, name)
		if !maps.EqualFunc(before, after, func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
			t.Fatalf("Without(%q, %q) = %q: other members changed", body, path, out)
		}
	})
}
