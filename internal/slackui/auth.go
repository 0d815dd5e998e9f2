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
	if user == "" {
		return false, nil
	}
	var groups []string
	for _, id := range list {
		switch {
		case id == user:
			return true, nil
		case strings.HasPrefix(id, "S"):
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

func (a *authorizer) members(ctx context.Context, group string) ([]string, error) {
	a.mu.Lock()
	e, ok := a.cache[group]
	a.mu.Unlock()
	if ok && a.now().Before(e.until) {
		return e.members, nil
	}
	m, err := a.lister.groupMembers(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("resolve user group %s: %w", group, err)
	}
	a.mu.Lock()
	a.cache[group] = groupEntry{members: m, until: a.now().Add(groupTTL)}
	a.mu.Unlock()
	return m, nil
}
