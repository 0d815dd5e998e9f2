package slackui

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/lockdown"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
)

// TestLockdownCardLimits: a 500-user lockdown with everything failing, unknown and missing at
// once stays inside Block Kit's limits, with the lists capped and counted.
func TestLockdownCardLimits(t *testing.T) {
	now := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	l := session.Lockdown{ID: "LCK-7K2QXM", Scope: session.ScopeDomain, Domain: "acme.example", OpenedBy: "U1",
		CreatedAt: now, State: session.StateOpen, Version: 7, Reason: strings.Repeat("<@U2> *bold* ", 40)}
	s := lockdown.Summary{Total: 500, Opened: 500, Devices: 1000, Contained: 10, Open: 500,
		Steps: map[session.Step]map[session.Status]int{}, Awaiting: map[session.Step]lockdown.Awaiting{},
		MissingToken: "0123abcd", MissingUsers: 500}
	for _, st := range session.Steps {
		s.Steps[st] = map[session.Status]int{session.StatusFailed: 490, session.StatusDone: 10}
		s.Awaiting[st] = lockdown.Awaiting{N: 3, RequestedBy: "U1", Expires: now.Add(time.Hour)}
	}
	for i := range 500 {
		key := fmt.Sprintf("u%04d@acme.example", i)
		l.Members = append(l.Members, session.Member{User: fmt.Sprintf("u%04d", i), Domain: "acme.example", IncidentID: "INC-7K2QXM"})
		s.Failures = append(s.Failures, lockdown.Failure{Key: key, IncidentID: "INC-7K2QXM", Step: session.StepDeny,
			Message: strings.Repeat("the PBX said no <!channel> ", 20)})
		s.Unknown = append(s.Unknown, key)
		s.Held = append(s.Held, lockdown.Held{Key: key, IncidentID: "INC-7K2QXM", Calls: i%2 == 0, Silent: true,
			Problems: []string{strings.Repeat("2 international or premium call(s) <!channel> ", 10)}})
		s.Missing = append(s.Missing, key+": device-with-a-long-name-"+strings.Repeat("x", 40))
	}
	l.Runs = []*session.LockdownRun{{Seq: 1, Kind: lockdown.KindStep, Step: session.StepDeny, Actor: "U1", StartedAt: now}}
	text, blocks := LockdownCard(l, s, CardOptions{Now: now, ApprovalSteps: map[session.Step]bool{session.StepRestore: true}})
	raw, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	if err := slackfake.ValidateBlocks(raw); err != nil {
		t.Fatalf("Slack would refuse the card: %v", err)
	}
	if len(blocks) > 50 || utf8.RuneCountInString(text) > 3000 {
		t.Errorf("%d blocks, fallback %d characters", len(blocks), utf8.RuneCountInString(text))
	}
	for _, b := range blocks {
		if sec, ok := b.(*slack.SectionBlock); ok && sec.Text != nil && utf8.RuneCountInString(sec.Text.Text) > 3000 {
			t.Errorf("section of %d characters", utf8.RuneCountInString(sec.Text.Text))
		}
	}
	all := string(raw)
	for _, want := range []string{"*10 contained* · 490 pending · 500 failed — of 500", " more failures", "+480 more users",
		"lockdown:deny", "lockdown:retry", "lockdown:abort", "approve:restore", "reject:restore", `"value":"LCK-7K2QXM"`,
		"l:v7:m-0123abcd", "1000 devices of 500 users", "500 device(s) of 500 user(s) are deleted",
		"500 users held by the restore gate", "lockdown:gate-restore",
		"THE RESTORE GATE IS NOT MET for 500 users: 250 with international or premium calls since containment, 500 with re-created devices not registered again."} {
		if !strings.Contains(all, want) {
			t.Errorf("card lacks %q", want)
		}
	}
	if strings.Contains(all, "<!channel>") || strings.Contains(all, "<@U2>") {
		t.Error("user or PBX text reached the card unescaped")
	}
	// Slack caps a confirm at 300 characters: what is cut is the note before the question, never
	// the question the click answers.
	for id, ask := range map[string]string{
		"lockdown:gate-restore": "Ask for approval to restore them over the gate anyway? It runs when someone approves, recorded as restored over the gate.",
		"lockdown:abort":        "each original is kept for a later restore.",
		"lockdown:restore":      "It runs when someone approves.",
		"lockdown:retry":        "for the 500 failed member(s) and check the restore gate again for the 500 held by it?",
	} {
		got := confirmOf(t, blocks, id)
		if n := utf8.RuneCountInString(got); n > 300 || !strings.HasSuffix(got, ask) {
			t.Errorf("%s confirm (%d characters) does not end with its question %q:\n%s", id, n, ask, got)
		}
	}
}

func TestParseLockdownAction(t *testing.T) {
	for _, tc := range []struct {
		id, value string
		want      Action
		ok        bool
	}{
		{"lockdown:deny", "LCK-7K2QXM", Action{Kind: ActionLockdown, Step: session.StepDeny, Lockdown: "LCK-7K2QXM"}, true},
		{"lockdown:retry", "LCK-7K2QXM", Action{Kind: ActionLockdown, Op: "retry", Lockdown: "LCK-7K2QXM"}, true},
		{"lockdown:abort", "LCK-7K2QXM", Action{Kind: ActionLockdown, Op: "abort", Lockdown: "LCK-7K2QXM"}, true},
		{"lockdown:gate-restore", "LCK-7K2QXM", Action{Kind: ActionLockdown, Op: "gate-restore", Lockdown: "LCK-7K2QXM"}, true},
		{"gate:restore", "LCK-7K2QXM", Action{}, false}, // the incident's button, not a lockdown's
		{"approve:restore", "LCK-7K2QXM", Action{Kind: ActionApprove, Step: session.StepRestore, Lockdown: "LCK-7K2QXM"}, true},
		{"reject:restore", "LCK-7K2QXM", Action{Kind: ActionReject, Step: session.StepRestore, Lockdown: "LCK-7K2QXM"}, true},
		{"lockdown:fly", "LCK-7K2QXM", Action{}, false},
		{"step:deny", "LCK-7K2QXM", Action{}, false},
		{"lockdown:deny", "lck-7k2qxm", Action{}, false}, // not canonical: the card never sends it
		{"lockdown:deny", "INC-7K2QXM", Action{}, false},
	} {
		got, err := ParseAction(tc.id, tc.value)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseAction(%q, %q) = %+v, %v", tc.id, tc.value, got, err)
		}
		if tc.ok && got.ActionID() != tc.id {
			t.Errorf("ActionID() = %q, want %q", got.ActionID(), tc.id)
		}
	}
}

// TestLockdownCardEvidence: the members' fraud evidence totals and the top users by cost.
func TestLockdownCardEvidence(t *testing.T) {
	now := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	l := session.Lockdown{ID: "LCK-7K2QXM", Scope: session.ScopeDomain, Domain: "acme.example", OpenedBy: "U1",
		CreatedAt: now, State: session.StateOpen, Version: 3}
	s := lockdown.Summary{Total: 3, Opened: 3, Steps: map[session.Step]map[session.Status]int{}, Awaiting: map[session.Step]lockdown.Awaiting{},
		Evidence: lockdown.EvidenceTotals{Users: 3, Unavailable: 1, Calls24h: 9, Seconds: 1500, Intl: 4, Premium: 1, Cost: 18.52, Currency: "USD",
			Top: []lockdown.UserCost{{Key: "1001@acme.example", IncidentID: "INC-AAAAAA", Cost: 12.02, Seconds: 1110, Risky: 3},
				{Key: "1002@acme.example", IncidentID: "INC-BBBBBB", Cost: 6.5, Seconds: 390, Risky: 2}}}}
	_, blocks := LockdownCard(l, s, CardOptions{Now: now})
	text := blocksText(t, blocks)
	for _, want := range []string{
		"*Fraud evidence* (last 24 h, 3 of 3 users read) · 9 calls · 25.0 min outgoing · international 4 · premium 1 · *estimated cost at risk USD 18.52*",
		"_evidence unavailable for 1 user(s)",
		"• 1001@acme.example · USD 12.02 · 18.5 min · 3 international/premium call(s) (INC-AAAAAA)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("card lacks %q:\n%s", want, text)
		}
	}
	s.Evidence = lockdown.EvidenceTotals{}
	if _, blocks = LockdownCard(l, s, CardOptions{Now: now}); strings.Contains(blocksText(t, blocks), "Fraud evidence") {
		t.Error("a lockdown without evidence shows an evidence section")
	}
}

// TestLockdownResetDialog: the Reset (all) dialog names the portal password with
// NS_V1_PORTAL_PASSWORD, and says to reset it in the Manager Portal without it.
func TestLockdownResetDialog(t *testing.T) {
	now := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	l := session.Lockdown{ID: "LCK-7K2QXM", Scope: session.ScopeDomain, Domain: "acme.example", CreatedAt: now, State: session.StateOpen}
	s := lockdown.Summary{Total: 2, Opened: 2, Open: 2, Steps: map[session.Step]map[session.Status]int{}, Awaiting: map[session.Step]lockdown.Awaiting{}}
	for _, tc := range []struct {
		portal bool
		want   string
	}{
		{true, "Reset the voicemail PIN, revoke the sessions and set a new portal password of 2 users (the new PINs and portal passwords are delivered only to you)?"},
		{false, "Reset the voicemail PIN and revoke the sessions of 2 users (the new PINs are sent only to you; the portal passwords are not changed: reset them in the Manager Portal)?"},
	} {
		_, blocks := LockdownCard(l, s, CardOptions{Now: now, PortalPassword: tc.portal})
		if got := confirmOf(t, blocks, "lockdown:reset"); got != tc.want {
			t.Errorf("portal %v: Reset (all) dialog\n got %q\nwant %q", tc.portal, got, tc.want)
		}
	}
}

// TestLockdownStatusLimits: `status LCK-…` of 500 members, each with a long note, stays inside
// Block Kit's limits, lists the first members in the order given and counts the rest.
func TestLockdownStatusLimits(t *testing.T) {
	now := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	l := session.Lockdown{ID: "LCK-7K2QXM", Scope: session.ScopeUsers, OpenedBy: "U1", CreatedAt: now, State: session.StateOpen}
	s := lockdown.Summary{Total: 500, Opened: 499, Open: 499, Steps: map[session.Step]map[session.Status]int{}, Awaiting: map[session.Step]lockdown.Awaiting{}}
	var members []lockdown.MemberStatus
	members = append(members, lockdown.MemberStatus{Member: session.Member{User: "u0000", Domain: "acme.example"}, Note: "not opened yet", Attention: 1})
	for i := 1; i < 500; i++ {
		m := session.Member{User: fmt.Sprintf("u%04d", i), Domain: "acme.example", IncidentID: "INC-7K2QXM"}
		l.Members = append(l.Members, m)
		inc := &session.Incident{ID: "INC-7K2QXM", User: m.User, Domain: m.Domain, State: session.StateOpen,
			Steps: map[session.Step]*session.StepState{session.StepDeny: {Status: session.StatusFailed}}}
		members = append(members, lockdown.MemberStatus{Member: m, Incident: inc, Note: "deny failed: " + strings.Repeat("<!channel> no ", 30)})
	}
	text, blocks := LockdownStatus(l, s, members, CardOptions{Now: now})
	raw, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	if err := slackfake.ValidateBlocks(raw); err != nil {
		t.Fatalf("Slack would refuse the answer: %v", err)
	}
	all := string(raw)
	for _, want := range []string{"*Members* — 499 open · 0 restored · 0 aborted · 1 not opened yet", "• u0000@acme.example · not opened yet",
		"• u0001@acme.example · INC-7K2QXM · deny ❌ recreate ⬜ reset ⬜ restore ⬜ — deny failed: ", " more users"} {
		if !strings.Contains(all, want) {
			t.Errorf("status answer lacks %q", want)
		}
	}
	if strings.Contains(all, "<!channel>") || !strings.Contains(text, "LCK-7K2QXM") {
		t.Errorf("unescaped note, or fallback %q", text)
	}
}

// TestLockdownStatusAskedBy: a member awaiting approval names who asked as the card does, a
// mention (or the CLI name), never a raw user ID.
func TestLockdownStatusAskedBy(t *testing.T) {
	now := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	l := session.Lockdown{ID: "LCK-7K2QXM", Scope: session.ScopeUsers, OpenedBy: "U1", CreatedAt: now, State: session.StateOpen}
	s := lockdown.Summary{Total: 2, Opened: 2, Open: 2, Steps: map[session.Step]map[session.Status]int{}, Awaiting: map[session.Step]lockdown.Awaiting{}}
	inc := &session.Incident{ID: "INC-7K2QXM", User: "1001", Domain: "acme.example", State: session.StateOpen,
		Steps: map[session.Step]*session.StepState{session.StepRestore: {Status: session.StatusAwaiting, RequestedBy: "U0ALICE"}}}
	members := []lockdown.MemberStatus{
		{Member: session.Member{User: "1001", Domain: "acme.example"}, Incident: inc, Note: "restore awaits approval", AskedBy: "U0ALICE", Attention: 2},
		{Member: session.Member{User: "1002", Domain: "acme.example"}, Incident: inc, Note: "restore awaits approval", AskedBy: "cli:ops", Attention: 2},
	}
	_, blocks := LockdownStatus(l, s, members, CardOptions{Now: now})
	raw, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	all := string(raw)
	for _, want := range []string{`— restore awaits approval (asked by \u003c@U0ALICE\u003e)`, "— restore awaits approval (asked by ops (CLI))"} {
		if !strings.Contains(all, want) {
			t.Errorf("status answer lacks %q:\n%s", want, all)
		}
	}
}
