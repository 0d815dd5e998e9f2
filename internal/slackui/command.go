// Package slackui is the Slack side of the responder: it parses the /compromised command and
// button payloads, renders incidents as Block Kit (pure functions of a session.Incident), and
// runs the Socket Mode app that routes them to the runbook engine. It is the only non-test
// package that imports slack-go, so nothing below it knows about Slack.
package slackui

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/plaintext"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// Kind says what a /compromised command asks for.
type Kind string

// The command kinds. KindUsage is anything that could not be understood; Command.Problem says why.
const (
	KindOpen   Kind = "open"
	KindPlan   Kind = "plan"
	KindStatus Kind = "status"
	KindList   Kind = "list"
	KindHelp   Kind = "help"
	KindUsage  Kind = "usage"
	// KindLockdown opens a lockdown (many users on one card): Scope and Domain or Users say who.
	KindLockdown Kind = "lockdown"
)

// Command is a parsed /compromised command. User and Domain are validated (Domain lower-cased);
// IncidentID is canonical ("INC-7K2QXM"). For KindStatus exactly one of IncidentID, LockdownID or
// User+Domain is set, or none (status of everything open). For KindUsage, Problem says in plain words what
// was wrong; it may quote (sanitised, shortened) pieces of the input.
type Command struct {
	Kind       Kind
	User       string
	Domain     string
	Reason     string
	IncidentID string
	LockdownID string // canonical ("LCK-7K2QXM"): `status LCK-…`
	Problem    string
	// Scope is set for a lockdown (KindLockdown, or KindPlan of one): every user of Domain, or
	// Users (canonical user@domain, deduplicated, in the order given).
	Scope session.LockdownScope
	Users []string
}

// ParseCommand parses the text of a /compromised command, as Slack sends it (with markup such as
// <mailto:a@b|a@b> and &amp; entities). It never fails: anything it cannot accept comes back as
// KindUsage with a Problem, and an empty text asks for help. Every accepted user and domain
// passes netsapiens.ValidateUser / ValidateDomain, so nothing unvalidated can reach the PBX.
func ParseCommand(text string) Command {
	if strings.EqualFold(text, "help") {
		// The burst's commonest text, answered from the ack on the reading goroutine: what the
		// rest would make of it (no markup, one field), without its allocations.
		return Command{Kind: KindHelp}
	}
	text = unslack(text)
	fields := strings.FieldsFunc(text, isSpace)
	if len(fields) == 0 {
		return Command{Kind: KindHelp}
	}
	switch strings.ToLower(fields[0]) {
	case "help":
		return Command{Kind: KindHelp}
	case "list":
		if len(fields) > 1 {
			return usage("`list` takes no arguments")
		}
		return Command{Kind: KindList}
	case "domain", "users":
		return parseLockdown(KindLockdown, fields[0], fields[1:])
	case "plan":
		if len(fields) > 1 && (strings.EqualFold(fields[1], "domain") || strings.EqualFold(fields[1], "users")) {
			return parseLockdown(KindPlan, fields[1], fields[2:])
		}
		user, domain, rest, problem := parseIdentity(fields[1:])
		switch {
		case problem != "":
			return usage(problem)
		case len(rest) > 0:
			return usage("`plan` takes only <user>@<domain>, nothing after it")
		}
		return Command{Kind: KindPlan, User: user, Domain: domain}
	case "status":
		return parseStatus(fields[1:])
	}
	if len(fields) == 1 && !strings.Contains(fields[0], "@") {
		if id, ok := session.NormalizeID(fields[0]); ok {
			return usage(fmt.Sprintf("to see %s, use `status %s`", id, id))
		}
		if id, ok := session.NormalizeLockdownID(fields[0]); ok {
			return usage(fmt.Sprintf("to see %s, use `status %s`", id, id))
		}
	}
	user, domain, rest, problem := parseIdentity(fields)
	if problem != "" {
		return usage(problem)
	}
	return Command{Kind: KindOpen, User: user, Domain: domain, Reason: remediate.CleanReason(strings.Join(rest, " "))}
}

func usage(problem string) Command { return Command{Kind: KindUsage, Problem: problem} }

func parseStatus(args []string) Command {
	switch {
	case len(args) == 0:
		return Command{Kind: KindStatus}
	case len(args) == 1 && !strings.Contains(args[0], "@"):
		// A lockdown ID needs its prefix, so it is tried first: six bare characters are an incident's.
		if id, ok := session.NormalizeLockdownID(args[0]); ok {
			return Command{Kind: KindStatus, LockdownID: id}
		}
		if id, ok := session.NormalizeID(args[0]); ok {
			return Command{Kind: KindStatus, IncidentID: id}
		}
		if strings.HasPrefix(strings.ToUpper(args[0]), "LCK") {
			return usage(fmt.Sprintf("`%s` is not a lockdown ID: use LCK- and 6 letters or digits, e.g. LCK-7K2QXM", quote(args[0])))
		}
		if !looksLikeURL(args[0]) && !strings.HasPrefix(strings.ToUpper(args[0]), "INC") {
			return usage(fmt.Sprintf("`%s` is not an incident, a lockdown or a user: use INC-XXXXXX, LCK-XXXXXX or <user>@<domain>", quote(args[0])))
		}
		return usage(fmt.Sprintf("`%s` is not an incident ID: use INC- and 6 letters or digits, e.g. INC-7K2QXM", quote(args[0])))
	}
	_, lockdownID := session.NormalizeLockdownID(args[0])
	_, incidentID := session.NormalizeID(args[0])
	incidentID = incidentID && strings.HasPrefix(strings.ToUpper(args[0]), "INC-")
	user, domain, rest, problem := parseIdentity(args)
	switch {
	case lockdownID || incidentID || len(rest) > 0 && problem == "":
		// An ID, not "<user> <domain>": `status INC-7K2QXM now` is not user INC-7K2QXM of domain now.
		return usage("`status` takes one incident ID, lockdown ID or <user>@<domain>, nothing after it")
	case problem != "":
		return usage(problem)
	}
	return Command{Kind: KindStatus, User: user, Domain: domain}
}

// parseIdentity reads "<user>@<domain>" or "<user> <domain>" from the front of fields and returns the
// rest; problem is set (and user, domain empty) when they are missing or invalid.
func parseIdentity(fields []string) (user, domain string, rest []string, problem string) {
	if len(fields) == 0 {
		return "", "", nil, "name the user: <user>@<domain>, e.g. 1001@acme.example"
	}
	first := stripScheme(fields[0])
	if u, d, ok := strings.Cut(first, "@"); ok {
		user, domain, rest = u, d, fields[1:]
	} else {
		if len(fields) < 2 {
			return "", "", nil, fmt.Sprintf("`%s` needs its domain too: <user>@<domain> or <user> <domain>", quote(first))
		}
		second := stripScheme(fields[1])
		if u, d, ok := strings.Cut(second, "@"); ok {
			// "10 01@acme.example": the user was typed with a space in it.
			user, domain = first+" "+u, d
		} else {
			user, domain = first, hostOf(fields[1])
		}
		rest = fields[2:]
	}
	switch {
	case user == "":
		return "", "", nil, "the user is missing: use <user>@<domain>, e.g. 1001@acme.example"
	case domain == "":
		return "", "", nil, "the domain is missing: use <user>@<domain>, e.g. 1001@acme.example"
	}
	if netsapiens.ValidateUser(user) != nil {
		return "", "", nil, fmt.Sprintf("`%s` is not a user: use 1–16 letters, digits, . _ -", quote(user))
	}
	if netsapiens.ValidateDomain(domain) != nil {
		return "", "", nil, fmt.Sprintf("`%s` is not a domain: use 1–64 letters, digits, . _ -", quote(domain))
	}
	return user, strings.ToLower(domain), rest, ""
}

// stripScheme removes a leading "mailto:" (any case) that survived unwrapping.
func stripScheme(s string) string {
	if len(s) >= 7 && strings.EqualFold(s[:7], "mailto:") {
		return s[7:]
	}
	return s
}

func looksLikeURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

// hostOf turns "http://acme.example/x" (a domain Slack auto-linked without a label) into "acme.example".
func hostOf(s string) string {
	if !looksLikeURL(s) {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" {
		return s
	}
	return u.Hostname()
}

// unslack undoes Slack's markup: <target|label> becomes its label, <mailto:x> and <http://x> their
// address, <@U1> "@U1", <!here> "@here"; then &lt; &gt; &amp; are unescaped (in that order, since a
// literal "&lt;" arrives as "&amp;lt;"). Invalid UTF-8 is replaced and zero-width characters dropped.
func unslack(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		b.WriteString(unwrapLink(s[i+1 : i+j]))
		s = s[i+j+1:]
	}
	out := b.String()
	out = strings.ReplaceAll(out, "&lt;", "<")
	out = strings.ReplaceAll(out, "&gt;", ">")
	out = strings.ReplaceAll(out, "&amp;", "&")
	return strings.Map(func(r rune) rune {
		if isInvisible(r) {
			return -1
		}
		return r
	}, out)
}

// unwrapLink renders the inside of one <…> markup element as the text a person typed.
func unwrapLink(inner string) string {
	target, label, hasLabel := strings.Cut(inner, "|")
	prefix := ""
	switch {
	case strings.HasPrefix(target, "@"), strings.HasPrefix(target, "!"):
		prefix = "@"
		target = target[1:]
		if t, _, ok := strings.Cut(target, "^"); ok && strings.EqualFold(t, "subteam") {
			target = target[len(t)+1:]
		}
	case strings.HasPrefix(target, "#"):
		prefix = "#"
		target = target[1:]
	}
	if hasLabel && label != "" {
		if prefix != "" && strings.HasPrefix(label, prefix) {
			return label
		}
		return prefix + label
	}
	if prefix != "" {
		return prefix + target
	}
	return stripScheme(target)
}

// The text rules shared with the engine (internal/plaintext), under the names this package uses.
var (
	isSpace     = plaintext.IsSpace
	isInvisible = plaintext.IsInvisible
	truncate    = plaintext.Truncate
)

// quote prepares a piece of the user's input for a Problem message: short, one line, no backticks
// (it is shown inside a code span).
func quote(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '`' || unicode.IsControl(r) || isInvisible(r) {
			return '\''
		}
		return r
	}, s)
	return truncate(s, 40)
}
