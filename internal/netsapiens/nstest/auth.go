package nstest

import (
	"crypto/rand"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"
)

// principal is who a request acts as.
type principal struct {
	kind       string // "apikey" | "oauth"
	reseller   string // "*" = every reseller (Super User)
	domain     string // "*" = every domain of reseller
	user       string
	homeDomain string // what "~" means as {domain}
	scope      string
	readOnly   bool
	apiKey     *APIKey
}

func wideScope(scope string) bool { return scope == "Reseller" || scope == "Super User" }

// authenticate resolves the Bearer token. who is set whenever the token's kind is known,
// even if it is expired, so the call log says which kind of credential failed.
func (s *Server) authenticate(header string, now time.Time) (who *principal, res result, ok bool) {
	tok, found := strings.CutPrefix(header, "Bearer ")
	if !found || strings.TrimSpace(tok) == "" {
		return nil, apiError(http.StatusUnauthorized, "Authentication Required"), false
	}
	tok = strings.TrimSpace(tok)
	if s.keyRevoked(tok) {
		return &principal{kind: "apikey"}, apiError(http.StatusUnauthorized, "Invalid or unknown access token"), false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, ak := range s.st.keys {
		if subtle.ConstantTimeCompare([]byte(k), []byte(tok)) == 1 {
			ak := ak
			return &principal{
				kind: "apikey", reseller: ak.Reseller, domain: ak.Domain, user: ak.User, homeDomain: ak.HomeDomain,
				scope: ak.UserScope, readOnly: ak.ReadOnly == "yes", apiKey: &ak,
			}, result{}, true
		}
	}
	t, found := s.st.access[tok]
	if !found {
		return nil, apiError(http.StatusUnauthorized, "Invalid or unknown access token"), false
	}
	who = s.st.loginPrincipal(t.login)
	if !now.Before(t.expires) {
		return who, apiError(http.StatusUnauthorized, "Access token expired"), false
	}
	return who, result{}, true
}

func (st *state) loginPrincipal(l Login) *principal {
	p := &principal{kind: "oauth", domain: strings.ToLower(l.Domain), user: l.User, homeDomain: strings.ToLower(l.Domain), scope: l.Scope}
	if d, ok := st.domains[p.domain]; ok {
		p.reseller = d.Reseller
	}
	if wideScope(l.Scope) {
		p.domain = "*"
		if l.Scope == "Super User" {
			p.reseller = "*"
		}
	}
	return p
}

// reaches reports whether the principal may act in domain d.
func (p *principal) reaches(d Domain) bool {
	if p.domain != "*" {
		return strings.EqualFold(p.domain, d.Domain)
	}
	return p.reseller == "*" || p.reseller == d.Reseller
}

// domainFor resolves the {domain} parameter: "~" is the credential's own domain; a domain
// outside the credential's scope is 403, like the real API, and one that does not exist is
// 404 only for a credential that could see it if it did.
func (s *Server) domainFor(c *reqCtx) (Domain, result, bool) {
	raw := c.params["domain"]
	if raw == "~" {
		raw = c.who.homeDomain
		if raw == "" {
			return Domain{}, apiError(http.StatusBadRequest, "Domain ~ cannot be resolved for this credential"), false
		}
	}
	d, ok := s.st.domains[strings.ToLower(raw)]
	if !ok {
		if c.who.domain == "*" {
			return Domain{}, apiError(http.StatusNotFound, "Domain %s does not exist", raw), false
		}
		return Domain{}, apiError(http.StatusForbidden, "Domain not found or access denied"), false
	}
	if !c.who.reaches(d) {
		return Domain{}, apiError(http.StatusForbidden, "Domain not found or access denied"), false
	}
	d.Domain = strings.ToLower(d.Domain)
	return d, result{}, true
}

// userFor resolves {domain} and {user} ("~" = the credential's own user).
func (s *Server) userFor(c *reqCtx) (Domain, map[string]any, result, bool) {
	d, res, ok := s.domainFor(c)
	if !ok {
		return d, nil, res, false
	}
	name := c.params["user"]
	if name == "~" {
		name = c.who.user
	}
	u, ok := s.st.users[key(d.Domain, name)]
	if !ok {
		return d, nil, apiError(http.StatusNotFound, "User %s does not exist in domain %s", name, d.Domain), false
	}
	return d, u, result{}, true
}

func (s *Server) postTokens(c *reqCtx) result {
	b := c.body
	client, ok := s.st.clients[str(b["client_id"])]
	if !ok || subtle.ConstantTimeCompare([]byte(client.ClientSecret), []byte(str(b["client_secret"]))) != 1 {
		return apiError(http.StatusUnauthorized, "Invalid client_id or client_secret")
	}
	var login Login
	switch str(b["grant_type"]) {
	case "password":
		l, ok := s.st.logins[str(b["username"])]
		if !ok || subtle.ConstantTimeCompare([]byte(l.Password), []byte(str(b["password"]))) != 1 {
			return apiError(http.StatusUnauthorized, "Invalid username or password")
		}
		login = l
	case "refresh_token":
		t, ok := s.st.refresh[str(b["refresh_token"])]
		if !ok || t.clientID != client.ClientID {
			return apiError(http.StatusUnauthorized, "Invalid refresh token")
		}
		login = t.login
	default:
		return apiError(http.StatusBadRequest, "grant_type %s is not supported by the simulator", str(b["grant_type"]))
	}
	access, refresh := randomToken(), randomToken()
	t := &token{login: login, clientID: client.ClientID, expires: c.now.Add(s.tokenTTL)}
	s.st.access[access] = t
	s.st.refresh[refresh] = t
	who := s.st.loginPrincipal(login)
	email, first, last := "", "", ""
	if u := s.st.users[key(strings.ToLower(login.Domain), login.User)]; u != nil {
		email, first, last = str(u["email-address"]), str(u["name-first-name"]), str(u["name-last-name"])
	}
	return result{http.StatusOK, map[string]any{
		"username": login.Username, "user": login.User, "territory": who.reseller, "domain": login.Domain,
		"site": "", "group": "", "department": "", "uid": login.User + "@" + login.Domain, "login": login.Username,
		"scope": login.Scope, "user_email": email, "displayName": strings.TrimSpace(first + " " + last),
		"access_token": access, "expires_in": int(s.tokenTTL / time.Second), "token_type": "Bearer",
		"refresh_token": refresh, "client_id": client.ClientID, "apiversion": apiVersion,
	}}
}

const apiVersion = "Version: 45.0.0 (nstest)"

func (s *Server) getMyAPIKey(c *reqCtx) result {
	k := c.who.apiKey
	if k == nil {
		return apiError(http.StatusNotFound, "The credential is not an API key")
	}
	return result{http.StatusOK, map[string]any{
		"key-id": k.KeyID, "description": k.Description, "reseller": k.Reseller, "domain": k.Domain,
		"user": k.User, "user-scope": k.UserScope, "ip-address": "", "readonly": orDefault(k.ReadOnly, "no"),
		"can-create-keys": "no", "allowed-models": "*", "created-datetime": "2024-01-01T00:00:00+00:00",
		"lastused-datetime": c.now.UTC().Format(time.RFC3339),
	}}
}

func (s *Server) getVersion(c *reqCtx) result {
	return result{http.StatusOK, map[string]any{
		"apiversion": apiVersion, "hostname": "nstest.invalid", "current-time": c.now.UTC().Format(time.RFC3339),
	}}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomString draws n letters and digits from crypto/rand (rand.Text's alphabet is
// base32, so it would never produce lower-case letters and digits 0, 1, 8, 9).
func randomString(n int) string {
	b := make([]byte, n)
	buf := make([]byte, 1)
	for i := 0; i < n; {
		if _, err := rand.Read(buf); err != nil {
			panic("nstest: crypto/rand: " + err.Error())
		}
		// Reject the top of the byte range so every character is equally likely.
		if int(buf[0]) >= 256-256%len(tokenAlphabet) {
			continue
		}
		b[i] = tokenAlphabet[int(buf[0])%len(tokenAlphabet)]
		i++
	}
	return string(b)
}

func randomToken() string { return randomString(40) }
