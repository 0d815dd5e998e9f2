package netsapiens

import (
	"context"
	"net/url"
	"strconv"
	"strings"
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

// GetUser reads a user (GET /domains/{d}/users/{u}). Errors: KindInvalid for a bad domain or
// user (no request made), KindNotFound, KindUnauthorized, KindForbidden, KindTransient,
// KindInternal, or the context's error.
func (c *Client) GetUser(ctx context.Context, domain, user string) (User, error) {
	p, err := userPath(domain, user)
	if err != nil {
		return User{}, err
	}
	var u User
	err = c.get(ctx, opGetUser, p, nil, &u)
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
	cl := call{op: opUpdateUser, path: p, body: u}
	if u.VoicemailPIN != nil {
		cl.secrets = []string{u.VoicemailPIN.Reveal()}
	}
	_, err = c.do(ctx, cl)
	return err
}

// MaxListUsers bounds ListUsers: a domain with more users than this is refused rather than read
// in part (a lockdown must name every user, or none).
const MaxListUsers = 10000

// ListUsers reads every user of a domain (GET /domains/{d}/users?start&limit), paging by the
// spec's largest limit. Errors: KindInvalid (bad domain: no request made; or more than
// MaxListUsers users), KindNotFound (no such domain), KindUnauthorized, KindForbidden,
// KindTransient, KindInternal, or the context's error.
func (c *Client) ListUsers(ctx context.Context, domain string) ([]User, error) {
	if err := ValidateDomain(domain); err != nil {
		return nil, err
	}
	p := "/domains/" + url.PathEscape(domain) + "/users"
	all := []User{}
	for {
		q := url.Values{"start": {strconv.Itoa(len(all))}, "limit": {strconv.Itoa(maxPage)}}
		got, err := getList[User](ctx, c, opListUsers, p, q)
		if err != nil {
			return nil, err
		}
		all = append(all, got...)
		if len(got) < maxPage {
			return all, nil
		}
		if len(all) >= MaxListUsers {
			return nil, invalidf("domain has more than %d users", MaxListUsers)
		}
	}
}
