package slackui

import (
	"bytes"
	"io"
	"net/http"
	"strconv"

	"github.com/compromised-responder/bot/internal/jsoncut"
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
	body = jsoncut.Without(body, "message")
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return resp, nil
}

// errReader fails every read with err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
