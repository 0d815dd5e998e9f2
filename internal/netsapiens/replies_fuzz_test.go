package netsapiens_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/compromised-responder/bot/internal/netsapiens"
)

// fuzzKey is the client's API key in these tests: no error may show it.
const fuzzKey = "nsr_fuzz-key-must-not-leak"

// replyTransport answers every request with one status and body: the PBX's reply is the input
// under test, so it is handed to the client without a socket per fuzz iteration. The body is
// a reader, so a test can send more than it holds in memory.
type replyTransport struct {
	status int
	body   func() io.Reader
}

func (rt replyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: rt.status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(rt.body()), Request: r}, nil
}

func replyClient(t testing.TB, status int, body func() io.Reader, oauth bool) *netsapiens.Client {
	t.Helper()
	cfg := netsapiens.Config{BaseURL: "http://127.0.0.1:1/ns-api/v2", MaxRetries: -1,
		HTTPClient: &http.Client{Transport: replyTransport{status: status, body: body}},
		Sleep:      func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}
	if oauth {
		cfg.OAuth = &netsapiens.OAuthConfig{ClientID: "c", ClientSecret: "oauth-secret-must-not-leak", Username: "u", Password: "oauth-password-must-not-leak"}
	} else {
		cfg.APIKey = fuzzKey
	}
	c, err := netsapiens.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// readCalls are the client's calls that decode a reply, each named.
var readCalls = []struct {
	name string
	call func(ctx context.Context, c *netsapiens.Client) error
}{
	{"GetUser", func(ctx context.Context, c *netsapiens.Client) error {
		_, err := c.GetUser(ctx, "acme.example", "1001")
		return err
	}},
	{"ListDevices", func(ctx context.Context, c *netsapiens.Client) error {
		_, err := c.ListDevices(ctx, "acme.example", "1001")
		return err
	}},
	{"GetDevice", func(ctx context.Context, c *netsapiens.Client) error {
		_, err := c.GetDevice(ctx, "acme.example", "1001", "1001a")
		return err
	}},
	{"ListPhones", func(ctx context.Context, c *netsapiens.Client) error {
		_, err := c.ListPhones(ctx, "acme.example")
		return err
	}},
	{"GetPhone", func(ctx context.Context, c *netsapiens.Client) error {
		_, err := c.GetPhone(ctx, "acme.example", "0004f2aabbcc")
		return err
	}},
	{"GetDialPolicy", func(ctx context.Context, c *netsapiens.Client) error {
		_, err := c.GetDialPolicy(ctx, "acme.example", "Deny All")
		return err
	}},
	{"ListDialPolicyPermissions", func(ctx context.Context, c *netsapiens.Client) error {
		_, err := c.ListDialPolicyPermissions(ctx, "acme.example", "Deny All")
		return err
	}},
	{"ListCalls", func(ctx context.Context, c *netsapiens.Client) error {
		_, err := c.ListCalls(ctx, "acme.example", "1001")
		return err
	}},
	{"ListCDRs", func(ctx context.Context, c *netsapiens.Client) error {
		_, err := c.ListCDRs(ctx, "acme.example", "1001", time.Unix(0, 0), time.Unix(3600, 0), 10)
		return err
	}},
	{"Version", func(ctx context.Context, c *netsapiens.Client) error { _, err := c.Version(ctx); return err }},
}

var statuses = []int{200, 202, 204, 400, 401, 403, 404, 409, 429, 500, 503, 302, 418}

// checkReplyError: an error from a reply is a *netsapiens.Error of a known kind, with a short,
// UTF-8 message that shows none of the client's credentials (default: the API key).
func checkReplyError(t *testing.T, name string, status int, err error, credentials ...string) {
	t.Helper()
	var ne *netsapiens.Error
	if !errors.As(err, &ne) {
		t.Fatalf("%s on %d: error %T %v is not a *netsapiens.Error", name, status, err, err)
	}
	switch ne.Kind {
	case netsapiens.KindNotFound, netsapiens.KindUnauthorized, netsapiens.KindForbidden, netsapiens.KindConflict,
		netsapiens.KindInvalid, netsapiens.KindTransient, netsapiens.KindInternal:
	default:
		t.Fatalf("%s on %d: unknown kind %q", name, status, ne.Kind)
	}
	msg := err.Error()
	if len(msg) > 1024 || !utf8.ValidString(msg) {
		t.Errorf("%s on %d: an unclear message (%d bytes): %.100q", name, status, len(msg), msg)
	}
	if len(credentials) == 0 {
		credentials = []string{fuzzKey}
	}
	for _, s := range credentials {
		if strings.Contains(msg, s) {
			t.Errorf("%s on %d: the error shows a credential: %s", name, status, msg)
		}
	}
}

// FuzzDecodeReplies feeds any status and body to every call that decodes a PBX reply, and to the
// OAuth token request: no panic, and either a value or a classified, short, credential-free error.
func FuzzDecodeReplies(f *testing.F) {
	for _, s := range []struct {
		st   uint8
		body string
	}{
		{0, `{"user":"1001","domain":"acme.example","dial-policy":"US and Canada","voicemail-login-pin":1234}`},
		{0, `[{"device":"1001a","device-sip-registration-password":{"x":1}}]`},
		{0, `{"device":"1001a"}`}, {0, `null`}, {0, ``}, {0, `[`}, {0, `"string"`}, {0, `[1,2,3]`},
		{0, `{"user":5,"dial-policy":["a"],"name-first-name":{"deep":[[[[[]]]]]}}`},
		{0, strings.Repeat("[", 20000) + strings.Repeat("]", 20000)},
		{0, `{"access_token":"","expires_in":"soon"}`}, {0, `{"access_token":"t","expires_in":-5}`},
		{3, `{"code":400,"message":"bad ` + fuzzKey + `"}`}, {4, `{"code":401,"message":"` + strings.Repeat("é", 5000) + `"}`},
		{8, `{"code":429}`}, {9, "<html>502</html>"}, {9, "\xff\xfe\x00"}, {11, ``}, {12, `{"message":7}`},
	} {
		f.Add(s.st, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, st uint8, body []byte) {
		status := statuses[int(st)%len(statuses)]
		reply := func() io.Reader { return bytes.NewReader(body) }
		ctx := context.Background()
		for _, rc := range readCalls {
			if err := rc.call(ctx, replyClient(t, status, reply, false)); err != nil {
				checkReplyError(t, rc.name, status, err)
			} else if status < 200 || status > 299 {
				t.Errorf("%s: a %d reply was taken as a success", rc.name, status)
			}
		}
		// The token reply: with OAuth, the first call decodes the body as a token.
		if _, err := replyClient(t, status, reply, true).GetUser(ctx, "acme.example", "1001"); err != nil {
			checkReplyError(t, "OAuth GetUser", status, err, "oauth-secret-must-not-leak", "oauth-password-must-not-leak")
		} else if status < 200 || status > 299 {
			t.Errorf("OAuth GetUser: a %d reply to the token request was taken as a success", status)
		}
	})
}

// TestHugeReplies: a reply too large is refused with a clear error after reading at most the cap
// (memory stays bounded however much the PBX sends); a 10 MiB reply of wrong types or deep
// nesting is an "undecodable reply", never a panic.
func TestHugeReplies(t *testing.T) {
	ctx := context.Background()
	zeros := func(n int64) func() io.Reader {
		return func() io.Reader { return io.LimitReader(repeatReader('0'), n) }
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := replyClient(t, 200, zeros(1<<30), false).GetUser(ctx, "acme.example", "1001") // 1 GiB offered
	runtime.ReadMemStats(&after)
	var ne *netsapiens.Error
	if !errors.As(err, &ne) || ne.Kind != netsapiens.KindInternal || !strings.Contains(err.Error(), "reply too large") {
		t.Fatalf("a 1 GiB reply: %v, want an internal 'reply too large' error", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 256<<20 {
		t.Errorf("reading a 1 GiB reply allocated %d MiB, want it bounded by the cap", got>>20)
	}

	tenMiB := 10 << 20
	for name, body := range map[string]string{
		"wrong types":  `{"user":` + strings.Repeat("1", tenMiB) + `}`,
		"deep nesting": strings.Repeat(`{"a":[`, tenMiB/6) + strings.Repeat(`]}`, tenMiB/6),
		"long string":  `{"user":"` + strings.Repeat("x", tenMiB) + `","dial-policy":7}`,
		"not JSON":     strings.Repeat("\xff", tenMiB),
	} {
		b := []byte(body)
		_, err := replyClient(t, 200, func() io.Reader { return bytes.NewReader(b) }, false).GetUser(ctx, "acme.example", "1001")
		if !errors.As(err, &ne) || ne.Kind != netsapiens.KindInternal || !strings.Contains(err.Error(), "undecodable reply") {
			t.Errorf("%s: %v, want an internal 'undecodable reply' error", name, err)
		}
		checkReplyError(t, name, 200, err)
	}
	// A long list of well-formed devices (1 MiB: 20k devices) decodes.
	dev := `{"device":"1001a","device-models-model":"x"},`
	n := (1 << 20) / len(dev)
	list := "[" + strings.Repeat(dev, n) + `{"device":"last"}]`
	devs, err := replyClient(t, 200, func() io.Reader { return strings.NewReader(list) }, false).ListDevices(ctx, "acme.example", "1001")
	if err != nil || len(devs) != n+1 {
		t.Errorf("a 1 MiB device list: %d devices, %v", len(devs), err)
	}
}

// repeatReader is an endless stream of one byte.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}
