package nstest

import (
	"math/rand/v2"
	"net/http"
	"path"
	"strings"
	"time"
)

// Faults makes the server misbehave like a real PBX on a bad day. The zero value is a
// healthy server.
type Faults struct {
	Latency      time.Duration // added to every matching request (the wait ends if the client gives up)
	Rate5xx      float64       // fraction answered 500/502/503 before doing anything
	Rate429      float64       // fraction answered 429 with Retry-After: 1
	RateDrop     float64       // fraction whose connection is closed without an answer
	RateAfter5xx float64       // fraction of applied writes answered 502 (the lost-reply case)
	// RateAfterDrop is the fraction of applied writes whose connection is closed without an
	// answer: a connection reset mid-request after the write landed (RateDrop is the reset
	// before it did).
	RateAfterDrop float64
	Seed          int64 // seeds the random draws, so a run is repeatable
	// Match limits the faults to some requests (path without /ns-api/v2, unescaped);
	// nil = all requests.
	Match func(method, path string) bool
}

type oneShot struct {
	method, pattern, message string
	status                   int
}

// SetFaults replaces the fault settings and restarts the random draws from f.Seed.
func (s *Server) SetFaults(f Faults) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.faults = f
	s.rng = rand.New(rand.NewPCG(uint64(f.Seed), uint64(f.Seed)^0x9e3779b97f4a7c15))
}

// FailNext makes the next request that matches method ("" or "*" = any) and pathPattern
// answer status with {"code":status,"message":message}, without doing anything. The
// pattern is a path.Match glob over the unescaped path without /ns-api/v2, e.g.
// "/domains/*/users/*/devices". Each call arms one failure; several queue up in order.
func (s *Server) FailNext(method, pathPattern string, status int, message string) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.failNext = append(s.failNext, oneShot{method: strings.ToUpper(method), pattern: pathPattern, status: status, message: message})
}

// injectBefore applies latency, one-shot failures and the before-the-work faults. It
// returns false when the request has been answered (or dropped) already.
func (s *Server) injectBefore(w http.ResponseWriter, r *http.Request, call *Call) bool {
	s.fmu.Lock()
	f := s.faults
	var shot *oneShot
	for i, o := range s.failNext {
		if (o.method == "" || o.method == "*" || o.method == r.Method) && globMatch(o.pattern, call.Path) {
			shot = &o
			s.failNext = append(s.failNext[:i:i], s.failNext[i+1:]...)
			break
		}
	}
	down := s.down
	matches := f.Match == nil || f.Match(r.Method, call.Path)
	var draw float64
	var code5xx int
	if matches {
		draw = s.rng.Float64()
		code5xx = []int{500, 502, 503}[s.rng.IntN(3)]
	}
	s.fmu.Unlock()

	if down {
		dropConnection(w)
		return false
	}
	if matches && f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false // nobody is listening any more; Status stays 0
		}
	}
	if shot != nil {
		res := apiError(shot.status, "%s", shot.message)
		if shot.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		call.Status = res.status
		writeJSON(w, res)
		return false
	}
	if !matches {
		return true
	}
	switch {
	case draw < f.RateDrop:
		dropConnection(w)
		return false
	case draw < f.RateDrop+f.Rate429:
		w.Header().Set("Retry-After", "1")
		call.Status = http.StatusTooManyRequests
		writeJSON(w, apiError(http.StatusTooManyRequests, "Too Many Requests"))
		return false
	case draw < f.RateDrop+f.Rate429+f.Rate5xx:
		call.Status = code5xx
		writeJSON(w, apiError(code5xx, "%s", http.StatusText(code5xx)))
		return false
	}
	return true
}

// lostReply is how an applied write loses its reply: not at all, a 502, or a reset connection.
type lostReply int

const (
	replyKept lostReply = iota
	reply502
	replyDropped
)

// drawAfter decides whether (and how) an applied write loses its reply.
func (s *Server) drawAfter(method, p string) lostReply {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	f := s.faults
	if f.RateAfter5xx+f.RateAfterDrop <= 0 || (f.Match != nil && !f.Match(method, p)) {
		return replyKept
	}
	switch d := s.rng.Float64(); {
	case d < f.RateAfterDrop:
		return replyDropped
	case d < f.RateAfterDrop+f.RateAfter5xx:
		return reply502
	}
	return replyKept
}

// SetDown takes the PBX off the network (true) and brings it back (false): while down, every
// request's connection is closed without an answer and nothing is done, as when the PBX or its
// load balancer is gone. A test holds it down for as long as "a minute" means to the client
// under test (its retry budget), not for a wall-clock minute.
func (s *Server) SetDown(down bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.down = down
}

// ExpireTokens ends the life of every OAuth access token issued so far, before its
// expires_in (a PBX restart, a clock step): a request with one is answered 401 "Access token
// expired". Refresh tokens stay valid, so a client that refreshes on a 401 carries on.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := s.now().Add(-time.Second)
	for _, t := range s.st.access {
		t.expires = past
	}
}

// RevokeAPIKey revokes (true) or reinstates (false) an API key: while revoked, a request
// with it is answered 401 "Invalid or unknown access token", as the PBX does once an
// administrator deletes the key.
func (s *Server) RevokeAPIKey(key string, revoked bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.revokedKeys == nil {
		s.revokedKeys = map[string]bool{}
	}
	s.revokedKeys[key] = revoked
}

// keyRevoked reports whether RevokeAPIKey revoked key.
func (s *Server) keyRevoked(key string) bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.revokedKeys[key]
}

func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// Not hijackable (HTTP/2): aborting the handler resets the stream without an answer.
	panic(http.ErrAbortHandler)
}

func globMatch(pattern, p string) bool {
	ok, err := path.Match(pattern, p)
	return err == nil && ok
}
