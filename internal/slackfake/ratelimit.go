package slackfake

import (
	"math"
	"time"

	"golang.org/x/time/rate"
)

// Limit is one Web API method's rate limit as the fake enforces it: a token bucket refilled at
// PerMinute/60 calls per second that holds at most Burst calls. A call that finds the bucket
// empty is answered like Slack answers it: HTTP 429, {"ok":false,"error":"ratelimited"} and
// Retry-After with the whole seconds until a call would pass (at least 1). A refused call does
// nothing and takes no token.
//
// Slack does not publish its algorithm, only "N+ per minute" with bursts; a token bucket is the
// simplest model that has both, and golang.org/x/time/rate implements it.
type Limit struct {
	PerMinute float64
	Burst     int
	// PerChannel keeps one bucket per channel argument (chat.postMessage's "1 per second per
	// channel"); otherwise the method has one bucket for the workspace.
	PerChannel bool
}

// Slack's tiers (https://api.slack.com/apis/rate-limits, also docs.slack.dev/apis/web-api/rate-limits):
// Tier 1 1+/min, Tier 2 20+/min, Tier 3 50+/min ("sporadic bursts are welcome"), Tier 4 100+/min
// ("generous burst behavior"). The fake takes the lower bound of each and lets a whole minute's
// quota be used at once (Burst = the per-minute figure), which is what a per-minute window allows.
var (
	tier2 = Limit{PerMinute: 20, Burst: 20}
	tier3 = Limit{PerMinute: 50, Burst: 50}
	tier4 = Limit{PerMinute: 100, Burst: 100}
)

// PostMessageBurst is how many chat.postMessage calls one channel takes at once under
// SlackLimits. Slack says only "short bursts >1 allowed" with no guarantee; following the
// package rule (the stricter reading where Slack is vague) the fake allows 3.
const PostMessageBurst = 3

// SlackLimits returns Slack's documented limits for the methods the fake implements, per
// https://api.slack.com/apis/rate-limits and each method's reference page (the tiers are
// copied in /work/shared/slack/SOCKETMODE.md §4):
//
//   - chat.postMessage: special tier, "generally allows posting one message per second per
//     channel" with short bursts (thread replies count against their channel). Slack also keeps
//     an unpublished workspace-wide limit, which the fake does not model.
//   - chat.update, chat.delete, conversations.info, conversations.join: Tier 3.
//   - chat.postEphemeral, views.open, users.info: Tier 4.
//   - usergroups.users.list: Tier 2.
//
// auth.test and chat.getPermalink are special tier at "hundreds per minute" and left unlimited,
// as is apps.connections.open (Slack's pages disagree on its tier; RateLimit tests it).
// response_urls are not Web API methods and have their own limit (5 uses), enforced always.
func SlackLimits() map[string]Limit {
	return map[string]Limit{
		"chat.postMessage":      {PerMinute: 60, Burst: PostMessageBurst, PerChannel: true},
		"chat.update":           tier3,
		"chat.delete":           tier3,
		"conversations.info":    tier3,
		"conversations.join":    tier3,
		"chat.postEphemeral":    tier4,
		"views.open":            tier4,
		"users.info":            tier4,
		"usergroups.users.list": tier2,
	}
}

// MethodStats counts one method's Web API calls as the fake answered them.
type MethodStats struct {
	Calls       int // every request, whatever its outcome
	RateLimited int // answered HTTP 429 (by the rate-limit mode or by RateLimit)
}

// limiter holds the buckets of the rate-limit mode; guarded by Server.mu.
type limiter struct {
	limits  map[string]Limit
	buckets map[string]*rate.Limiter // method or method|channel
}

// SetRateLimits turns the rate-limit mode on with the given limits per method (SlackLimits()
// for Slack's), or off with nil. Buckets start full. Options.RateLimits does the same at start.
func (s *Server) SetRateLimits(limits map[string]Limit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setRateLimitsLocked(limits)
}

func (s *Server) setRateLimitsLocked(limits map[string]Limit) {
	if limits == nil {
		s.limiter = nil
		return
	}
	l := &limiter{limits: map[string]Limit{}, buckets: map[string]*rate.Limiter{}}
	for m, lim := range limits {
		l.limits[m] = lim
	}
	s.limiter = l
}

// rateLimitedLocked applies the rate-limit mode to one authorized call: 0 when it may run,
// otherwise the Retry-After in seconds. s.mu must be held.
func (s *Server) rateLimitedLocked(method string, req *apiReq, now time.Time) int {
	if s.limiter == nil {
		return 0
	}
	lim, ok := s.limiter.limits[method]
	if !ok {
		return 0
	}
	k := method
	if lim.PerChannel {
		k += "|" + req.get("channel")
	}
	b := s.limiter.buckets[k]
	if b == nil {
		b = rate.NewLimiter(rate.Limit(lim.PerMinute/60), max(lim.Burst, 1))
		s.limiter.buckets[k] = b
	}
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return 60
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return 0
	}
	r.CancelAt(now) // a refused call takes no token
	return max(1, int(math.Ceil(d.Seconds())))
}

// Stats returns the calls and 429s of every method called so far.
func (s *Server) Stats() map[string]MethodStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]MethodStats, len(s.stats))
	for m, st := range s.stats {
		out[m] = st
	}
	return out
}

// Stat is Stats for one method.
func (s *Server) Stat(method string) MethodStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats[method]
}

// countLocked adds one answered call to the stats; s.mu must be held.
func (s *Server) countLocked(method string, status int) {
	st := s.stats[method]
	st.Calls++
	if status == 429 {
		st.RateLimited++
	}
	s.stats[method] = st
}
