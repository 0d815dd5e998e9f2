package netsapiens

import (
	"context"
	"errors"
	"net/url"
	"strings"
)

// ListDialPolicies lists the dial policies a user of domain can be given: the domain's own and
// the system-level ones (SystemLevel true), in the PBX's order. The API has no per-domain list
// (API.md §5: only GET /dialpolicy, which answers the system's and those of every domain the
// credential reaches), so the other domains' policies are filtered out here. Errors: KindInvalid
// (bad domain, no request made), KindUnauthorized, KindForbidden, KindTransient, KindInternal, or
// the context's error.
func (c *Client) ListDialPolicies(ctx context.Context, domain string) ([]DialPolicy, error) {
	if err := ValidateDomain(domain); err != nil {
		return nil, err
	}
	all, err := getList[DialPolicy](ctx, c, opListDialPolicies, "/dialpolicy", nil)
	if err != nil {
		return nil, err
	}
	out := make([]DialPolicy, 0, len(all))
	for _, p := range all {
		switch {
		case p.Name == "":
		case p.Domain == "*":
			p.SystemLevel = true
			out = append(out, p)
		case strings.EqualFold(p.Domain, domain):
			out = append(out, p)
		}
	}
	return out, nil
}

// GetDialPolicy reads a dial policy by name: the domain's (GetDomainDialPolicy) and, when that
// is 404, the system-level one (GetSystemDialPolicy, SystemLevel true). Errors: KindInvalid (bad
// domain or name, no request made), KindNotFound (in neither place), KindUnauthorized,
// KindForbidden, KindTransient, KindInternal, or the context's error.
func (c *Client) GetDialPolicy(ctx context.Context, domain, name string) (DialPolicy, error) {
	pol, err := c.GetDomainDialPolicy(ctx, domain, name)
	if errors.Is(err, ErrNotFound) {
		return c.GetSystemDialPolicy(ctx, name)
	}
	return pol, err
}

// GetDomainDialPolicy reads the domain's own dial policy of that name (GET
// /domains/{d}/dialpolicy/{p}), without looking system-wide. Errors: as GetDialPolicy
// (KindNotFound: the domain has none of that name).
func (c *Client) GetDomainDialPolicy(ctx context.Context, domain, name string) (DialPolicy, error) {
	dp, _, err := policyPaths(domain, name)
	if err != nil {
		return DialPolicy{}, err
	}
	var pol DialPolicy
	if err := c.get(ctx, opGetDialPolicy, dp, nil, &pol); err != nil {
		return DialPolicy{}, err
	}
	return pol, nil
}

// GetSystemDialPolicy reads the system-level dial policy of that name (GET /dialpolicy/{p}),
// SystemLevel true: the same for every domain. Errors: as GetDialPolicy.
func (c *Client) GetSystemDialPolicy(ctx context.Context, name string) (DialPolicy, error) {
	sp, err := systemPolicyPath(name)
	if err != nil {
		return DialPolicy{}, err
	}
	var pol DialPolicy
	if err := c.get(ctx, opGetDialPolicy, sp, nil, &pol); err != nil {
		return DialPolicy{}, err
	}
	pol.SystemLevel = true
	return pol, nil
}

// ListDialPolicyPermissions lists a dial policy's rules, domain-level first and system-level
// on 404, so the caller can warn when a deny policy has a "permit" rule. Errors: as GetDialPolicy.
func (c *Client) ListDialPolicyPermissions(ctx context.Context, domain, name string) ([]Permission, error) {
	perms, err := c.ListDomainDialPolicyPermissions(ctx, domain, name)
	if errors.Is(err, ErrNotFound) {
		return c.ListSystemDialPolicyPermissions(ctx, name)
	}
	return perms, err
}

// ListDomainDialPolicyPermissions lists the rules of the domain's own dial policy of that name.
// Errors: as GetDialPolicy.
func (c *Client) ListDomainDialPolicyPermissions(ctx context.Context, domain, name string) ([]Permission, error) {
	dp, _, err := policyPaths(domain, name)
	if err != nil {
		return nil, err
	}
	return getList[Permission](ctx, c, opListDialPolicyPermissions, dp+"/permission", nil)
}

// ListSystemDialPolicyPermissions lists the rules of the system-level dial policy of that name.
// Errors: as GetDialPolicy.
func (c *Client) ListSystemDialPolicyPermissions(ctx context.Context, name string) ([]Permission, error) {
	sp, err := systemPolicyPath(name)
	if err != nil {
		return nil, err
	}
	return getList[Permission](ctx, c, opListDialPolicyPermissions, sp+"/permission", nil)
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

func systemPolicyPath(name string) (string, error) {
	if err := ValidatePolicyName(name); err != nil {
		return "", err
	}
	return "/dialpolicy/" + url.PathEscape(name), nil
}
