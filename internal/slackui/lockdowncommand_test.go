package slackui

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/compromised-responder/bot/internal/session"
)

func TestParseLockdown(t *testing.T) {
	many := make([]string, 501)
	want500 := make([]string, 500)
	for i := range many {
		many[i] = fmt.Sprintf("%d@acme.example", 1000+i)
		if i < 500 {
			want500[i] = many[i]
		}
	}
	tests := []struct {
		name string
		in   string
		want Command
	}{
		{"domain", "domain ACME.example", Command{Kind: KindLockdown, Scope: session.ScopeDomain, Domain: "acme.example"}},
		{"domain with reason", "Domain acme.example fraud wave since 01:50",
			Command{Kind: KindLockdown, Scope: session.ScopeDomain, Domain: "acme.example", Reason: "fraud wave since 01:50"}},
		{"domain linked", "domain <http://acme.example|acme.example>", Command{Kind: KindLockdown, Scope: session.ScopeDomain, Domain: "acme.example"}},
		{"domain missing", "domain", usage("`domain` needs the domain: `domain acme.example [reason…]`")},
		{"domain bad", "domain ~", usage("`~` is not a domain: use 1–64 letters, digits, . _ -")},
		{"domain star", "domain *", usage("`*` is not a domain: use 1–64 letters, digits, . _ -")},
		{"domain is an address", "domain 1001@acme.example",
			usage("`domain` takes a domain, not an address: `domain acme.example`, or `users 1001@acme.example`")},
		{"users", "users 1001@acme.example 1002@ACME.example", Command{Kind: KindLockdown, Scope: session.ScopeUsers,
			Users: []string{"1001@acme.example", "1002@acme.example"}}},
		{"users reason after the last address", "users <mailto:1001@acme.example|1001@acme.example> 2001@globex.example leaked creds",
			Command{Kind: KindLockdown, Scope: session.ScopeUsers, Users: []string{"1001@acme.example", "2001@globex.example"}, Reason: "leaked creds"}},
		{"users duplicates dropped", "users 1001@acme.example 1001@Acme.Example 1002@acme.example 1001@acme.example",
			Command{Kind: KindLockdown, Scope: session.ScopeUsers, Users: []string{"1001@acme.example", "1002@acme.example"}}},
		{"users 500", "users " + strings.Join(many[:500], " "), Command{Kind: KindLockdown, Scope: session.ScopeUsers, Users: want500}},
		{"users 501", "users " + strings.Join(many, " "), usage("`users` takes at most 500 addresses; split the list")},
		{"users none", "users", usage("`users` needs the addresses: `users 1001@acme.example 1002@acme.example [reason…]`")},
		{"users garbage first", "users hello 1001@acme.example",
			usage("`users` needs addresses first: `users 1001@acme.example 1002@acme.example [reason…]`, not `hello`")},
		{"users mixed garbage", "users 1001@acme.example oops 1002@acme.example",
			usage("`1002@acme.example` comes after the reason: put every address before the reason")},
		{"users bad address", "users 1001@acme.example ../x@acme.example",
			usage("address 2: `../x` is not a user: use 1–16 letters, digits, . _ -")},
		{"users bad domain", "users 1001@~", usage("address 1: `~` is not a domain: use 1–64 letters, digits, . _ -")},
		{"users reason with a mention", "users 1001@acme.example ping <!channel>",
			Command{Kind: KindLockdown, Scope: session.ScopeUsers, Users: []string{"1001@acme.example"}, Reason: "ping @channel"}},
		{"plan domain", "plan domain acme.example", Command{Kind: KindPlan, Scope: session.ScopeDomain, Domain: "acme.example"}},
		{"plan domain extra", "plan domain acme.example now", usage("`plan domain` takes only the domain, nothing after it")},
		{"plan users", "PLAN USERS 1001@acme.example 1002@acme.example",
			Command{Kind: KindPlan, Scope: session.ScopeUsers, Users: []string{"1001@acme.example", "1002@acme.example"}}},
		{"plan users extra", "plan users 1001@acme.example now", usage("`plan users` takes only addresses; `now` is not one")},
		{"keyword wins over <user> <domain>", "users acme.example",
			usage("`users` needs addresses first: `users 1001@acme.example 1002@acme.example [reason…]`, not `acme.example`")},
		{"a user named domain still opens with @", "domain@acme.example", Command{Kind: KindOpen, User: "domain", Domain: "acme.example"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseCommand(tc.in)
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("ParseCommand(%q) (-got +want):\n%s", tc.in, diff)
			}
			checkCommand(t, tc.in, got)
		})
	}
}

// checkLockdown asserts a lockdown command's invariants (checkCommand calls it).
func checkLockdown(t *testing.T, in string, c Command) {
	t.Helper()
	if c.Kind == KindLockdown && c.Scope == "" {
		t.Errorf("ParseCommand(%q): lockdown without a scope", in)
	}
	switch c.Scope {
	case "":
		if len(c.Users) > 0 {
			t.Errorf("ParseCommand(%q): users without a scope", in)
		}
	case session.ScopeDomain:
		if !domainPattern.MatchString(c.Domain) || c.Domain == "." || c.Domain == ".." || len(c.Users) > 0 || c.User != "" {
			t.Errorf("ParseCommand(%q): domain lockdown of %q / %v", in, c.Domain, c.Users)
		}
	case session.ScopeUsers:
		if len(c.Users) == 0 || len(c.Users) > session.MaxLockdownMembers || c.Domain != "" {
			t.Errorf("ParseCommand(%q): users lockdown of %d users, domain %q", in, len(c.Users), c.Domain)
		}
		seen := map[string]bool{}
		for _, u := range c.Users {
			user, domain, ok := strings.Cut(u, "@")
			if !ok || !userPattern.MatchString(user) || user == "." || user == ".." || !domainPattern.MatchString(domain) || seen[u] {
				t.Errorf("ParseCommand(%q): accepted member %q", in, u)
			}
			seen[u] = true
		}
	default:
		t.Errorf("ParseCommand(%q): scope %q", in, c.Scope)
	}
}

// TestFuzzCorpusLockdown keeps the lockdown seeds in FuzzParseCommand's corpus.
func TestFuzzCorpusLockdown(t *testing.T) {
	for _, name := range []string{"lockdown_domain", "lockdown_users", "lockdown_mixed", "plan_users"} {
		if _, err := os.Stat(filepath.Join("testdata", "fuzz", "FuzzParseCommand", name)); err != nil {
			t.Errorf("corpus seed %s: %v", name, err)
		}
	}
}
