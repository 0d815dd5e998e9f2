package netsapiens

import (
	"context"
	"net/url"
)

// RevokeJWT revokes every JWT of a user (DELETE /jwt/{user@domain}). Errors: KindInvalid (bad
// domain or user, no request made), KindNotFound, KindUnauthorized, KindForbidden,
// KindTransient, KindInternal, or the context's error.
func (c *Client) RevokeJWT(ctx context.Context, domain, user string) error {
	if _, err := userPath(domain, user); err != nil {
		return err
	}
	_, err := c.do(ctx, call{op: opRevokeJWT, path: "/jwt/" + url.PathEscape(user+"@"+domain)})
	return err
}
