package netsapiens

import (
	"context"
	"errors"
	"net/url"
	"strconv"
)

// phonesPath validates the domain and returns "/domains/{d}/phones".
func phonesPath(domain string) (string, error) {
	if err := ValidateDomain(domain); err != nil {
		return "", err
	}
	return "/domains/" + url.PathEscape(domain) + "/phones", nil
}

// ListPhones lists a domain's MAC-provisioned phones (GET /domains/{d}/phones?limit=1000; the
// spec offers no start, so a domain with more than 1000 phones is logged as truncated).
// Errors: KindInvalid (bad domain, no request made), KindNotFound, KindUnauthorized,
// KindForbidden, KindTransient, KindInternal, or the context's error.
func (c *Client) ListPhones(ctx context.Context, domain string) ([]Phone, error) {
	p, err := phonesPath(domain)
	if err != nil {
		return nil, err
	}
	phones, err := getList[Phone](ctx, c, opListPhones, p, url.Values{"limit": {strconv.Itoa(maxPage)}})
	if err == nil && len(phones) >= maxPage {
		c.log.Warn().Str("domain", domain).Int("phones", len(phones)).Msg("phone list may be truncated at the API's limit")
	}
	return phones, err
}

// GetPhone reads one phone by MAC (GET /domains/{d}/phones/{mac}); the MAC may use ':' or '-'
// separators. Errors: KindInvalid (bad domain or MAC, no request made), KindNotFound,
// KindUnauthorized, KindForbidden, KindTransient, KindInternal, or the context's error.
func (c *Client) GetPhone(ctx context.Context, domain, mac string) (Phone, error) {
	p, err := phonesPath(domain)
	if err != nil {
		return Phone{}, err
	}
	m, err := NormalizeMAC(mac)
	if err != nil {
		return Phone{}, err
	}
	var ph Phone
	err = c.get(ctx, opGetPhone, p+"/"+m, nil, &ph)
	return ph, err
}

// phoneCall validates the domain and p's MAC, normalises the MAC, fills in the domain and
// returns the call of o (a create or an update) with p as its body.
func phoneCall(o op, domain string, p Phone) (call, Phone, error) {
	path, err := phonesPath(domain)
	if err != nil {
		return call{}, Phone{}, err
	}
	if p.MAC == nil {
		return call{}, Phone{}, invalidf("phone MAC address is empty")
	}
	m, err := NormalizeMAC(*p.MAC)
	if err != nil {
		return call{}, Phone{}, err
	}
	p.MAC = &m
	if p.Domain == nil {
		p.Domain = &domain
	}
	return call{op: o, path: path, body: p, secrets: phoneSecrets(p)}, p, nil
}

// phoneSecrets lists a phone body's secret values, as deviceSecrets does for a device.
func phoneSecrets(p Phone) []string {
	var s []string
	if p.ProvisioningPassword != nil {
		s = append(s, p.ProvisioningPassword.Reveal())
	}
	for _, v := range []*string{p.ProvisioningUsername, p.Overrides} {
		if v != nil {
			s = append(s, *v)
		}
	}
	return s
}

// CreatePhone adds a phone (POST /domains/{d}/phones) with p's non-nil fields under the v45
// names. Like CreateDevice it is never retried blindly: after a transient error the phone is
// read back and, if it exists, the create counts as applied. Errors: KindInvalid (bad domain
// or MAC: no request made; or the PBX refused the body), KindConflict (it already existed),
// KindUnauthorized, KindForbidden, KindTransient (outcome unknown), KindInternal, or the
// context's error.
func (c *Client) CreatePhone(ctx context.Context, domain string, p Phone) error {
	cl, p, err := phoneCall(opCreatePhone, domain, p)
	if err != nil {
		return err
	}
	hadTransient := false
	for attempt := 0; ; attempt++ {
		_, err := c.do(ctx, cl)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrConflict) && hadTransient:
			return nil
		case !errors.Is(err, ErrTransient):
			return err
		}
		hadTransient = true
		_, gerr := c.GetPhone(ctx, domain, *p.MAC)
		switch {
		case gerr == nil:
			return nil
		case !errors.Is(gerr, ErrNotFound), attempt >= c.maxRetries:
			return err
		}
		if serr := c.sleep(ctx, c.backoff(attempt)); serr != nil {
			return ctxError(cl, ctx, serr)
		}
	}
}

// UpdatePhone changes a phone (PUT /domains/{d}/phones, the MAC in the body) with p's non-nil
// fields. Errors: as CreatePhone, with KindNotFound for an unknown MAC.
func (c *Client) UpdatePhone(ctx context.Context, domain string, p Phone) error {
	cl, _, err := phoneCall(opUpdatePhone, domain, p)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, cl)
	return err
}

// DeletePhone removes a phone (DELETE /domains/{d}/phones with the MAC in a JSON body). A retry
// that finds it gone after a lost reply is a success. Errors: KindInvalid (bad domain or MAC,
// no request made), KindNotFound, KindUnauthorized, KindForbidden, KindTransient,
// KindInternal, or the context's error.
func (c *Client) DeletePhone(ctx context.Context, domain, mac string) error {
	path, err := phonesPath(domain)
	if err != nil {
		return err
	}
	m, err := NormalizeMAC(mac)
	if err != nil {
		return err
	}
	body := map[string]string{"device-provisioning-mac-address": m}
	_, err = c.do(ctx, call{op: opDeletePhone, path: path, body: body})
	return err
}
