package netsapiens

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// call is one request of an operation.
type call struct {
	op      op
	path    string     // escaped, below the base URL, starting with "/"
	query   url.Values // optional
	body    any        // marshalled to JSON when non-nil
	form    url.Values // or sent form-encoded (the v1 API)
	v1      bool       // path is below the v1 endpoint, not the v2 base
	secrets []string   // secret values the body carries: scrubbed from errors, and the call is never tagged
}

func (cl call) method() string { return cl.op.spec().method }

// mayTag reports whether the request may carry X-NetSapiens-Log: neither its operation's
// answer or request nor this body can hold a secret (see opSpec.secret).
func (cl call) mayTag() bool { return !cl.op.spec().secret && len(cl.secrets) == 0 }

// reply is a 2xx response.
type reply struct {
	status int
	body   []byte
}

// do runs cl with retries as its operation allows, reports the outcome to Config.Observe, and
// returns the 2xx reply.
//
//   - Operations marked retry (reads, PUTs, DELETEs, token requests) are retried on
//     KindTransient up to MaxRetries times, with jittered exponential backoff, waiting at least
//     Retry-After on a 429/503.
//   - A DELETE that gets 404 after an earlier attempt failed transiently is a success: the
//     lost reply was the delete's.
//   - A 401 with OAuth drops the token and tries once more with a fresh one.
//   - Creates are tried once; the caller decides (see CreateDevice).
func (c *Client) do(ctx context.Context, cl call) (rep reply, err error) {
	if c.observe != nil {
		// Wall-clock duration, not c.now: the test clock drives token expiry, not metrics.
		start := time.Now()
		defer func() { c.observe(cl.op.String(), time.Since(start), err) }()
	}
	spec := cl.op.spec()
	reauthed := false
	hadTransient := false
	for attempt := 0; ; attempt++ {
		rep, used, err := c.attempt(ctx, cl)
		if err == nil {
			return rep, nil
		}
		var e *Error
		if !errors.As(err, &e) {
			return reply{}, err // context ended, or a request we could not build
		}
		switch {
		case e.Kind == KindNotFound && spec.method == http.MethodDelete && hadTransient:
			c.log.Debug().Str("method", spec.method).Str("path", cl.path).Msg("delete found gone after a lost reply: done")
			return reply{status: e.Status}, nil
		case e.Kind == KindUnauthorized && c.oauth != nil && !spec.noAuth && !reauthed:
			reauthed = true
			c.oauth.invalidate(used)
			attempt--
			continue
		case e.Kind != KindTransient || !spec.retry || attempt >= c.maxRetries:
			return reply{}, err
		}
		hadTransient = true
		wait := c.backoff(attempt)
		if e.retryAfter > wait {
			wait = e.retryAfter
		}
		c.log.Debug().Str("method", spec.method).Str("path", cl.path).Int("attempt", attempt+1).
			Dur("wait", wait).Str("error", e.Message).Msg("transient error, retrying")
		if err := c.sleep(ctx, wait); err != nil {
			return reply{}, ctxError(cl, ctx, err)
		}
	}
}

// backoff returns the wait before retry number attempt+1: base·2^attempt capped at the max,
// jittered by 0.5–1.5× so that many clients do not retry in step.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retryBase
	for i := 0; i < attempt && d < c.retryMax; i++ {
		d *= 2
	}
	if d > c.retryMax {
		d = c.retryMax
	}
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// parseRetryAfter reads a Retry-After header (seconds or an HTTP date), capped.
func parseRetryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(h); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	if d < 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}

// ctxError wraps a context's error so that errors.Is(err, context.Canceled) holds.
func ctxError(cl call, ctx context.Context, err error) error {
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return &ctxErr{method: cl.method(), path: cl.path, err: err}
}

// ctxErr is returned when the caller's context ended; it unwraps to context.Canceled or
// context.DeadlineExceeded.
type ctxErr struct {
	method, path string
	err          error
}

func (e *ctxErr) Error() string {
	return "netsapiens: " + e.method + " " + e.path + ": " + e.err.Error()
}
func (e *ctxErr) Unwrap() error { return e.err }

// maxReply bounds how much of a reply is read (a full page of 1000 CDRs is well below it).
const maxReply = 32 << 20

// attempt makes one request.
// It returns the bearer token it used, so that a 401 drops exactly that token.
func (c *Client) attempt(ctx context.Context, cl call) (_ reply, token string, _ error) {
	method := cl.method()
	if err := ctx.Err(); err != nil {
		return reply{}, token, ctxError(cl, ctx, err)
	}
	if !cl.op.spec().noAuth {
		t, err := c.bearer(ctx)
		if err != nil {
			return reply{}, "", err
		}
		token = t
	}
	var payload io.Reader
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return reply{}, token, &Error{Kind: KindInvalid, Message: "encode request body", Method: method, Path: cl.path}
		}
		payload = bytes.NewReader(b)
	}
	if cl.form != nil {
		payload = strings.NewReader(cl.form.Encode())
	}

	prio := PriorityOf(ctx)
	if err := c.sem.acquire(ctx, prio); err != nil {
		return reply{}, token, ctxError(cl, ctx, err)
	}
	defer c.sem.release(prio)

	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	target := c.base + cl.path
	if cl.v1 {
		target = c.v1 + strings.TrimPrefix(cl.path, "/")
	}
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}
	req, err := http.NewRequestWithContext(actx, method, target, payload)
	if err != nil {
		return reply{}, token, &Error{Kind: KindInvalid, Message: "build request", Method: method, Path: cl.path}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if tag := logTag(ctx); tag != "" && cl.mayTag() {
		req.Header.Set("X-NetSapiens-Log", tag)
	}
	switch {
	case cl.form != nil:
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case payload != nil:
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
		resp.Body.Close()
	}
	if err != nil {
		if ctx.Err() != nil {
			return reply{}, token, ctxError(cl, ctx, ctx.Err())
		}
		msg := "no reply: " + err.Error()
		if actx.Err() != nil {
			msg = "no reply within " + c.timeout.String()
		}
		c.log.Debug().Str("method", method).Str("path", cl.path).Dur("took", time.Since(start)).Msg(msg)
		return reply{}, token, &Error{Kind: KindTransient, Message: scrub(msg, c.secretValues(cl)), Method: method, Path: cl.path, cause: err}
	}
	status := resp.StatusCode
	c.log.Debug().Str("method", method).Str("path", cl.path).Int("status", status).
		Dur("took", time.Since(start)).Msg("netsapiens request")
	if len(body) > maxReply {
		return reply{}, token, &Error{Status: status, Kind: KindInternal, Message: "reply too large", Method: method, Path: cl.path}
	}
	if status >= 200 && status <= 299 {
		return reply{status: status, body: body}, token, nil
	}
	e := errorFromReply(method, cl.path, status, body, c.secretValues(cl))
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		e.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
	}
	return reply{}, token, e
}

// secretValues lists the values to scrub from messages: the call's own and the client's credentials.
func (c *Client) secretValues(cl call) []string {
	s := append([]string{}, cl.secrets...)
	s = append(s, string(c.apiKey))
	if c.oauth != nil {
		s = append(s, string(c.oauthConfig.ClientSecret), string(c.oauthConfig.Password))
		s = append(s, c.oauth.current()...)
	}
	return s
}

// bearer returns the token for the Authorization header.
func (c *Client) bearer(ctx context.Context) (string, error) {
	if c.oauth == nil {
		return string(c.apiKey), nil
	}
	return c.oauth.token(ctx)
}

// get runs a read and decodes the object reply into out.
func (c *Client) get(ctx context.Context, o op, path string, query url.Values, out any) error {
	cl := call{op: o, path: path, query: query}
	rep, err := c.do(ctx, cl)
	if err != nil {
		return err
	}
	return decodeInto(cl, rep, out)
}

// getList runs a read and decodes the list reply.
func getList[T any](ctx context.Context, c *Client, o op, path string, query url.Values) ([]T, error) {
	cl := call{op: o, path: path, query: query}
	rep, err := c.do(ctx, cl)
	if err != nil {
		return nil, err
	}
	return decodeList[T](cl, rep)
}

// decodeInto decodes a 2xx body into out. A decode failure is KindInternal.
func decodeInto(cl call, rep reply, out any) error {
	if err := json.Unmarshal(rep.body, out); err != nil {
		return &Error{Status: rep.status, Kind: KindInternal, Message: "undecodable reply", Method: cl.method(), Path: cl.path, cause: err}
	}
	return nil
}

// decodeList decodes a list reply. The API returns arrays, but some servers return a lone
// object for one result; an empty body or null is an empty list.
func decodeList[T any](cl call, rep reply) ([]T, error) {
	b := bytes.TrimSpace(rep.body)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return []T{}, nil
	}
	if b[0] == '{' {
		var one T
		if err := decodeInto(cl, rep, &one); err != nil {
			return nil, err
		}
		return []T{one}, nil
	}
	var list []T
	if err := decodeInto(cl, rep, &list); err != nil {
		return nil, err
	}
	if list == nil {
		list = []T{}
	}
	return list, nil
}
