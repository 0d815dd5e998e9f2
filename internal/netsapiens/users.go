package netsapiens

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// userPath validates domain and user and returns "/domains/{d}/users/{u}".
func userPath(domain, user string) (string, error) {
	if err := ValidateDomain(domain); err != nil {
		return "", err
	}
	if err := ValidateUser(user); err != nil {
		return "", err
	}
	return "/domains/" + url.PathEscape(domain) + "/users/" + url.PathEscape(user), nil
}

// get runs a GET and decodes the object reply into out.
func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	cl := call{method: http.MethodGet, path: path, query: query}
	rep, err := c.do(ctx, cl)
	if err != nil {
		return err
	}
	return decodeInto(cl, rep, out)
}

// getList runs a GET and decodes the list reply.
func getList[T any](ctx context.Context, c *Client, path string, query url.Values) ([]T, error) {
	cl := call{method: http.MethodGet, path: path, query: query}
	rep, err := c.do(ctx, cl)
	if err != nil {
		return nil, err
	}
	return decodeList[T](cl, rep)
}

// Version returns the server's API version (GET /version). Errors: KindTransient,
// KindUnauthorized, KindForbidden, KindInternal, or the context's error.
func (c *Client) Version(ctx context.Context) (Version, error) {
	var v Version
	err := c.get(ctx, "/version", nil, &v)
	return v, err
}

// GetUser reads a user (GET /domains/{d}/users/{u}). Errors: KindInvalid for a bad domain or
// user (no request made), KindNotFound, KindUnauthorized, KindForbidden, KindTransient,
// KindInternal, or the context's error.
func (c *Client) GetUser(ctx context.Context, domain, user string) (User, error) {
	p, err := userPath(domain, user)
	if err != nil {
		return User{}, err
	}
	var u User
	err = c.get(ctx, p, nil, &u)
	return u, err
}

// UpdateUser changes a user's dial policy and/or voicemail PIN with a partial PUT that sends
// only the non-nil fields. A request carrying a PIN is never tagged with X-NetSapiens-Log.
// Errors: KindInvalid (bad path segment or an empty update: no request made; or the PBX
// refused the value), KindNotFound, KindUnauthorized, KindForbidden, KindTransient,
// KindInternal, or the context's error.
func (c *Client) UpdateUser(ctx context.Context, domain, user string, u UserUpdate) error {
	p, err := userPath(domain, user)
	if err != nil {
		return err
	}
	if u.DialPolicy == nil && u.VoicemailPIN == nil {
		return invalidf("user update has no field to change")
	}
	// The policy travels in the body, not the path, so any name the PBX has is allowed (a
	// restore must be able to put back whatever was there); only empty and control
	// characters are refused.
	if u.DialPolicy != nil && (*u.DialPolicy == "" || strings.IndexFunc(*u.DialPolicy, unicode.IsControl) >= 0) {
		return invalidf("dial policy is empty or has a control character")
	}
	cl := call{method: http.MethodPut, path: p, body: u}
	if u.VoicemailPIN != nil {
		cl.secret = true
		cl.secrets = []string{u.VoicemailPIN.Reveal()}
	}
	_, err = c.do(ctx, cl)
	return err
}

// GetDialPolicy reads a dial policy by name: the domain's (GET /domains/{d}/dialpolicy/{p})
// and, when that is 404, the system-level one (GET /dialpolicy/{p}, SystemLevel true).
// Errors: KindInvalid (bad domain or name, no request made), KindNotFound (in neither place),
// KindUnauthorized, KindForbidden, KindTransient, KindInternal, or the context's error.
func (c *Client) GetDialPolicy(ctx context.Context, domain, name string) (DialPolicy, error) {
	dp, sp, err := policyPaths(domain, name)
	if err != nil {
		return DialPolicy{}, err
	}
	var pol DialPolicy
	err = c.get(ctx, dp, nil, &pol)
	if errors.Is(err, ErrNotFound) {
		pol = DialPolicy{}
		err = c.get(ctx, sp, nil, &pol)
		pol.SystemLevel = true
	}
	if err != nil {
		return DialPolicy{}, err
	}
	return pol, nil
}

// ListDialPolicyPermissions lists a dial policy's rules, domain-level first and system-level
// on 404, so the caller can warn when a deny policy has a "permit" rule. Errors: as GetDialPolicy.
func (c *Client) ListDialPolicyPermissions(ctx context.Context, domain, name string) ([]Permission, error) {
	dp, sp, err := policyPaths(domain, name)
	if err != nil {
		return nil, err
	}
	perms, err := getList[Permission](ctx, c, dp+"/permission", nil)
	if errors.Is(err, ErrNotFound) {
		perms, err = getList[Permission](ctx, c, sp+"/permission", nil)
	}
	return perms, err
}

func policyPaths(domain, name string) (domainPath, systemPath string, err error) {
	if err := ValidateDomain(domain); err != nil {
		return "", "", err
	}
	if err := ValidatePolicyName(name); err != nil {
		return "", "", err
	}
	esc := url.PathEscape(name)
	return "/domains/" + url.PathEscape(domain) + "/dialpolicy/" + esc, "/dialpolicy/" + esc, nil
}

// RevokeJWT revokes every JWT of a user (DELETE /jwt/{user@domain}). Errors: KindInvalid (bad
// domain or user, no request made), KindNotFound, KindUnauthorized, KindForbidden,
// KindTransient, KindInternal, or the context's error.
func (c *Client) RevokeJWT(ctx context.Context, domain, user string) error {
	if _, err := userPath(domain, user); err != nil {
		return err
	}
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/jwt/" + url.PathEscape(user+"@"+domain)})
	return err
}

// SendEmail sends a templated email to the user's address (POST …/users/{u}/email
// {template, subject}). It is not retried (a retry could send it twice): on KindTransient the
// caller decides. Errors: KindInvalid (bad path segment, empty template or subject: no
// request made), KindNotFound, KindUnauthorized, KindForbidden, KindTransient, KindInternal,
// or the context's error.
func (c *Client) SendEmail(ctx context.Context, domain, user, template, subject string) error {
	p, err := userPath(domain, user)
	if err != nil {
		return err
	}
	if template == "" || subject == "" {
		return invalidf("email template and subject are required")
	}
	body := struct {
		Template string `json:"template"`
		Subject  string `json:"subject"`
	}{template, subject}
	_, err = c.do(ctx, call{method: http.MethodPost, path: p + "/email", body: body})
	return err
}

// ListCalls lists a user's active calls (GET …/users/{u}/calls). Errors: as GetUser.
func (c *Client) ListCalls(ctx context.Context, domain, user string) ([]ActiveCall, error) {
	p, err := userPath(domain, user)
	if err != nil {
		return nil, err
	}
	return getList[ActiveCall](ctx, c, p+"/calls", nil)
}

// EndCall disconnects one of a user's active calls (DELETE …/users/{u}/calls/{id}, id from
// ActiveCall.ID). A retried delete that finds the call gone is a success. Errors: KindInvalid
// (bad path segment, no request made), KindNotFound (no such call), KindUnauthorized,
// KindForbidden, KindTransient, KindInternal, or the context's error.
func (c *Client) EndCall(ctx context.Context, domain, user, callID string) error {
	p, err := userPath(domain, user)
	if err != nil {
		return err
	}
	if err := ValidateCallID(callID); err != nil {
		return err
	}
	_, err = c.do(ctx, call{method: http.MethodDelete, path: p + "/calls/" + url.PathEscape(callID)})
	return err
}

// maxPage is the spec's largest limit.
const maxPage = 1000

// ListCDRs reads up to limit of a user's call detail records between from and to
// (GET …/users/{u}/cdrs?datetime-start&datetime-end&start&limit), paging by 1000.
// Errors: KindInvalid (bad path segment, limit < 1 or to before from: no request made),
// KindNotFound, KindUnauthorized, KindForbidden, KindTransient, KindInternal, or the
// context's error.
func (c *Client) ListCDRs(ctx context.Context, domain, user string, from, to time.Time, limit int) ([]CDR, error) {
	p, err := userPath(domain, user)
	if err != nil {
		return nil, err
	}
	if limit < 1 {
		return nil, invalidf("CDR limit must be at least 1")
	}
	if to.Before(from) {
		return nil, invalidf("CDR time range ends before it starts")
	}
	all := []CDR{}
	for len(all) < limit {
		page := min(limit-len(all), maxPage)
		q := url.Values{}
		q.Set("datetime-start", from.UTC().Format(time.RFC3339))
		q.Set("datetime-end", to.UTC().Format(time.RFC3339))
		q.Set("start", strconv.Itoa(len(all)))
		q.Set("limit", strconv.Itoa(page))
		got, err := getList[CDR](ctx, c, p+"/cdrs", q)
		if err != nil {
			return nil, err
		}
		all = append(all, got...)
		if len(got) < page {
			break
		}
	}
	if len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}
