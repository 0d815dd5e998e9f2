package netsapiens

import (
	"context"
	"errors"
	"net/url"
)

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
	err = c.get(ctx, opGetDialPolicy, dp, nil, &pol)
	if errors.Is(err, ErrNotFound) {
		pol = DialPolicy{}
		err = c.get(ctx, opGetDialPolicy, sp, nil, &pol)
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
	perms, err := getList[Permission](ctx, c, opListDialPolicyPermissions, dp+"/permission", nil)
	if errors.Is(err, ErrNotFound) {
		perms, err = getList[Permission](ctx, c, opListDialPolicyPermissions, sp+"/permission", nil)
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
