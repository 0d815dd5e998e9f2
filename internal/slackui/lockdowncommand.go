package slackui

import (
	"fmt"
	"strings"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// parseLockdown parses the arguments of `domain <domain> [reason…]` and `users <u>@<d> …
// [reason…]` (kind KindLockdown) and of `plan domain …` / `plan users …` (kind KindPlan, which
// takes nothing after the members). The addresses of `users` are the words with an @ at the
// front; the first word without one starts the reason, and an address after it is refused
// (mixed input is not guessed at). A repeated address is dropped, keeping the first (the same
// user typed twice is one member); the user keeps its case, the domain is lower-cased.
func parseLockdown(kind Kind, keyword string, args []string) Command {
	scope := session.LockdownScope(strings.ToLower(keyword))
	verb := string(scope)
	if kind == KindPlan {
		verb = "plan " + verb
	}
	if scope == session.ScopeDomain {
		if len(args) == 0 {
			return usage(fmt.Sprintf("`%s` needs the domain: `%s acme.example [reason…]`", verb, verb))
		}
		d := hostOf(stripScheme(args[0]))
		if strings.Contains(d, "@") {
			return usage(fmt.Sprintf("`%s` takes a domain, not an address: `%s acme.example`, or `users %s`", verb, verb, quote(d)))
		}
		if problem := checkDomain(d); problem != "" {
			return usage(problem)
		}
		rest := args[1:]
		if kind == KindPlan && len(rest) > 0 {
			return usage("`plan domain` takes only the domain, nothing after it")
		}
		return Command{Kind: kind, Scope: scope, Domain: strings.ToLower(d), Reason: reasonOf(kind, rest)}
	}
	var users []string
	seen := map[string]bool{}
	i := 0
	for ; i < len(args) && strings.Contains(args[i], "@"); i++ {
		user, domain, _, problem := parseIdentity(args[i : i+1])
		if problem != "" {
			return usage(fmt.Sprintf("address %d: %s", i+1, problem))
		}
		key := user + "@" + domain
		if !seen[key] {
			seen[key] = true
			users = append(users, key)
		}
		if len(users) > session.MaxLockdownMembers {
			return usage(fmt.Sprintf("`%s` takes at most %d addresses; split the list", verb, session.MaxLockdownMembers))
		}
	}
	rest := args[i:]
	switch {
	case len(users) == 0 && len(rest) > 0:
		return usage(fmt.Sprintf("`%s` needs addresses first: `%s 1001@acme.example 1002@acme.example [reason…]`, not `%s`",
			verb, verb, quote(rest[0])))
	case len(users) == 0:
		return usage(fmt.Sprintf("`%s` needs the addresses: `%s 1001@acme.example 1002@acme.example [reason…]`", verb, verb))
	case kind == KindPlan && len(rest) > 0:
		return usage(fmt.Sprintf("`plan users` takes only addresses; `%s` is not one", quote(rest[0])))
	}
	for _, w := range rest {
		if strings.Contains(w, "@") && strings.Contains(stripScheme(w), ".") {
			return usage(fmt.Sprintf("`%s` comes after the reason: put every address before the reason", quote(w)))
		}
	}
	return Command{Kind: kind, Scope: scope, Users: users, Reason: reasonOf(kind, rest)}
}

// checkDomain is parseIdentity's domain rule, as a Problem ("" = valid).
func checkDomain(d string) string {
	if _, _, _, problem := parseIdentity([]string{"x@" + d}); problem != "" {
		if d == "" {
			return "the domain is missing: e.g. `domain acme.example`"
		}
		return fmt.Sprintf("`%s` is not a domain: use 1–64 letters, digits, . _ -", quote(d))
	}
	return ""
}

func reasonOf(kind Kind, rest []string) string {
	if kind != KindLockdown {
		return ""
	}
	return remediate.CleanReason(strings.Join(rest, " "))
}
