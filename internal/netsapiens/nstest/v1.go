package nstest

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The v1 (legacy) API, as far as the bot uses it: POST https://{server}/ns-api/ with
// ?object=subscriber&action=update and form fields, to set a portal password (pwd), which the
// v2 API cannot do (API.md §1, §8: the v1 Postman collection's Subscriber update). It is not in
// the v2 spec subset, so the checks here are the simulator's own: the one action, its known
// fields, a password that is not empty, the same Bearer authentication and scope as v2. v1 has
// no documented way to read a password back, and the simulator offers none over HTTP either.

// V1Path is the v1 endpoint's path.
const V1Path = "/ns-api/"

// v1Fields are the form and query fields the simulated subscriber update accepts.
var v1Fields = []string{"object", "action", "format", "uid", "domain", "user", "pwd"}

func (s *Server) handleV1(r *http.Request, raw []byte, call *Call) result {
	now := s.now()
	if r.Method != http.MethodPost {
		s.violate(r.Method, call.Path, "the v1 API takes POST")
		return apiError(http.StatusMethodNotAllowed, "Method Not Allowed")
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		s.violate(r.Method, call.Path, "the v1 API takes a form-encoded body")
		return apiError(http.StatusBadRequest, "Invalid request")
	}
	for k, v := range r.URL.Query() {
		form[k] = append(form[k], v...)
	}
	for k := range form {
		if !slices.Contains(v1Fields, k) {
			s.violate(r.Method, call.Path, "unknown v1 field "+k)
			return apiError(http.StatusBadRequest, "Invalid field %s", k)
		}
	}
	if form.Get("object") != "subscriber" || form.Get("action") != "update" {
		return apiError(http.StatusNotImplemented, "v1 object=%s&action=%s is not simulated by nstest", form.Get("object"), form.Get("action"))
	}
	who, res, ok := s.authenticate(r.Header.Get("Authorization"), now)
	if who != nil {
		call.Auth = who.kind
	}
	if !ok {
		return res
	}
	if who.readOnly {
		return apiError(http.StatusForbidden, "Permission Denied")
	}
	user, domain := form.Get("user"), form.Get("domain")
	if uid := form.Get("uid"); uid != "" {
		u, d, ok := strings.Cut(uid, "@")
		if !ok || (user != "" && u != user) || (domain != "" && !strings.EqualFold(d, domain)) {
			return apiError(http.StatusBadRequest, "uid %s does not match user and domain", uid)
		}
		user, domain = u, d
	}
	pwd := form.Get("pwd")
	if pwd == "" {
		return apiError(http.StatusBadRequest, "pwd must not be empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &reqCtx{method: r.Method, params: map[string]string{"domain": domain, "user": user}, now: now, who: who}
	d, u, res, ok := s.userFor(c)
	if !ok {
		return res
	}
	if s.st.portal == nil {
		s.st.portal = map[string]string{}
	}
	s.st.portal[str(u["user"])+"@"+d.Domain] = pwd
	call.Applied = true
	return accepted()
}

// PortalPassword returns the portal password last set through v1 for user@domain, and
// whether one was (a test hook: over HTTP it cannot be read, as on a real PBX).
func (s *Server) PortalPassword(domain, user string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.st.portal[user+"@"+strings.ToLower(domain)]
	return p, ok
}
