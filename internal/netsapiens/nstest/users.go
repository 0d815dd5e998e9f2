package nstest

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// page applies the documented start/limit query parameters (start is 0-based here, as N8N
// uses it; the docs' own example is ambiguous) with the spec's default limit of 100.
func page[T any](c *reqCtx, items []T) []T {
	start, _ := strconv.Atoi(c.query.Get("start"))
	limit := 100
	if l, err := strconv.Atoi(c.query.Get("limit")); err == nil {
		limit = l
	}
	if start >= len(items) {
		return []T{}
	}
	items = items[start:]
	if len(items) > limit {
		items = items[:limit]
	}
	return items
}

func (s *Server) listUsers(c *reqCtx) result {
	d, res, ok := s.domainFor(c)
	if !ok {
		return res
	}
	site := c.query.Get("site")
	var out []map[string]any
	for k, u := range s.st.users {
		if strings.HasPrefix(k, d.Domain+"\x00") && (site == "" || str(u["site"]) == site) {
			out = append(out, cloneJSON(u))
		}
	}
	sort.Slice(out, func(i, j int) bool { return str(out[i]["user"]) < str(out[j]["user"]) })
	return result{http.StatusOK, nonNil(page(c, out))}
}

func (s *Server) getUser(c *reqCtx) result {
	_, u, res, ok := s.userFor(c)
	if !ok {
		return res
	}
	return result{http.StatusOK, cloneJSON(u)}
}

// putUser is a partial update: omitted fields keep their value (API.md §4.2).
func (s *Server) putUser(c *reqCtx) result {
	d, u, res, ok := s.userFor(c)
	if !ok {
		return res
	}
	if p, set := c.body["dial-policy"]; set {
		name := str(p)
		if s.st.policy(d.Domain, name) == nil && s.st.policy("*", name) == nil {
			return apiError(http.StatusBadRequest, "Dial policy %s does not exist in domain %s or system-wide", name, d.Domain)
		}
	}
	for k, v := range c.body {
		u[k] = v
	}
	u["last-modified-datetime"] = c.now.UTC().Format(time.RFC3339)
	c.applied = true
	return accepted()
}

func (st *state) policy(domain, name string) *DialPolicy {
	for i, p := range st.policies {
		if p.DialPolicy == name && strings.EqualFold(p.Domain, domain) {
			return &st.policies[i]
		}
	}
	return nil
}

func policyView(p DialPolicy) map[string]any {
	return map[string]any{"dialpolicy": p.DialPolicy, "domain": p.Domain, "description": p.Description}
}

// listPolicies returns the system-level policies and those of every domain the credential reaches.
func (s *Server) listPolicies(c *reqCtx) result {
	out := []map[string]any{}
	for _, p := range s.st.policies {
		d, known := s.st.domains[strings.ToLower(p.Domain)]
		if p.Domain == "*" || (known && c.who.reaches(d)) {
			out = append(out, policyView(p))
		}
	}
	return result{http.StatusOK, out}
}

// The domain-level endpoints find only that domain's own policies and the system-level ones
// only system policies, so a client must look in both places (DESIGN: "else GET /dialpolicy/{p}").
func (s *Server) getSystemPolicy(c *reqCtx) result {
	p := s.st.policy("*", c.params["policy"])
	if p == nil {
		return apiError(http.StatusNotFound, "Dial policy %s not found", c.params["policy"])
	}
	return result{http.StatusOK, policyView(*p)}
}

func (s *Server) getSystemPermissions(c *reqCtx) result {
	p := s.st.policy("*", c.params["policy"])
	if p == nil {
		return apiError(http.StatusNotFound, "Dial policy %s not found", c.params["policy"])
	}
	return result{http.StatusOK, nonNil(cloneJSON(p.Permissions))}
}

func (s *Server) getDomainPolicy(c *reqCtx) result {
	d, res, ok := s.domainFor(c)
	if !ok {
		return res
	}
	p := s.st.policy(d.Domain, c.params["policy"])
	if p == nil {
		return apiError(http.StatusNotFound, "Dial policy %s not found in domain %s", c.params["policy"], d.Domain)
	}
	return result{http.StatusOK, policyView(*p)}
}

func (s *Server) getDomainPermissions(c *reqCtx) result {
	d, res, ok := s.domainFor(c)
	if !ok {
		return res
	}
	p := s.st.policy(d.Domain, c.params["policy"])
	if p == nil {
		return apiError(http.StatusNotFound, "Dial policy %s not found in domain %s", c.params["policy"], d.Domain)
	}
	return result{http.StatusOK, nonNil(cloneJSON(p.Permissions))}
}

// nonNil makes an empty list encode as [] (the API returns an array "even if there's only
// one result", and an empty one rather than null).
func nonNil[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}
