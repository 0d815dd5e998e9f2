package nstest

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Phones (NDP MAC entries) answer with the v45 kebab-case names. Writes accept only the
// names the spec's request schema for the operation lists: in v45 that is NdpPhone's
// kebab-case names, so legacy names such as "mac" or "device1" are unknown fields (400 and
// a violation), whatever older servers accepted.

func newPhone(d Domain, mac, model string, now time.Time) map[string]any {
	ts := now.UTC().Format(time.RFC3339)
	p := map[string]any{
		fieldMAC: mac, "domain": d.Domain, "reseller": d.Reseller, fieldPhoneMod: model,
		"device-provisioning-registration-core-server": "", "notes": "",
		"device-provisioning-sip-transport-protocol": "udp",
		"created-datetime":                           ts, "last-modified-datetime": ts,
	}
	for i := 1; i <= maxLines; i++ {
		p[fmt.Sprintf("device-provisioning-sip-uri-%d", i)] = ""
	}
	return p
}

// phoneByMAC looks a MAC up system-wide: a MAC address belongs to one domain at a time.
func (st *state) phoneByMAC(mac string) (map[string]any, bool) {
	for k, p := range st.phones {
		if strings.HasSuffix(k, "\x00"+strings.ToLower(mac)) {
			return p, true
		}
	}
	return nil, false
}

func (s *Server) listPhones(c *reqCtx) result {
	d, res, ok := s.domainFor(c)
	if !ok {
		return res
	}
	return result{http.StatusOK, nonNil(page(c, s.st.domainPhones(d.Domain)))}
}

func (s *Server) getPhone(c *reqCtx) result {
	d, res, ok := s.domainFor(c)
	if !ok {
		return res
	}
	p := s.st.phones[key(d.Domain, strings.ToLower(c.params["mac"]))]
	if p == nil {
		return apiError(http.StatusNotFound, "MAC %s not found in domain %s", c.params["mac"], d.Domain)
	}
	return result{http.StatusOK, cloneJSON(p)}
}

func (s *Server) createPhone(c *reqCtx) result {
	d, res, ok := s.domainFor(c)
	if !ok {
		return res
	}
	mac := strings.ToLower(str(c.body[fieldMAC]))
	if _, exists := s.st.phoneByMAC(mac); exists {
		return apiError(http.StatusConflict, "MAC address %s already exists", mac)
	}
	p := newPhone(d, mac, str(c.body[fieldPhoneMod]), c.now)
	for k, v := range c.body {
		if k != fieldMAC && k != "domain" {
			p[k] = v
		}
	}
	s.st.phones[key(d.Domain, mac)] = p
	c.applied = true
	return accepted()
}

// putPhone updates the phone named by the MAC in the body; omitted fields keep their value.
func (s *Server) putPhone(c *reqCtx) result {
	d, res, ok := s.domainFor(c)
	if !ok {
		return res
	}
	mac := strings.ToLower(str(c.body[fieldMAC]))
	p := s.st.phones[key(d.Domain, mac)]
	if p == nil {
		return apiError(http.StatusNotFound, "MAC %s not found in domain %s", mac, d.Domain)
	}
	for k, v := range c.body {
		if k != fieldMAC && k != "domain" {
			p[k] = v
		}
	}
	p["last-modified-datetime"] = c.now.UTC().Format(time.RFC3339)
	c.applied = true
	return accepted()
}

func (s *Server) deletePhone(c *reqCtx) result {
	d, res, ok := s.domainFor(c)
	if !ok {
		return res
	}
	mac := strings.ToLower(str(c.body[fieldMAC]))
	if s.st.phones[key(d.Domain, mac)] == nil {
		return apiError(http.StatusNotFound, "MAC %s not found in domain %s", mac, d.Domain)
	}
	delete(s.st.phones, key(d.Domain, mac))
	c.applied = true
	return accepted()
}
