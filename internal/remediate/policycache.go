package remediate

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens"
)

// The deny policy's existence and its permit rules change rarely and are the same for every
// user of a domain, so deny reads them once per domain and keeps them for Config.PolicyTTL
// instead of making two (up to four) PBX round trips on containment's critical path. Opening
// an incident warms the entry; an entry past half its TTL is refreshed in the background, so a
// busy domain never waits for it; both at netsapiens.High (after every deny's critical path,
// before opens, cards and evidence: a refresh starved past the TTL would put the read back on
// the critical path); a deny that finds no answer reads it at its own Critical. One read at a
// time per domain, which every caller that needs it joins. Only a complete answer is kept: a
// policy that does not exist, or whose rules could not be read, is read again by the next deny
// (an admin may be fixing it right now).
//
// A domain without a policy of that name uses the system-level one, which is the same for every
// domain: it is kept once, as an entry of its own (scope systemScope) that every such domain's
// entry joins, not read again per domain. In a burst across 10 domains that is 12 reads (each
// domain's 404, the system policy and its rules) instead of 40, all of them ahead of the opens'
// user reads (BenchmarkBurstIncidents). A domain's entry is as old as the older of its own read
// and the system entry it took, so nothing is trusted past the TTL.

// systemScope names the system-level entry; no domain is empty (netsapiens.ValidateDomain).
const systemScope = ""

// DefaultPolicyTTL is how long the deny policy's existence and rules are trusted.
const DefaultPolicyTTL = time.Minute

// policyInfo is what deny needs to know of its deny policy in one domain.
type policyInfo struct {
	exists   bool     // false: neither the domain nor the system has it
	permits  []string // the match patterns of its permit rules
	rulesErr error    // its rules could not be read (deny warns)
}

// complete reports whether info is worth keeping.
func (i policyInfo) complete() bool { return i.exists && i.rulesErr == nil }

// policyEntry is one domain's policy read: in flight until done is closed.
type policyEntry struct {
	done       chan struct{}
	info       policyInfo
	err        error // the existence read failed (not "not found")
	readAt     time.Time
	refreshing bool // a background refresh of this entry runs
}

// policyCache keeps policyInfo per domain and policy name. Safe for concurrent use.
type policyCache struct {
	ttl     time.Duration
	now     func() time.Time
	mu      sync.Mutex
	entries map[string]*policyEntry
}

func newPolicyCache(ttl time.Duration, now func() time.Time) *policyCache {
	return &policyCache{ttl: ttl, now: now, entries: map[string]*policyEntry{}}
}

func policyCacheKey(domain, name string) string { return domain + "\x00" + name }

// get returns the policy's info: the kept one while fresh, else the read in flight or a new
// one (made with ctx's values, e.g. its priority, but not cut short by ctx: others may join it).
func (c *policyCache) get(ctx context.Context, pbx PBX, domain, name string) (policyInfo, error) {
	ent, err := c.entry(ctx, pbx, domain, name)
	if err != nil {
		return policyInfo{}, err
	}
	return ent.info, ent.err
}

// entry is get's entry, read (its done closed), or ctx's error.
func (c *policyCache) entry(ctx context.Context, pbx PBX, domain, name string) (*policyEntry, error) {
	k := policyCacheKey(domain, name)
	c.mu.Lock()
	ent := c.entries[k]
	if ent != nil {
		select {
		case <-ent.done:
			age := c.now().Sub(ent.readAt)
			if ent.err == nil && ent.info.complete() && age < c.ttl {
				if age >= c.ttl/2 && !ent.refreshing {
					ent.refreshing = true
					c.refresh(ctx, pbx, domain, name, ent)
				}
				c.mu.Unlock()
				return ent, nil
			}
			ent = nil // expired, incomplete or failed: read again
		default: // in flight: join it
		}
	}
	if ent == nil {
		ent = c.start(ctx, pbx, domain, name)
	}
	c.mu.Unlock()
	select {
	case <-ent.done:
		return ent, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// warm starts a read of the policy unless a fresh or in-flight one is there; it does not wait.
func (c *policyCache) warm(ctx context.Context, pbx PBX, domain, name string) {
	k := policyCacheKey(domain, name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if ent := c.entries[k]; ent != nil {
		select {
		case <-ent.done:
			if ent.err == nil && ent.info.complete() && c.now().Sub(ent.readAt) < c.ttl/2 {
				return
			}
		default:
			return
		}
	}
	c.start(netsapiens.WithPriority(ctx, netsapiens.High), pbx, domain, name) // nobody waits for it yet
}

// start begins a read whose entry replaces the domain's, at ctx's priority (deny's, which
// waits for it, or warm's High); c.mu is held.
func (c *policyCache) start(ctx context.Context, pbx PBX, domain, name string) *policyEntry {
	ent := &policyEntry{done: make(chan struct{})}
	c.entries[policyCacheKey(domain, name)] = ent
	rctx := context.WithoutCancel(ctx)
	go func() {
		ent.info, ent.readAt, ent.err = c.read(rctx, pbx, domain, name)
		close(ent.done)
	}()
	return ent
}

// refresh reads the policy again in the background and keeps the answer if it is complete;
// old stays in use meanwhile. c.mu is held.
func (c *policyCache) refresh(ctx context.Context, pbx PBX, domain, name string, old *policyEntry) {
	rctx := netsapiens.WithPriority(context.WithoutCancel(ctx), netsapiens.High)
	go func() {
		info, at, err := c.read(rctx, pbx, domain, name)
		ent := &policyEntry{done: make(chan struct{}), info: info, err: err, readAt: at}
		close(ent.done)
		c.mu.Lock()
		defer c.mu.Unlock()
		old.refreshing = false
		if err == nil && info.complete() && c.entries[policyCacheKey(domain, name)] == old {
			c.entries[policyCacheKey(domain, name)] = ent
		}
	}()
}

// read reads the policy of scope (a domain, or systemScope) for an entry: a domain's own, and
// the system-level one through its entry when the domain has none. It returns when the
// answer was read: the older of the domain's read and the system entry's.
func (c *policyCache) read(ctx context.Context, pbx PBX, scope, name string) (policyInfo, time.Time, error) {
	if scope == systemScope {
		info, err := readSystemPolicy(ctx, pbx, name, true)
		return info, c.now(), err
	}
	at := c.now()
	info, found, err := readDomainPolicy(ctx, pbx, scope, name)
	if err != nil || found {
		return info, at, err
	}
	sys, err := c.entry(ctx, pbx, systemScope, name)
	if err != nil {
		return policyInfo{}, at, err
	}
	if sys.readAt.Before(at) {
		at = sys.readAt
	}
	return sys.info, at, sys.err
}

// readPolicy reads whether the policy exists in domain (or else system-wide) and its permit
// rules, with no cache: the dry run's, one read after the other (its PBX stand-in is one
// goroutine's). Errors: the existence reads', other than not found.
func readPolicy(ctx context.Context, pbx PBX, domain, name string) (policyInfo, error) {
	info, found, err := readDomainPolicy(ctx, pbx, domain, name)
	if err != nil || found {
		return info, err
	}
	return readSystemPolicy(ctx, pbx, name, false)
}

// readDomainPolicy reads the domain's own policy of that name and, when it is there, its rules
// (found false: the domain has none, the answer is the system's).
func readDomainPolicy(ctx context.Context, pbx PBX, domain, name string) (_ policyInfo, found bool, _ error) {
	_, err := pbx.GetDomainDialPolicy(ctx, domain, name)
	switch {
	case errors.Is(err, netsapiens.ErrNotFound):
		return policyInfo{}, false, nil
	case err != nil:
		return policyInfo{}, false, err
	}
	perms, rulesErr := pbx.ListDomainDialPolicyPermissions(ctx, domain, name)
	return permitInfo(perms, rulesErr), true, nil
}

// readSystemPolicy reads the system-level policy and its rules, both at once when parallel.
func readSystemPolicy(ctx context.Context, pbx PBX, name string, parallel bool) (policyInfo, error) {
	var perms []netsapiens.Permission
	var rulesErr error
	rules := func() { perms, rulesErr = pbx.ListSystemDialPolicyPermissions(ctx, name) }
	var wg sync.WaitGroup
	if parallel {
		wg.Go(rules)
	}
	_, err := pbx.GetSystemDialPolicy(ctx, name)
	if !parallel {
		rules()
	}
	wg.Wait()
	switch {
	case errors.Is(err, netsapiens.ErrNotFound):
		return policyInfo{}, nil
	case err != nil:
		return policyInfo{}, err
	}
	return permitInfo(perms, rulesErr), nil
}

// permitInfo is an existing policy's info from its rules (or the error reading them).
func permitInfo(perms []netsapiens.Permission, rulesErr error) policyInfo {
	info := policyInfo{exists: true, rulesErr: rulesErr}
	for _, p := range perms {
		if p.Permits() {
			info.permits = append(info.permits, p.Match)
		}
	}
	return info
}
