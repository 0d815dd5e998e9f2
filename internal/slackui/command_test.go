package slackui

import (
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/compromised-responder/bot/internal/remediate"
)

func TestParseCommand(t *testing.T) {
	long := strings.Repeat("x", 400)
	tests := []struct {
		name string
		in   string
		want Command
	}{
		{"empty is help", "", Command{Kind: KindHelp}},
		{"only spaces is help", "  \u00a0\t ", Command{Kind: KindHelp}},
		{"help", "help", Command{Kind: KindHelp}},
		{"HELP any case, args ignored", "HeLp me", Command{Kind: KindHelp}},
		{"list", "list", Command{Kind: KindList}},
		{"list with args", "list all", Command{Kind: KindUsage, Problem: "`list` takes no arguments"}},
		{"open at-form", "1001@acme.example", Command{Kind: KindOpen, User: "1001", Domain: "acme.example"}},
		{"open with reason", "1001@acme.example intl calls to +882 since 01:50",
			Command{Kind: KindOpen, User: "1001", Domain: "acme.example", Reason: "intl calls to +882 since 01:50"}},
		{"open two words", "1001 acme.example stolen", Command{Kind: KindOpen, User: "1001", Domain: "acme.example", Reason: "stolen"}},
		{"domain lower-cased, user keeps case", "JaneD@ACME.Example", Command{Kind: KindOpen, User: "JaneD", Domain: "acme.example"}},
		{"mailto with label", "<mailto:1001@acme.example|1001@acme.example> fraud",
			Command{Kind: KindOpen, User: "1001", Domain: "acme.example", Reason: "fraud"}},
		{"mailto without label", "<mailto:1001@Acme.example>", Command{Kind: KindOpen, User: "1001", Domain: "acme.example"}},
		{"linked domain with label", "1001 <http://acme.example|acme.example>", Command{Kind: KindOpen, User: "1001", Domain: "acme.example"}},
		{"linked domain without label", "1001 <https://acme.example/>", Command{Kind: KindOpen, User: "1001", Domain: "acme.example"}},
		{"nbsp between words", "1001\u00a0acme.example\u202fdrill", Command{Kind: KindOpen, User: "1001", Domain: "acme.example", Reason: "drill"}},
		{"zero-width space inside", "10\u200b01@acme.example", Command{Kind: KindOpen, User: "1001", Domain: "acme.example"}},
		{"entities in reason", "1001@acme.example calls &lt;to&gt; A &amp; B",
			Command{Kind: KindOpen, User: "1001", Domain: "acme.example", Reason: "calls <to> A & B"}},
		{"smart quotes stripped once", "1001@acme.example “intl calls ‘again’”",
			Command{Kind: KindOpen, User: "1001", Domain: "acme.example", Reason: "intl calls ‘again’"}},
		{"mentions in reason become text", "1001@acme.example ping <!channel> and <@U123|maria> <!subteam^S1|oncall>",
			Command{Kind: KindOpen, User: "1001", Domain: "acme.example", Reason: "ping @channel and @maria @oncall"}},
		{"links in reason keep their label", "1001@acme.example see <https://evil.example/x|here>",
			Command{Kind: KindOpen, User: "1001", Domain: "acme.example", Reason: "see here"}},
		{"control characters and newlines", "1001@acme.example line1\nline2\x07\u202eevil",
			Command{Kind: KindOpen, User: "1001", Domain: "acme.example", Reason: "line1 line2 evil"}},
		{"long reason cut", "1001@acme.example " + long,
			Command{Kind: KindOpen, User: "1001", Domain: "acme.example", Reason: strings.Repeat("x", 299) + "…"}},
		{"user 16 chars", "abcdefghij123456@acme.example", Command{Kind: KindOpen, User: "abcdefghij123456", Domain: "acme.example"}},
		{"user 17 chars", "abcdefghij1234567@acme.example",
			Command{Kind: KindUsage, Problem: "`abcdefghij1234567` is not a user: use 1–16 letters, digits, . _ -"}},
		{"user with a space", "10 01@acme.example",
			Command{Kind: KindUsage, Problem: "`10 01` is not a user: use 1–16 letters, digits, . _ -"}},
		{"dot user", ".@acme.example", Command{Kind: KindUsage, Problem: "`.` is not a user: use 1–16 letters, digits, . _ -"}},
		{"tilde domain", "1001@~", Command{Kind: KindUsage, Problem: "`~` is not a domain: use 1–64 letters, digits, . _ -"}},
		{"star domain", "1001 *", Command{Kind: KindUsage, Problem: "`*` is not a domain: use 1–64 letters, digits, . _ -"}},
		{"dotdot domain", "1001@..", Command{Kind: KindUsage, Problem: "`..` is not a domain: use 1–64 letters, digits, . _ -"}},
		{"double at", "1001@acme@example", Command{Kind: KindUsage, Problem: "`acme@example` is not a domain: use 1–64 letters, digits, . _ -"}},
		{"domain 65 chars", "1001@" + strings.Repeat("d", 65),
			Command{Kind: KindUsage, Problem: "`" + strings.Repeat("d", 39) + "…` is not a domain: use 1–64 letters, digits, . _ -"}},
		{"path traversal", "../admin@acme.example", Command{Kind: KindUsage, Problem: "`../admin` is not a user: use 1–16 letters, digits, . _ -"}},
		{"backtick in problem", "10`01@acme.example", Command{Kind: KindUsage, Problem: "`10'01` is not a user: use 1–16 letters, digits, . _ -"}},
		{"missing domain", "1001", Command{Kind: KindUsage, Problem: "`1001` needs its domain too: <user>@<domain> or <user> <domain>"}},
		{"missing user", "@acme.example", Command{Kind: KindUsage, Problem: "the user is missing: use <user>@<domain>, e.g. 1001@acme.example"}},
		{"mention as user", "<@U123>", Command{Kind: KindUsage, Problem: "the user is missing: use <user>@<domain>, e.g. 1001@acme.example"}},
		{"incident id alone", "inc-7k2qxm", Command{Kind: KindUsage, Problem: "to see INC-7K2QXM, use `status INC-7K2QXM`"}},
		{"plan", "plan 1001@acme.example", Command{Kind: KindPlan, User: "1001", Domain: "acme.example"}},
		{"PLAN two words", "PLAN 1001 ACME.example", Command{Kind: KindPlan, User: "1001", Domain: "acme.example"}},
		{"plan without user", "plan", Command{Kind: KindUsage, Problem: "name the user: <user>@<domain>, e.g. 1001@acme.example"}},
		{"plan with extra", "plan 1001@acme.example now", Command{Kind: KindUsage, Problem: "`plan` takes only <user>@<domain>, nothing after it"}},
		{"keyword wins over user domain", "plan acme.example", Command{Kind: KindUsage, Problem: "`acme.example` needs its domain too: <user>@<domain> or <user> <domain>"}},
		{"status", "status", Command{Kind: KindStatus}},
		{"status id any case", "Status inc-7k2qxm", Command{Kind: KindStatus, IncidentID: "INC-7K2QXM"}},
		{"status id confusables", "status INC-7K2QXO", Command{Kind: KindStatus, IncidentID: "INC-7K2QX0"}},
		{"status id I and L", "status inc-ilo000", Command{Kind: KindStatus, IncidentID: "INC-110000"}},
		{"status bad id", "status INC-7K2QX", Command{Kind: KindUsage, Problem: "`INC-7K2QX` is not an incident ID: use INC- and 6 letters or digits, e.g. INC-7K2QXM"}},
		{"status user", "status 1001@Acme.Example", Command{Kind: KindStatus, User: "1001", Domain: "acme.example"}},
		{"status user two words", "status 1001 acme.example", Command{Kind: KindStatus, User: "1001", Domain: "acme.example"}},
		{"status junk", "status ???", Command{Kind: KindUsage, Problem: "`???` is not an incident, a lockdown or a user: use INC-XXXXXX, LCK-XXXXXX or <user>@<domain>"}},
		{"status lockdown", "status lck-7k2qxo", Command{Kind: KindStatus, LockdownID: "LCK-7K2QX0"}},
		{"status lockdown bad id", "status LCK-7K2Q", Command{Kind: KindUsage, Problem: "`LCK-7K2Q` is not a lockdown ID: use LCK- and 6 letters or digits, e.g. LCK-7K2QXM"}},
		{"status lockdown extra", "status LCK-7K2QXM now", Command{Kind: KindUsage, Problem: "`status` takes one incident ID, lockdown ID or <user>@<domain>, nothing after it"}},
		{"bare lockdown id", "LCK-7K2QXM", Command{Kind: KindUsage, Problem: "to see LCK-7K2QXM, use `status LCK-7K2QXM`"}},
		{"status extra", "status 1001@acme.example x", Command{Kind: KindUsage, Problem: "`status` takes one incident ID, lockdown ID or <user>@<domain>, nothing after it"}},
		{"status id extra", "status INC-7K2QXM now", Command{Kind: KindUsage, Problem: "`status` takes one incident ID, lockdown ID or <user>@<domain>, nothing after it"}},
		{"invalid utf8", "\xff\xfe@acme.example", Command{Kind: KindUsage, Problem: "`\ufffd` is not a user: use 1–16 letters, digits, . _ -"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseCommand(tc.in)
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("ParseCommand(%q) (-got +want):\n%s", tc.in, diff)
			}
		})
	}
}

var (
	userPattern   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,16}$`)
	domainPattern = regexp.MustCompile(`^[a-z0-9._-]{1,64}$`)
	idPattern     = regexp.MustCompile(`^INC-[0-9A-HJKMNP-TV-Z]{6}$`)
	// lockdownIDPattern is idPattern for a lockdown.
	lockdownIDPattern = regexp.MustCompile(`^LCK-[0-9A-HJKMNP-TV-Z]{6}$`)
)

// checkCommand asserts the invariants every parsed command keeps, whatever the input.
func checkCommand(t *testing.T, in string, c Command) {
	t.Helper()
	switch c.Kind {
	case KindOpen, KindPlan, KindStatus, KindList, KindHelp, KindUsage, KindLockdown:
	default:
		t.Fatalf("ParseCommand(%q): unknown kind %q", in, c.Kind)
	}
	if c.User != "" || c.Domain != "" && c.Scope == "" {
		if !userPattern.MatchString(c.User) || c.User == "." || c.User == ".." {
			t.Errorf("ParseCommand(%q): accepted user %q", in, c.User)
		}
		if !domainPattern.MatchString(c.Domain) || c.Domain == "." || c.Domain == ".." {
			t.Errorf("ParseCommand(%q): accepted domain %q", in, c.Domain)
		}
	}
	checkLockdown(t, in, c)
	if (c.Kind == KindOpen || c.Kind == KindPlan && c.Scope == "") && (c.User == "" || c.Domain == "") {
		t.Errorf("ParseCommand(%q): %s without user/domain", in, c.Kind)
	}
	if c.IncidentID != "" && !idPattern.MatchString(c.IncidentID) {
		t.Errorf("ParseCommand(%q): incident ID %q not canonical", in, c.IncidentID)
	}
	if c.LockdownID != "" && (c.Kind != KindStatus || c.IncidentID != "" || c.User != "" || !lockdownIDPattern.MatchString(c.LockdownID)) {
		t.Errorf("ParseCommand(%q): lockdown ID %q in %+v", in, c.LockdownID, c)
	}
	if (c.Kind == KindUsage) != (c.Problem != "") {
		t.Errorf("ParseCommand(%q): kind %s with problem %q", in, c.Kind, c.Problem)
	}
	if utf8.RuneCountInString(c.Reason) > remediate.MaxReason || !utf8.ValidString(c.Reason) {
		t.Errorf("ParseCommand(%q): reason too long or invalid: %q", in, c.Reason)
	}
	for _, r := range c.Reason {
		if unicode.IsControl(r) || isInvisible(r) {
			t.Errorf("ParseCommand(%q): reason keeps control character %U", in, r)
		}
	}
	if c.Reason != strings.TrimSpace(c.Reason) {
		t.Errorf("ParseCommand(%q): reason not trimmed: %q", in, c.Reason)
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"", "1001@acme.example", "plan 1001 acme.example", "status inc-7k2qxm",
		"<mailto:1001@acme.example|1001@acme.example> “intl calls”", "1001 <http://acme.example|acme.example>",
		"1001@acme.example <!channel> &amp;lt;", "list", "help", "10 01@acme.example", "\xff<|>@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkCommand(t, in, ParseCommand(in))
	})
}

// TestParseHelpAllocs: `help`, the text of a burst answered from the ack on the reading
// goroutine, is parsed without an allocation (the general path's markup undoing and field
// splitting cost ≈ 1 µs of the bot's ≈ 12 per command), and as the general path parses it.
func TestParseHelpAllocs(t *testing.T) {
	for _, text := range []string{"help", "HELP", "Help", "hElP"} {
		if n := testing.AllocsPerRun(100, func() { ParseCommand(text) }); n != 0 {
			t.Errorf("ParseCommand(%q): %.0f allocations, want 0", text, n)
		}
		if got, want := ParseCommand(text), ParseCommand(" "+text+" "); got.Kind != KindHelp || !cmp.Equal(got, want) {
			t.Errorf("ParseCommand(%q) = %+v, not what %q parses to (%+v)", text, got, " "+text+" ", want)
		}
	}
}
