package jsoncut

import "testing"

// TestWithout: only the top-level member goes (its first occurrence), with its comma, and
// every other byte stays; a body that is not a whole JSON object, or has no such member, is
// returned as it is.
func TestWithout(t *testing.T) {
	for in, want := range map[string]string{
		`{"ok":true,"ts":"1.2","message":{"blocks":[{"type":"section"}]},"warning":"w"}`: `{"ok":true,"ts":"1.2","warning":"w"}`,
		`{"ok":false,"error":"x","response_metadata":{"messages":["m"]}}`:                `{"ok":false,"error":"x","response_metadata":{"messages":["m"]}}`,
		`{"ok":true,"channel":{"message":1},"message":null}`:                             `{"ok":true,"channel":{"message":1}}`,
		`{ "message" : [1, {"a":"}"}] , "ok" : true }`:                                   `{ "ok" : true }`,
		`{"message":"only"}`:                   `{}`,
		`{"ok":true, "message":1, "ts":"1.2"}`: `{"ok":true, "ts":"1.2"}`,
		`{"message":1,"message":2}`:            `{"message":2}`,
		`{"ok":true,"message":1`:               `{"ok":true,"message":1`,
		`<html>bad gateway</html>`:             `<html>bad gateway</html>`,
		`["message"]`:                          `["message"]`,
		`null`:                                 `null`,
		`{"ok":true,"message":{`:               `{"ok":true,"message":{`,
	} {
		if got := Without([]byte(in), "message"); string(got) != want {
			t.Errorf("Without(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestWithoutNested: a member of a member's object goes, with its comma; the path is followed
// by name at each level, and a path that leads to no object member leaves the body as it is.
func TestWithoutNested(t *testing.T) {
	for in, want := range map[string]string{
		`{"type":"block_actions","message":{"ts":"1.2","blocks":[{"type":"section","text":"}"}],"text":"t"},"actions":[]}`: `{"type":"block_actions","message":{"ts":"1.2","text":"t"},"actions":[]}`,
		`{"message":{"blocks":[1],"ts":"1"}}`:                       `{"message":{"ts":"1"}}`,
		`{"a":{"blocks":1},"message":{"blocks":2}}`:                 `{"a":{"blocks":1},"message":{}}`,
		`{"message":{"ts":"1"},"blocks":[1]}`:                       `{"message":{"ts":"1"},"blocks":[1]}`,
		`{"message":"blocks"}`:                                      `{"message":"blocks"}`,
		`{"message":[{"blocks":1}]}`:                                `{"message":[{"blocks":1}]}`,
		`{"message":{"blocks":[1],"ts":"1"},"view":{"blocks":[2]}}`: `{"message":{"ts":"1"},"view":{"blocks":[2]}}`,
	} {
		if got := Without([]byte(in), "message", "blocks"); string(got) != want {
			t.Errorf("Without(%s, message, blocks) = %s, want %s", in, got, want)
		}
	}
}
