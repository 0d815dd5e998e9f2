// Package jsoncut cuts a member out of a JSON object by its byte offsets, leaving every other
// byte as it was: for replies and payloads whose big members the bot never reads but slack-go
// would decode (the message Slack echoes after chat.update, the whole card a click's payload
// carries).
package jsoncut

import (
	"encoding/json"
	"strconv"
)

// Without is body, a JSON object, without the member at path: path[0] of the top level, or
// path[1] of the object that member holds, and so on (the first occurrence of each name). It is
// body itself when body is not valid JSON, is not an object, or has no such member.
//
// The member is found by walking the objects on the path (skip): with json.Valid first, about
// two scans of the body. encoding/json has no cheaper way to a member's bytes: decoding into a
// map and encoding it again scanned the body four times, and a json.Decoder walking it by
// tokens was slower still.
func Without(body []byte, path ...string) []byte {
	if len(path) == 0 || !json.Valid(body) {
		return body
	}
	from, to, ok := span(body, 0, len(body), path)
	if !ok {
		return body
	}
	return append(append(make([]byte, 0, len(body)-(to-from)), body[:from]...), body[to:]...)
}

// span finds the member at path in the object among body[i:end] (valid JSON): the bytes to cut,
// its comma included.
func span(body []byte, i, end int, path []string) (from, to int, ok bool) {
	i = skipSpace(body, i)
	if i >= end || body[i] != '{' {
		return 0, 0, false
	}
	i++
	for first := true; ; first = false {
		start := i // the member's comma (none for the first) and key follow
		i = skipSpace(body, i)
		if body[i] == '}' {
			return 0, 0, false
		}
		if !first {
			i = skipSpace(body, i+1) // the comma
		}
		keyStart := i
		i = skip(body, i) // the key: a string
		key, err := strconv.Unquote(string(body[keyStart:i]))
		if err != nil {
			key = "" // an escape strconv does not read (\/): not a name this is asked for
		}
		i = skipSpace(body, skipSpace(body, i)+1) // the colon
		valStart := i
		i = skip(body, i)
		if key != path[0] {
			continue
		}
		if len(path) > 1 {
			return span(body, valStart, i, path[1:])
		}
		if first { // no comma before it: take the one after it, if another member follows
			if j := skipSpace(body, i); body[j] == ',' {
				i = j + 1
			}
		}
		return start, i, true
	}
}

// skipSpace is the index of the first byte of body at or after i that is not JSON whitespace.
func skipSpace(body []byte, i int) int {
	for i < len(body) && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n') {
		i++
	}
	return i
}

// skip is the index just after the JSON value that starts at body[i], in a body json.Valid
// accepted: strings are skipped by their quotes and escapes, objects and arrays by their
// brackets outside strings; a literal or a number ends at the next delimiter.
func skip(body []byte, i int) int {
	depth := 0
	for ; i < len(body); i++ {
		switch body[i] {
		case '"':
			for i++; body[i] != '"'; i++ {
				if body[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
			if depth < 0 {
				return i // the end of the enclosing value: a literal or number before it
			}
		case ',', ' ', '\t', '\r', '\n', ':':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}
