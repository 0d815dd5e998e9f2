package slackui

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
)

// echoless is the Web API client's transport: for chat.postMessage and chat.update replies it
// drops the top-level "message" member (Slack's echo of the message just written) before
// slack-go reads the reply.
//
// Why: slack-go decodes that echo into slack.Message, blocks and all (slack.Blocks'
// UnmarshalJSON decodes every block twice, by type), for each card update and thread reply,
// and the app never reads it: it needs only ok, error, warning, ts and channel. In a burst that
// decode was the largest single cost of the bot's CPU (issue 9). Cutting it here keeps the real
// slack-go client, its request building, errors and retries.
//
// Everything else reaches slack-go as Slack sent it: every reply of other methods and of other
// URLs (response_url posts), any status but 200 (a 429 with its Retry-After header, a 5xx), and
// a 200 whose body is not a JSON object (slack-go reports its own decode error). All other
// members (ok, error, warning, errors, response_metadata, ts, channel, text…) are kept.
type echoless struct {
	next   http.RoundTripper
	apiURL string // the Web API base, as countedRetry names methods
}

// RoundTrip implements http.RoundTripper.
func (t echoless) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	if m := apiMethod(t.apiURL, req); m != "chat.postMessage" && m != "chat.update" {
		return resp, nil
	}
	body, readErr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if readErr != nil {
		// slack-go sees the same failure it would have met reading the body itself.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{readErr}))
		return resp, nil
	}
	body = withoutMember(body, "message")
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return resp, nil
}

// withoutMember is body, a JSON object, without its first top-level member name; body itself
// when it has no such member or is not a valid JSON object. The bytes around the member are
// kept as they are, so what slack-go decodes from the other members is unchanged.
//
// The member is cut out by its offsets, found by walking the object's top level (skipTo): with
// json.Valid first, two scans of the body. encoding/json has no cheaper way to a member's bytes:
// decoding into a map and encoding it again scanned the body four times (≈ 3 % of the bot's CPU
// in a burst), and a json.Decoder walking it by tokens was slower still.
func withoutMember(body []byte, name string) []byte {
	if !json.Valid(body) {
		return body
	}
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return body
	}
	i++
	for first := true; ; first = false {
		start := i // the member's comma (none for the first) and key follow
		i = skipSpace(body, i)
		if body[i] == '}' {
			return body // no such member
		}
		if !first {
			i = skipSpace(body, i+1) // the comma
		}
		keyStart := i
		i = skipTo(body, i) // the key: a string
		key, err := strconv.Unquote(string(body[keyStart:i]))
		if err != nil {
			key = "" // escapes strconv does not read (\/): not the name this is asked for
		}
		i = skipSpace(body, i) + 1 // the colon
		i = skipTo(body, skipSpace(body, i))
		if key != name {
			continue
		}
		end := i
		if first { // no comma before it: take the one after it, if another member follows
			if j := skipSpace(body, end); body[j] == ',' {
				end = j + 1
			}
		}
		return append(append(make([]byte, 0, len(body)-(end-start)), body[:start]...), body[end:]...)
	}
}

// skipSpace is the index of the first byte of body at or after i that is not JSON whitespace.
func skipSpace(body []byte, i int) int {
	for i < len(body) && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n') {
		i++
	}
	return i
}

// skipTo is the index just after the JSON value that starts at body[i], in a body json.Valid
// accepted: strings are skipped by their quotes and escapes, objects and arrays by their
// brackets, outside strings; a literal or a number ends at the next delimiter.
func skipTo(body []byte, i int) int {
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

// errReader fails every read with err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
