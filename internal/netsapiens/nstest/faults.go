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
	Seed         int64         // seeds the random draws, so a run is repeatable
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
	matches := f.Match == nil || f.Match(r.Method, call.Path)
	var draw float64
	var code5xx int
	if matches {
		draw = s.rng.Float64()
		code5xx = []int{500, 502, 503}[s.rng.IntN(3)]
	}
	s.fmu.Unlock()

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

// drawAfter5xx decides whether an applied write loses its reply.
func (s *Server) drawAfter5xx(method, p string) bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	f := s.faults
	if f.RateAfter5xx <= 0 || (f.Match != nil && !f.Match(method, p)) {
		return false
	}
	return s.rng.Float64() < f.RateAfter5xx
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
