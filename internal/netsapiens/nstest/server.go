// Package nstest is an in-memory NetSapiens API v2 server (an http.Handler) for tests,
// drills and cmd/pbxsim. It follows the official v45.0 spec: every request is checked
// against an embedded subset of it (spec/v45-subset.json, made by scripts/trimspec), and
// anything the spec does not document is answered 400 (or 404 for an unknown route) and
// recorded as a Violation, so a client that drifts from the real API fails its tests here
// rather than in production. It also injects faults (faults.go: latency, 5xx, 429, dropped
// connections before or after the write was applied, a 502 after it, the whole PBX down,
// expired OAuth tokens, a revoked API key) and keeps a redacted call log.
//
// It must not import internal/netsapiens: that client's tests import this package.
package nstest

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// BasePath is the prefix of every API path the server answers.
const BasePath = "/ns-api/v2"

// Options configures a Server.
type Options struct {
	Seed     *Seed            // nil = the demo tenant (DemoSeed())
	TokenTTL time.Duration    // OAuth access-token lifetime; 0 = 1h
	Logger   zerolog.Logger   // zero value = no logging
	Now      func() time.Time // nil = time.Now
}

// Call is one request as the server saw it.
type Call struct {
	Method  string
	Path    string // unescaped, without the /ns-api/v2 prefix
	RawPath string // as sent (escaped), without the prefix
	Query   url.Values
	Body    []byte // secret fields replaced by "[redacted]"
	Status  int    // 0 = no answer (connection dropped, or the client gave up during Latency)
	LogTag  string // the X-NetSapiens-Log header
	// Secret is true when the request or the answer held a secret (a password, the PIN, a
	// token): a call that the PBX's detailed logging, which LogTag turns on, would write a
	// secret for. A client must never tag such a call.
	Secret  bool
	Auth    string // "apikey" | "oauth" | "none"
	Applied bool   // the request changed state (true for a lost-reply 502 from RateAfter5xx, too)
	At      time.Time
}

// Violation is a request that does not follow the spec.
type Violation struct {
	Method, Path, Problem string
}

// SentEmail is a POST …/users/{u}/email the server accepted.
type SentEmail struct {
	Domain, User, Template, Subject, To string
	At                                  time.Time
}

// Server is the simulator. Its methods are safe for concurrent use.
type Server struct {
	log      zerolog.Logger
	now      func() time.Time
	tokenTTL time.Duration
	spec     *spec
	apiKey   string

	mu sync.Mutex // guards st, calls, violations
	st *state

	calls      []Call
	violations []Violation

	fmu         sync.Mutex // guards faults, rng, failNext, down, revokedKeys
	faults      Faults
	rng         *rand.Rand
	failNext    []oneShot
	down        bool
	revokedKeys map[string]bool
}

// New builds a server from opts. It panics if the embedded spec does not parse (a build
// defect the package tests rule out); a bad Seed is reported by LoadSeed, not here.
func New(opts Options) *Server {
	sp, err := theSpec()
	if err != nil {
		panic(fmt.Sprintf("nstest: %v", err))
	}
	seed := opts.Seed
	if seed == nil {
		seed = DemoSeed()
	}
	s := &Server{
		log:      opts.Logger,
		now:      opts.Now,
		tokenTTL: opts.TokenTTL,
		spec:     sp,
		rng:      rand.New(rand.NewPCG(0, 0)),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.tokenTTL <= 0 {
		s.tokenTTL = time.Hour
	}
	if len(seed.APIKeys) > 0 {
		s.apiKey = seed.APIKeys[0].Key
	}
	s.st = newState(seed)
	return s
}

// TB is the part of testing.TB that Start uses. It is declared here so that this package,
// which cmd/bot's drill links into the production binary, never imports the testing package.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
}

// Start serves s on a loopback httptest.Server and returns it with the base URL
// (".../ns-api/v2"). At Cleanup it closes the server and reports every recorded spec
// violation with tb.Errorf; a test that provokes violations on purpose calls ResetViolations.
// Pass the test's *testing.T (or B, F).
func Start(tb TB, opts Options) (*Server, string) {
	tb.Helper()
	s := New(opts)
	ts := httptest.NewServer(s)
	tb.Cleanup(func() {
		ts.Close()
		for _, v := range s.Violations() {
			tb.Errorf("nstest: spec violation: %s %s: %s", v.Method, v.Path, v.Problem)
		}
	})
	return s, ts.URL + BasePath
}

// APIKey is the seed's first API key (a Bearer token with reseller scope in the demo seed).
func (s *Server) APIKey() string { return s.apiKey }

// Calls returns a copy of the call log, in arrival order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		out[i] = copyCall(c)
	}
	return out
}

// ResetCalls empties the call log.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// Writes returns the POST/PUT/DELETE/PATCH calls that were answered 2xx, in order.
// POST /tokens is left out: logging in changes nothing on the PBX.
func (s *Server) Writes() []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Path == "/tokens" {
			continue
		}
		switch c.Method {
		case http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch:
			if c.Status >= 200 && c.Status < 300 {
				out = append(out, c)
			}
		}
	}
	return out
}

// Violations returns every spec violation seen so far.
func (s *Server) Violations() []Violation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Violation(nil), s.violations...)
}

// ResetViolations forgets the recorded violations (for tests that send bad requests on purpose).
func (s *Server) ResetViolations() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = nil
}

func copyCall(c Call) Call {
	c.Body = append([]byte(nil), c.Body...)
	q := url.Values{}
	for k, v := range c.Query {
		q[k] = append([]string(nil), v...)
	}
	c.Query = q
	return c
}

// reqCtx is what a handler gets.
type reqCtx struct {
	method  string
	op      *operation
	params  map[string]string
	query   url.Values
	body    map[string]any // decoded JSON object (numbers as float64); empty if no body
	who     *principal
	now     time.Time
	applied bool
	// secret is set by a handler whose effect carries a secret the request and the answer do
	// not show (the reset e-mail the PBX renders): the call is Secret.
	secret bool
	// problems are spec rules the handler found broken (rules the schema cannot express,
	// e.g. a MAC without a model); handle records them as violations.
	problems []string
}

type result struct {
	status int
	body   any
}

func apiError(code int, format string, args ...any) result {
	return result{code, map[string]any{"code": code, "message": fmt.Sprintf(format, args...)}}
}

func accepted() result {
	return result{http.StatusAccepted, map[string]any{"code": http.StatusAccepted, "message": "Accepted"}}
}

const maxBody = 1 << 20

// ServeHTTP answers one API request: faults first, then routing, authentication, spec
// validation and the operation. Errors are the API's {"code":N,"message":"…"} bodies.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	call := Call{
		Method: r.Method,
		Path:   strings.TrimPrefix(r.URL.Path, BasePath),
		Query:  redactQuery(r.URL.Query()),
		Body:   redactBody(body),
		LogTag: r.Header.Get("X-NetSapiens-Log"),
		Auth:   "none",
		At:     start,
	}
	call.RawPath = strings.TrimPrefix(r.URL.EscapedPath(), BasePath)
	call.Secret = holdsSecret(body) || queryHoldsSecret(r.URL.Query())
	defer func() {
		s.mu.Lock()
		s.calls = append(s.calls, call)
		s.mu.Unlock()
		s.log.Debug().Str("method", call.Method).Str("path", call.Path).Int("status", call.Status).
			Str("log_tag", call.LogTag).Dur("took", s.now().Sub(start)).Msg("nstest request")
	}()

	if !s.injectBefore(w, r, &call) {
		return
	}
	res := s.handle(r, body, &call)
	if call.Applied {
		// The write happened, but the client never hears so: the lost-reply case that a
		// client must survive without creating the same thing twice.
		switch s.drawAfter(r.Method, call.Path) {
		case reply502:
			res = apiError(http.StatusBadGateway, "Bad Gateway")
		case replyDropped:
			dropConnection(w)
			return
		}
	}
	if res.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	call.Status = res.status
	if res.body != nil {
		if b, err := json.Marshal(res.body); err == nil && holdsSecret(b) {
			call.Secret = true
		}
	}
	writeJSON(w, res)
}

func writeJSON(w http.ResponseWriter, res result) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(res.status)
	if res.body != nil {
		_ = json.NewEncoder(w).Encode(res.body)
	}
}

// handle routes, authenticates, validates and runs the operation.
func (s *Server) handle(r *http.Request, raw []byte, call *Call) result {
	if r.URL.Path == V1Path {
		return s.handleV1(r, raw, call) // v1.go
	}
	if !strings.HasPrefix(r.URL.Path, BasePath+"/") {
		s.violate(r.Method, r.URL.Path, "path is outside "+BasePath)
		return apiError(http.StatusNotFound, "No Route Found [92]")
	}
	var segs []string
	for _, seg := range strings.Split(strings.Trim(call.RawPath, "/"), "/") {
		u, err := url.PathUnescape(seg)
		if err != nil {
			s.violate(r.Method, call.Path, "path segment is not valid URL escaping")
			return apiError(http.StatusBadRequest, "Invalid path")
		}
		segs = append(segs, u)
	}
	op, params, pathKnown := s.spec.match(r.Method, segs)
	switch {
	case op == nil && pathKnown:
		s.violate(r.Method, call.Path, "the spec documents no "+r.Method+" for this path")
		return apiError(http.StatusNotFound, "No Route Found [92]")
	case op == nil:
		s.violate(r.Method, call.Path, "undocumented path")
		return apiError(http.StatusNotFound, "No Route Found [92]")
	case !op.implemented:
		return apiError(http.StatusNotImplemented, "%s %s is in the spec but not simulated by nstest", op.method, op.template)
	}

	c := &reqCtx{method: r.Method, op: op, params: params, query: r.URL.Query(), now: s.now()}
	needsAuth := !(op.template == "/tokens" || op.template == "/version")
	if needsAuth {
		who, res, ok := s.authenticate(r.Header.Get("Authorization"), c.now)
		if who != nil {
			call.Auth = who.kind
		}
		if !ok {
			return res
		}
		c.who = who
	}
	probs := s.spec.validate(op, specRequest{
		method: r.Method, params: params, query: r.URL.Query(), body: raw, contentType: r.Header.Get("Content-Type"),
	})
	if len(probs) > 0 {
		for _, p := range probs {
			s.violate(r.Method, call.Path, p)
		}
		return apiError(http.StatusBadRequest, "Invalid request: %s", strings.Join(probs, "; "))
	}
	c.body = map[string]any{}
	if len(strings.TrimSpace(string(raw))) > 0 {
		_ = json.Unmarshal(raw, &c.body) // validated above
	}
	h := handlers[op.method+" "+op.template]
	if h == nil {
		return apiError(http.StatusNotImplemented, "%s %s has no handler", op.method, op.template)
	}
	if c.who != nil && c.who.readOnly && r.Method != http.MethodGet {
		return apiError(http.StatusForbidden, "Permission Denied")
	}
	s.mu.Lock()
	res := h(s, c)
	s.mu.Unlock()
	for _, p := range c.problems {
		s.violate(r.Method, call.Path, p)
	}
	call.Applied = c.applied
	call.Secret = call.Secret || c.secret
	return res
}

func (s *Server) violate(method, path, problem string) {
	s.mu.Lock()
	s.violations = append(s.violations, Violation{Method: method, Path: path, Problem: problem})
	s.mu.Unlock()
	s.log.Warn().Str("method", method).Str("path", path).Str("problem", problem).Msg("nstest: spec violation")
}

type handlerFunc func(s *Server, c *reqCtx) result

// handlers maps "METHOD template" (as in the spec subset) to its implementation.
var handlers = map[string]handlerFunc{
	"POST /tokens":                                           (*Server).postTokens,
	"GET /apikeys/~":                                         (*Server).getMyAPIKey,
	"GET /version":                                           (*Server).getVersion,
	"GET /domains/{domain}/users":                            (*Server).listUsers,
	"GET /domains/{domain}/users/{user}":                     (*Server).getUser,
	"PUT /domains/{domain}/users/{user}":                     (*Server).putUser,
	"GET /dialpolicy":                                        (*Server).listPolicies,
	"GET /dialpolicy/{policy}":                               (*Server).getSystemPolicy,
	"GET /dialpolicy/{policy}/permission":                    (*Server).getSystemPermissions,
	"GET /domains/{domain}/dialpolicy/{policy}":              (*Server).getDomainPolicy,
	"GET /domains/{domain}/dialpolicy/{policy}/permission":   (*Server).getDomainPermissions,
	"GET /domains/{domain}/users/{user}/devices":             (*Server).listUserDevices,
	"POST /domains/{domain}/users/{user}/devices":            (*Server).createDevice,
	"GET /domains/{domain}/users/{user}/devices/{device}":    (*Server).getDevice,
	"PUT /domains/{domain}/users/{user}/devices/{device}":    (*Server).putDevice,
	"DELETE /domains/{domain}/users/{user}/devices/{device}": (*Server).deleteDevice,
	"GET /domains/{domain}/devices":                          (*Server).listDomainDevices,
	"GET /domains/{domain}/phones":                           (*Server).listPhones,
	"POST /domains/{domain}/phones":                          (*Server).createPhone,
	"PUT /domains/{domain}/phones":                           (*Server).putPhone,
	"DELETE /domains/{domain}/phones":                        (*Server).deletePhone,
	"GET /domains/{domain}/phones/{mac}":                     (*Server).getPhone,
	"DELETE /jwt/{uid}":                                      (*Server).revokeJWT,
	"POST /domains/{domain}/users/{user}/email":              (*Server).sendEmail,
	"GET /domains/{domain}/users/{user}/calls":               (*Server).listCalls,
	"DELETE /domains/{domain}/users/{user}/calls/{call_id}":  (*Server).endCall,
	"GET /domains/{domain}/users/{user}/cdrs":                (*Server).listCDRs,
}
