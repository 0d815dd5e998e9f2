package slackui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// groupTTL is how long a user group's members are cached: short, so removing someone from the
// on-call group takes effect within a minute, and long enough not to hit usergroups.users.list
// (Tier 2) on every click.
const groupTTL = time.Minute

// groupLister resolves a user group to its members (usergroups.users.list).
type groupLister interface {
	groupMembers(ctx context.Context, group string) ([]string, error)
}

// authorizer answers "may this Slack user do this?" from RESPONDERS / APPROVERS: user IDs match
// directly, user-group IDs (S…) through their cached members. It fails closed: a group that
// cannot be resolved grants nothing.
type authorizer struct {
	lister groupLister
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]groupEntry
}

type groupEntry struct {
	members []string
	until   time.Time
}

func newAuthorizer(l groupLister, now func() time.Time) *authorizer {
	return &authorizer{lister: l, now: now, cache: map[string]groupEntry{}}
}

// allowed reports whether user is in list. The error says which group could not be resolved
// (the answer is then false unless another entry matched).
func (a *authorizer) allowed(ctx context.Context, list []string, user string) (bool, error) {
	if ok, known := a.decided(list, user); known {
		return ok, nil
	}
	var groups []string
	for _, id := range list {
		if strings.HasPrefix(id, "S") {
			groups = append(groups, id)
		}
	}
	var firstErr error
	for _, g := range groups {
		members, err := a.members(ctx, g)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if slices.Contains(members, user) {
			return true, nil
		}
	}
	return false, firstErr
}

// decided answers allowed from what is known without asking Slack (the dispatcher answers in
// the Socket Mode ack and must not wait on the Web API). known is false when the answer depends
// on a user group whose members are not cached or are stale.
func (a *authorizer) decided(list []string, user string) (ok, known bool) {
	if user == "" {
		return false, true
	}
	now := a.now()
	known = true
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range list {
		switch {
		case id == user:
			return true, true
		case strings.HasPrefix(id, "S"):
			e, cached := a.cache[id]
			switch {
			case !cached || !now.Before(e.until):
				known = false
			case slices.Contains(e.members, user):
				return true, true
			}
		}
	}
	return false, known
}

// refresh resolves every user group in lists whose cached members are missing or expire within
// margin, so that decided rarely has to say "unknown". A group that cannot be resolved stays
// unknown: the commands it decides then go to a worker, whose allowed resolves it and logs why.
func (a *authorizer) refresh(ctx context.Context, margin time.Duration, lists ...[]string) {
	seen := map[string]bool{}
	for _, list := range lists {
		for _, id := range list {
			if !strings.HasPrefix(id, "S") || seen[id] {
				continue
			}
			seen[id] = true
			a.mu.Lock()
			e, ok := a.cache[id]
			a.mu.Unlock()
			if ok && a.now().Add(margin).Before(e.until) {
				continue
			}
			_, _ = a.fetch(ctx, id)
		}
	}
}

func (a *authorizer) members(ctx context.Context, group string) ([]string, error) {
	a.mu.Lock()
	e, ok := a.cache[group]
	a.mu.Unlock()
	if ok && a.now().Before(e.until) {
		return e.members, nil
	}
	return a.fetch(ctx, group)
}

// fetch asks Slack for a group's members and caches them for groupTTL.
func (a *authorizer) fetch(ctx context.Context, group string) ([]string, error) {
	m, err := a.lister.groupMembers(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("resolve user group %s: %w", group, err)
	}
	a.mu.Lock()
	a.cache[group] = groupEntry{members: m, until: a.now().Add(groupTTL)}
	a.mu.Unlock()
	return m, nil
}
