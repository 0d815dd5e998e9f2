package netsapiens

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Kind classifies an error so that callers decide what to do (retry, ask a human, give up)
// without parsing messages.
type Kind string

// The kinds of error the client returns. Every *Error has exactly one.
const (
	KindNotFound     Kind = "not_found"    // 404: the user, device, phone or policy does not exist
	KindUnauthorized Kind = "unauthorized" // 401: bad or expired credentials (after one retry with a fresh token)
	KindForbidden    Kind = "forbidden"    // 403: the key or token may not do this
	KindConflict     Kind = "conflict"     // 409: the resource already exists
	KindInvalid      Kind = "invalid"      // 400/422 or a value refused before any request (path segment, config)
	KindTransient    Kind = "transient"    // 408/425/429/5xx, timeouts, connection resets: retrying later may work
	KindInternal     Kind = "internal"     // anything else: an unexpected status or an undecodable reply
)

// Sentinel errors for errors.Is: errors.Is(err, ErrNotFound) is true for any *Error of KindNotFound.
var (
	ErrNotFound     = &Error{Kind: KindNotFound, Message: "not found"}
	ErrUnauthorized = &Error{Kind: KindUnauthorized, Message: "unauthorized"}
	ErrForbidden    = &Error{Kind: KindForbidden, Message: "forbidden"}
	ErrConflict     = &Error{Kind: KindConflict, Message: "conflict"}
	ErrInvalid      = &Error{Kind: KindInvalid, Message: "invalid"}
	ErrTransient    = &Error{Kind: KindTransient, Message: "transient"}
)

// Error is an error from the PBX (Status > 0), from the transport (Status 0, KindTransient)
// or a value refused before any request (Status 0, KindInvalid). Message is the PBX's own
// text with secrets scrubbed, kept for the operator.
type Error struct {
	Status  int    // HTTP status, 0 when no reply was received or no request was made
	Kind    Kind   // classification; see the Kind constants
	Message string // the PBX's message (scrubbed) or a description of the problem
	Method  string // HTTP method of the failed request, empty for refused values
	Path    string // request path below the base URL, empty for refused values
	cause   error  // the transport error, if any (reachable with errors.Is/As)

	retryAfter time.Duration // a 429/503's Retry-After, honoured by the retry loop
}

// Error formats the error as "netsapiens: METHOD /path: 404 not_found: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("netsapiens: ")
	if e.Method != "" {
		b.WriteString(e.Method + " " + e.Path + ": ")
	}
	if e.Status > 0 {
		fmt.Fprintf(&b, "%d ", e.Status)
	}
	b.WriteString(string(e.Kind))
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNotFound) (and the other sentinels) match by Kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Kind == e.Kind
}

// Unwrap returns the transport error behind a KindTransient error, if any.
func (e *Error) Unwrap() error { return e.cause }

// KindOf returns the Kind of err: the Kind of the *Error in its chain, KindTransient for an
// expired context deadline, "" for nil, and KindInternal for anything else, including a
// cancelled context (detect that with errors.Is(err, context.Canceled)).
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return KindTransient
	}
	return KindInternal
}

// invalidf builds a KindInvalid error for a value refused before any request.
func invalidf(format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Message: fmt.Sprintf(format, args...)}
}

// kindForStatus maps an HTTP status to a Kind.
func kindForStatus(status int) Kind {
	switch {
	case status == http.StatusNotFound, status == http.StatusGone:
		return KindNotFound
	case status == http.StatusUnauthorized:
		return KindUnauthorized
	case status == http.StatusForbidden:
		return KindForbidden
	case status == http.StatusConflict:
		return KindConflict
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly, status == http.StatusTooManyRequests,
		status >= 500 && status <= 599:
		return KindTransient
	case status >= 400 && status <= 499:
		return KindInvalid
	default:
		return KindInternal
	}
}

// maxMessage bounds how much of a PBX message is kept (an HTML error page can be large).
const maxMessage = 300

// secretFragment matches `"…password…": "value"`, `pin=value` and the like, so that a PBX that
// echoes a request body or query in its error text never leaks it (pwd is the v1 API's form field
// of the portal password). The provisioning username (auth_user) and the overrides blob count as
// secrets: they often hold the credentials of the phone's configuration server.
var secretFragment = regexp.MustCompile(`(?i)("?[a-z0-9_-]*(?:password|passwd|pwd|pin|secret|token|auth_pass|auth_user|provisioning-username|overrides|authorization)[a-z0-9_-]*"?\s*[:=]\s*)("(?:[^"\\]|\\.)*"|[^\s,;&}"]+)`)

// bearerFragment matches an Authorization header value echoed back.
var bearerFragment = regexp.MustCompile(`(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+`)

// scrub removes every known secret value and every password/pin-like fragment from msg,
// collapses control characters and bounds its length.
func scrub(msg string, secrets []string) string {
	for _, s := range secrets {
		if len(s) >= 3 { // shorter values would blank out ordinary words; a PIN is ≥ 4 digits
			msg = strings.ReplaceAll(msg, s, redacted)
		}
	}
	msg = secretFragment.ReplaceAllString(msg, `${1}`+redacted)
	msg = bearerFragment.ReplaceAllString(msg, `${1}`+redacted)
	msg = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
	msg = strings.TrimSpace(msg)
	if len(msg) > maxMessage {
		msg = strings.ToValidUTF8(msg[:maxMessage], "") + "…"
	}
	return msg
}

// errorFromReply builds the *Error for a non-2xx reply, parsing ErrorResponse {code, message}.
func errorFromReply(method, path string, status int, body []byte, secrets []string) *Error {
	var er struct {
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
	}
	msg := ""
	if err := json.Unmarshal(body, &er); err == nil && er.Message != "" {
		msg = er.Message
	} else {
		msg = string(body)
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &Error{Status: status, Kind: kindForStatus(status), Message: scrub(msg, secrets), Method: method, Path: path}
}
