package nstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
)

const redacted = "[redacted]"

// secretFields are body and query names whose values never reach the call log, so that a
// test can print Calls() freely.
var secretFields = map[string]bool{
	"device-sip-registration-password": true,
	"device-provisioning-password":     true,
	"voicemail-login-pin":              true,
	"password":                         true,
	"client_secret":                    true,
	"refresh_token":                    true,
	"access_token":                     true,
	"passcode":                         true,
	"key":                              true,
	"global-one-time-pass":             true,
	"refresh":                          true,
	"token":                            true,
	"pwd":                              true, // v1 subscriber update: the portal password
}

// redactBody returns the body with every secret field's value replaced. A body that is not
// JSON is kept only if it is a form that can be redacted field by field; anything else is
// replaced by a placeholder, because it could carry a secret in a shape we cannot see.
func redactBody(body []byte) []byte {
	v, form, ok := parseBody(body)
	switch {
	case !ok:
		return []byte(fmt.Sprintf("[non-JSON body, %d bytes]", len(body)))
	case form != nil:
		return []byte(redactQuery(form).Encode())
	case v == nil:
		return nil
	}
	out, err := json.Marshal(redactValue(v))
	if err != nil {
		return []byte(fmt.Sprintf("[non-JSON body, %d bytes]", len(body)))
	}
	return out
}

// parseBody reads a body as JSON (v, numbers kept as written) or as a form; ok is false for a
// body that is neither. An empty body (or JSON null) is ok with both nil.
func parseBody(body []byte) (v any, form url.Values, ok bool) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil, true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err == nil {
		return v, nil, true // a JSON null is v == nil
	}
	if form, err := url.ParseQuery(string(body)); err == nil && len(form) > 0 && isForm(body) {
		return nil, form, true
	}
	return nil, nil, false
}

// isForm is true when every &-separated part is key=value; a bare word could be a secret.
func isForm(body []byte) bool {
	for part := range bytes.SplitSeq(body, []byte("&")) {
		if k, _, ok := bytes.Cut(part, []byte("=")); !ok || len(k) == 0 {
			return false
		}
	}
	return true
}

func redactValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			if secretFields[k] && x != nil {
				out[k] = redacted
				continue
			}
			out[k] = redactValue(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = redactValue(x)
		}
		return out
	}
	return v
}

// redactQuery copies q with secret parameters' values replaced (some clients send the
// token request's fields as query parameters).
func redactQuery(q url.Values) url.Values {
	out := url.Values{}
	for k, vs := range q {
		for _, v := range vs {
			if secretFields[k] {
				v = redacted
			}
			out[k] = append(out[k], v)
		}
	}
	return out
}

// holdsSecret reports whether a body has a secret field with a value (see Call.Secret). A body
// that is neither JSON nor a form counts as secret, as redactBody does not show it either.
func holdsSecret(body []byte) bool {
	v, form, ok := parseBody(body)
	if form != nil {
		return queryHoldsSecret(form)
	}
	return !ok || valueHoldsSecret(v)
}

func valueHoldsSecret(v any) bool {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if secretFields[k] && x != nil && x != "" {
				return true
			}
			if valueHoldsSecret(x) {
				return true
			}
		}
	case []any:
		for _, x := range t {
			if valueHoldsSecret(x) {
				return true
			}
		}
	}
	return false
}

func queryHoldsSecret(q url.Values) bool {
	for k, vs := range q {
		if secretFields[k] && len(vs) > 0 && vs[0] != "" {
			return true
		}
	}
	return false
}
