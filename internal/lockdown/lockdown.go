// Package lockdown runs the runbook for many users on one card: every user of a domain, or a
// list of up to 500 addresses. It adds no step of its own. Each member is a full incident of the
// runbook engine (internal/remediate), with its own ID, snapshot, write-ahead records, exactly-
// once steps, crash resume and audit; a lockdown only names its members and fans a click out
// over their incidents, in parallel under the PBX client's in-flight limit, recording each
// fan-out (a run) under a lease so that Reconcile finishes one whose replica died.
//
// Nothing here knows about Slack: slackui renders a Lockdown and its Summary, and the CLI could
// drive it the same way.
package lockdown

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// PBX is the part of the NetSapiens client (*netsapiens.Client) a lockdown reads to find and
// plan its members (the members' steps go through the runbook engine).
type PBX interface {
	ListUsers(ctx context.Context, domain string) ([]netsapiens.User, error)
	GetUser(ctx context.Context, domain, user string) (netsapiens.User, error)
	ListDevices(ctx context.Context, domain, user string) ([]netsapiens.Device, error)
}

// Incidents is the part of the runbook engine (*remediate.Engine) a lockdown drives.
type Incidents interface {
	Open(ctx context.Context, r remediate.OpenRequest) (session.Incident, bool, error)
	Request(ctx context.Context, id string, step session.Step, actor string, o remediate.RunOptions) (remediate.Result, error)
	Approve(ctx context.Context, id string, step session.Step, approver string) (remediate.Result, error)
	Reject(ctx context.Context, id string, step session.Step, actor string) (session.Incident, error)
	Abort(ctx context.Context, id, actor, note, confirmMissing string) (session.Incident, error)
	Discard(ctx context.Context, id string) error
}

// Store is the part of the store (*session.Store) a lockdown reads and writes.
type Store interface {
	Get(ctx context.Context, id string) (session.Incident, error)
	FindOpen(ctx context.Context, user, domain string) (session.Incident, error)
	Append(ctx context.Context, e session.AuditEntry) (session.AuditEntry, error)
	OpenLockdown(ctx context.Context, l session.Lockdown) (session.Lockdown, error)
	GetLockdown(ctx context.Context, id string) (session.Lockdown, error)
	UpdateLockdown(ctx context.Context, id string, fn func(*session.Lockdown) error) (session.Lockdown, error)
	DiscardLockdown(ctx context.Context, id string) error
	ListOpenLockdowns(ctx context.Context) ([]session.Lockdown, error)
}

// Notifier is told when a lockdown changed (its card follows); remediate.Notifier's shape.
type Notifier interface {
	Changed(ctx context.Context, id string)
}

// DeliverFunc hands a member's new credentials to the requester (slackui: an ephemeral message).
type DeliverFunc func(ctx context.Context, inc session.Incident, to string, step session.Step, secrets []remediate.Secret)

// Config configures an Engine.
type Config struct {
	// Parallel is how many members a fan-out works on at once; 0 = 16. The PBX client's own
	// in-flight limit (NS_MAX_INFLIGHT) bounds the PBX requests: a member's step alternates
	// between PBX and Redis calls, so about twice that many members keep the PBX's slots full.
	Parallel   int
	DenyPolicy string        // NS_DENY_POLICY, for the plan
	LeaseTTL   time.Duration // a run's lease, renewed while it runs; 0 = 15 s
	Owner      string        // this replica's name in leases
	Notifier   Notifier      // may be nil
	Logger     zerolog.Logger
	Now        func() time.Time // nil = time.Now
}

// Engine opens lockdowns and runs their fan-outs. Safe for concurrent use; replicas share the store.
type Engine struct {
	pbx     PBX
	inc     Incidents
	store   Store
	cfg     Config
	log     zerolog.Logger
	now     func() time.Time
	deliver DeliverFunc

	// base is the context of the fan-outs (they outlive the click that started them); Shutdown ends it.
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	local  map[string]bool // runs this process works on: "LCK-…/seq"
}

// Errors a person can act on; UserMessage words them.
var (
	// ErrUnknownDomain: the PBX has no such domain.
	ErrUnknownDomain = errors.New("no such domain")
	// ErrNoUsers: the domain has no users, or none the bot can handle.
	ErrNoUsers = errors.New("no users")
	// ErrUnknownUsers: some of the addresses are not users on the PBX (nothing was opened).
	ErrUnknownUsers = errors.New("unknown users")
	// ErrTooMany: more than session.MaxLockdownMembers users.
	ErrTooMany = errors.New("too many users")
	// ErrBusy: a fan-out of the lockdown is still running.
	ErrBusy = errors.New("a lockdown action is still running")
	// ErrClosed: the lockdown is closed.
	ErrClosed = errors.New("the lockdown is closed")
	// ErrNothing: no member needs what was asked (every one is done, closed or waits on something else).
	ErrNothing = errors.New("nothing to do")
	// ErrDevicesMissing: the abort's confirmation does not name the devices missing now.
	ErrDevicesMissing = errors.New("devices deleted and not re-created")
)

// New returns an Engine. deliver may be set later (SetDeliver), before the first fan-out.
func New(pbx PBX, inc Incidents, store Store, cfg Config) (*Engine, error) {
	if pbx == nil || inc == nil || store == nil {
		return nil, errors.New("lockdown: pbx, incidents and store are required")
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 16
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	if cfg.DenyPolicy == "" {
		cfg.DenyPolicy = remediate.DefaultDenyPolicy
	}
	if cfg.Owner == "" {
		cfg.Owner = "lockdown"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	base, cancel := context.WithCancel(context.Background())
	return &Engine{pbx: pbx, inc: inc, store: store, cfg: cfg, log: cfg.Logger, now: cfg.Now,
		base: base, cancel: cancel, local: map[string]bool{}}, nil
}

// SetDeliver sets where members' new credentials go (the Slack app, once it exists).
func (e *Engine) SetDeliver(fn DeliverFunc) { e.deliver = fn }

// Shutdown waits for the running fan-outs until ctx ends, then stops them (their leases expire
// and Reconcile on any replica finishes them).
func (e *Engine) Shutdown(ctx context.Context) {
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		e.cancel()
		<-done
	}
	e.cancel()
}

// Target names the members of a lockdown: every user of Domain, or Users (user@domain each).
type Target struct {
	Scope  session.LockdownScope
	Domain string   // ScopeDomain
	Users  []string // ScopeUsers: canonical user@domain, deduplicated, 1–500
}

func (t Target) String() string {
	if t.Scope == session.ScopeDomain {
		return "every user of " + t.Domain
	}
	if len(t.Users) == 1 {
		return t.Users[0]
	}
	return fmt.Sprintf("%d users", len(t.Users))
}

// found is a member as read from the PBX.
type found struct {
	user, domain string
	policy       string
}

// resolve reads the members from the PBX: the domain's user list, or each named user (in
// parallel). Errors: ErrUnknownDomain, ErrNoUsers, ErrUnknownUsers (naming them), ErrTooMany,
// netsapiens kinds.
func (e *Engine) resolve(ctx context.Context, t Target) ([]found, error) {
	switch t.Scope {
	case session.ScopeDomain:
		domain := strings.ToLower(t.Domain)
		if err := netsapiens.ValidateDomain(domain); err != nil {
			return nil, fmt.Errorf("%w: %w", remediate.ErrInvalid, err)
		}
		users, err := e.pbx.ListUsers(ctx, domain)
		if errors.Is(err, netsapiens.ErrNotFound) {
			return nil, fmt.Errorf("%w: the PBX has no domain %s", ErrUnknownDomain, domain)
		}
		if err != nil {
			return nil, fmt.Errorf("list the users of %s: %w", domain, err)
		}
		var out []found
		for _, u := range users {
			if netsapiens.ValidateUser(u.User) != nil {
				continue // a name the bot cannot address safely (see ValidateUser); the plan counts them
			}
			out = append(out, found{user: u.User, domain: domain, policy: u.DialPolicy})
		}
		switch {
		case len(out) == 0:
			return nil, fmt.Errorf("%w: the domain %s has no users the bot can handle", ErrNoUsers, domain)
		case len(out) > session.MaxLockdownMembers:
			return nil, fmt.Errorf("%w: %s has %d users, a lockdown takes at most %d: name them in parts with users …",
				ErrTooMany, domain, len(out), session.MaxLockdownMembers)
		}
		return out, nil
	case session.ScopeUsers:
		if len(t.Users) == 0 || len(t.Users) > session.MaxLockdownMembers {
			return nil, fmt.Errorf("%w: %d addresses, a lockdown takes 1–%d", ErrTooMany, len(t.Users), session.MaxLockdownMembers)
		}
		out := make([]found, len(t.Users))
		errs := make([]error, len(t.Users))
		e.each(ctx, len(t.Users), func(i int) {
			user, domain, _ := strings.Cut(t.Users[i], "@")
			u, err := e.pbx.GetUser(ctx, domain, user)
			if err != nil {
				errs[i] = err
				return
			}
			if u.User != "" {
				user = u.User
			}
			out[i] = found{user: user, domain: strings.ToLower(domain), policy: u.DialPolicy}
		})
		var unknown []string
		for i, err := range errs {
			switch {
			case errors.Is(err, netsapiens.ErrNotFound):
				unknown = append(unknown, t.Users[i])
			case err != nil:
				return nil, fmt.Errorf("read %s: %w", t.Users[i], err)
			}
		}
		if len(unknown) > 0 {
			return nil, fmt.Errorf("%w: %s %s not on the PBX, so nothing was opened", ErrUnknownUsers,
				capList(unknown, 10), plural(len(unknown), "is", "are"))
		}
		return out, nil
	}
	return nil, fmt.Errorf("lockdown scope %q: %w", t.Scope, remediate.ErrInvalid)
}

// each runs fn(0..n-1) with at most cfg.Parallel at once and returns when all have run.
func (e *Engine) each(ctx context.Context, n int, fn func(i int)) {
	e.eachReleased(ctx, n, func(i int, _ func()) { fn(i) })
}

// eachReleased is each where fn(i, release) may give its place back before it returns
// (release is idempotent and called anyway when fn returns): the next index starts while fn
// finishes what no longer needs to hold a place. A deny fan-out releases a member at
// "contained", so its live-call work (netsapiens.FollowUp) overlaps the next members' critical
// path (netsapiens.Critical) instead of holding their place: with the members' places held
// until the live calls were dealt with, every member's calls list but the last few went to
// the PBX before the last members' PUTs (≈ 1.5 × the floor in BenchmarkLockdown). At most n
// run at once, so it stays bounded by the lockdown's size.
func (e *Engine) eachReleased(ctx context.Context, n int, fn func(i int, release func())) {
	var wg sync.WaitGroup
	slot := make(chan struct{}, e.cfg.Parallel)
	for i := range n {
		select {
		case slot <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			var once sync.Once
			release := func() { once.Do(func() { <-slot }) }
			defer release()
			fn(i, release)
		})
	}
	wg.Wait()
}

// OpenRequest asks for a lockdown.
type OpenRequest struct {
	Target  Target
	Reason  string
	Actor   string
	Channel string
}

// Open finds the members on the PBX, stores the lockdown and opens each member's incident (a
// user with an open incident joins with it). The lockdown is stored before its members are
// opened, so a crash in between leaves a record Reconcile completes. Errors: as resolve (nothing
// stored), store errors.
func (e *Engine) Open(ctx context.Context, r OpenRequest) (session.Lockdown, error) {
	members, err := e.resolve(ctx, r.Target)
	if err != nil {
		return session.Lockdown{}, err
	}
	l := session.Lockdown{Scope: r.Target.Scope, Domain: strings.ToLower(r.Target.Domain), Reason: remediate.CleanReason(r.Reason),
		OpenedBy: r.Actor, Channel: r.Channel}
	for _, m := range members {
		l.Members = append(l.Members, session.Member{User: m.user, Domain: m.domain})
	}
	l, err = e.store.OpenLockdown(ctx, l)
	if err != nil {
		return l, fmt.Errorf("store lockdown: %w", err)
	}
	e.audit(ctx, l.ID, r.Actor, "lockdown.opened", fmt.Sprintf("%s · %d users · reason: %s", r.Target, len(l.Members), orNone(l.Reason)))
	return e.openMembers(ctx, l)
}

// openMembers opens the incident of every member that has none yet and records them.
func (e *Engine) openMembers(ctx context.Context, l session.Lockdown) (session.Lockdown, error) {
	type opened struct {
		id     string
		joined bool
		err    error
	}
	res := make([]opened, len(l.Members))
	reason := "lockdown " + l.ID
	if l.Reason != "" {
		reason += ": " + l.Reason
	}
	e.each(ctx, len(l.Members), func(i int) {
		m := l.Members[i]
		if m.IncidentID != "" {
			return
		}
		inc, created, err := e.inc.Open(ctx, remediate.OpenRequest{User: m.User, Domain: m.Domain, Reason: reason,
			Actor: l.OpenedBy, Channel: l.Channel, Lockdown: l.ID})
		// An open incident that is already this lockdown's (its opener died before recording
		// it) is not a join: it has no card of its own and is the lockdown's to discard.
		joined := err == nil && !created && inc.Lockdown != l.ID
		res[i] = opened{id: inc.ID, joined: joined, err: err}
		if joined {
			e.auditIncident(ctx, inc.ID, l.OpenedBy, "lockdown.joined", "the open incident joined lockdown "+l.ID)
		}
	})
	var errs []error
	l, err := e.store.UpdateLockdown(ctx, l.ID, func(cur *session.Lockdown) error {
		for i := range cur.Members {
			if cur.Members[i].IncidentID == "" && res[i].id != "" {
				cur.Members[i].IncidentID, cur.Members[i].Joined = res[i].id, res[i].joined
			}
		}
		return nil
	})
	if err != nil {
		return l, fmt.Errorf("record the members of %s: %w", l.ID, err)
	}
	for i, r := range res {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", l.Members[i].Key(), r.err))
		}
	}
	if len(errs) > 0 {
		// Reconcile opens them later; the card lists them as not opened meanwhile.
		e.log.Warn().Err(errors.Join(errs...)).Str("lockdown", l.ID).Int("failed", len(errs)).Msg("open member incidents")
	}
	e.notify(ctx, l.ID)
	return l, nil
}

// SetCard records where the lockdown's card was posted.
func (e *Engine) SetCard(ctx context.Context, id, channel, ts string) (session.Lockdown, error) {
	return e.store.UpdateLockdown(ctx, id, func(l *session.Lockdown) error {
		l.Channel, l.MessageTS = channel, ts
		return nil
	})
}

// Discard removes a lockdown whose card could not be posted, with the members' incidents it
// opened (not the ones that joined, which have cards of their own).
func (e *Engine) Discard(ctx context.Context, id string) error {
	l, err := e.store.GetLockdown(ctx, id)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range l.Members {
		if m.IncidentID != "" && !m.Joined {
			if err := e.inc.Discard(ctx, m.IncidentID); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := e.store.DiscardLockdown(ctx, id); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Get returns a lockdown.
func (e *Engine) Get(ctx context.Context, id string) (session.Lockdown, error) {
	return e.store.GetLockdown(ctx, id)
}

func (e *Engine) notify(ctx context.Context, id string) {
	if e.cfg.Notifier != nil {
		e.cfg.Notifier.Changed(ctx, id)
	}
}

// audit records a lockdown event in the global audit chain (the members' chains have the rest).
func (e *Engine) audit(ctx context.Context, id, actor, action, detail string) {
	if actor == "" {
		actor = "bot"
	}
	if _, err := e.store.Append(ctx, session.AuditEntry{Actor: actor, Action: action, Detail: id + ": " + detail}); err != nil {
		e.log.Warn().Err(err).Str("lockdown", id).Str("action", action).Msg("append audit entry")
	}
}

// OfAudit returns the lockdown a global audit entry is about: audit writes "LCK-…: detail".
// A replica syncs the card of each (slackui's syncRecent), so a close whose card update was lost
// to a crash still reaches the card.
func OfAudit(e session.AuditEntry) (string, bool) {
	if e.IncidentID != "" {
		return "", false
	}
	id, _, ok := strings.Cut(e.Detail, ": ")
	if !ok {
		return "", false
	}
	canon, valid := session.NormalizeLockdownID(id)
	return canon, valid && canon == id
}

// auditIncident records a lockdown event in a member's own chain.
func (e *Engine) auditIncident(ctx context.Context, incID, actor, action, detail string) {
	if _, err := e.store.Append(ctx, session.AuditEntry{IncidentID: incID, Actor: actor, Action: action, Detail: detail}); err != nil {
		e.log.Warn().Err(err).Str("incident", incID).Str("action", action).Msg("append audit entry")
	}
}

// capList names up to n items, then "and N more".
func capList(items []string, n int) string {
	items = append([]string(nil), items...)
	sort.Strings(items)
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func orNone(s string) string {
	if s == "" {
		return "none given"
	}
	return s
}
