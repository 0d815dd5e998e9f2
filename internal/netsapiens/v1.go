package netsapiens

import (
	"context"
	"net/url"
)

// The v1 (legacy) API: https://{server}/ns-api/ with ?object=…&action=… and form fields
// (API.md §1, §8). The bot uses it for one thing the v2 API cannot do: set a user's portal
// password (object=subscriber&action=update with pwd). v1 has no documented way to read a
// password back, so a caller can only report it as requested.

// SetPortalPassword sets the user's portal password (v1 POST ?object=subscriber&action=update,
// form fields uid, domain, user, pwd, format=json). The password never appears in a log, an
// error or a tagged request. Errors: KindInvalid (bad path segment or an empty password, no
// request made), KindNotFound, KindUnauthorized, KindForbidden, KindTransient, KindInternal,
// or the context's error.
func (c *Client) SetPortalPassword(ctx context.Context, domain, user string, pwd Secret) error {
	if err := ValidateDomain(domain); err != nil {
		return err
	}
	if err := ValidateUser(user); err != nil {
		return err
	}
	if pwd == "" {
		return invalidf("portal password is empty")
	}
	q := url.Values{"object": {"subscriber"}, "action": {"update"}, "format": {"json"}}
	form := url.Values{"uid": {user + "@" + domain}, "domain": {domain}, "user": {user}, "pwd": {pwd.Reveal()}}
	_, err := c.do(ctx, call{op: opV1UpdateSubscriber, v1: true, path: "/", query: q, form: form,
		secrets: []string{pwd.Reveal(), url.QueryEscape(pwd.Reveal())}}) // as sent, should the PBX echo the form
	return err
}
