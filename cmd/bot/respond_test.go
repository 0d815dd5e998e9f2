package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
)

var openedRE = regexp.MustCompile(`(INC-[0-9A-Z]{6}) opened for 1001@acme\.example by cli:alice`)

// revealedRE matches the secrets `respond --reveal` prints ("    <label>: <value>").
var revealedRE = regexp.MustCompile(`(?m)^    (?:softphone \S+: SIP password|voicemail PIN of \S+): (\S+)$`)

// TestRespondWithoutSlack contains an incident from the terminal while Slack is unreachable (no
// bot serve runs and the CLI has no Slack setting at all), refuses a self-approval, and shows
// that a `bot serve` started later posts the card in the --channel with every CLI event in its
// thread; the approval then given from the CLI by a second actor appears there too.
func TestRespondWithoutSlack(t *testing.T) {
	w := newWorld(t)
	env := w.cliEnv()

	r := w.cli(env, "respond", "open", target, "--reason", "intl calls to +882", "--channel", incChan, "--actor", "alice")
	r.want(t, exitOK, "respond open")
	m := openedRE.FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("no incident opened:\n%s", r.out)
	}
	id := m[1]

	// Flags after the arguments, then before them.
	r = w.cli(env, "respond", "run", id, "deny", "--actor", "alice")
	r.want(t, exitOK, "respond run deny")
	if !strings.Contains(r.out, "deny      done · verified") || !strings.Contains(r.out, "dial permission [verified] Deny All") {
		t.Errorf("deny does not say what it verified:\n%s", r.out)
	}
	if got := w.pbxUser("1001")["dial-policy"]; got != "Deny All" {
		t.Fatalf("after respond run deny the PBX has dial-policy %v", got)
	}

	// recreate makes secrets: refused on a non-terminal stdout without --reveal, before any PBX write.
	writes := len(w.pbx.Writes())
	r = w.cli(env, "respond", "--actor", "alice", "run", "1001@acme.example", "recreate")
	r.want(t, exitUsage, "recreate without --reveal on a pipe")
	if len(w.pbx.Writes()) != writes || !strings.Contains(r.err, "--reveal") {
		t.Errorf("recreate without --reveal: %d PBX writes, stderr %q", len(w.pbx.Writes())-writes, r.err)
	}
	r = w.cliReveal(env, "respond", "--actor", "alice", "--reveal", "run", "1001@acme.example", "recreate")
	r.want(t, exitOK, "respond run recreate --reveal")
	secrets := revealedRE.FindAllStringSubmatch(r.out, -1)
	if len(secrets) == 0 || !strings.Contains(r.out, "recreate  done") {
		t.Fatalf("recreate --reveal printed no secret:\n%s", r.out)
	}
	var values []string
	for _, s := range secrets {
		values = append(values, s[1])
	}

	// Restore needs approval: requested by alice (exit 3); alice's own approval is refused (exit 4).
	r = w.cli(env, "respond", "run", id, "restore", "--actor", "alice")
	r.want(t, exitAwaiting, "respond run restore")
	writes = len(w.pbx.Writes())
	r = w.cli(env, "respond", "approve", id, "restore", "--actor", "alice")
	r.want(t, exitRefused, "self-approval")
	if !strings.Contains(r.err, "cannot approve your own request") {
		t.Errorf("self-approval refusal says %q", r.err)
	}
	if st := w.step(id, session.StepRestore); st.Status != session.StatusAwaiting || st.ApprovedBy != "" || len(w.pbx.Writes()) != writes {
		t.Fatalf("self-approval changed something: %s approved by %q, %d PBX writes", st.Status, st.ApprovedBy, len(w.pbx.Writes())-writes)
	}
	if inc := w.incident(id); inc.MessageTS != "" {
		t.Fatalf("a card exists although Slack was never reached: %s", inc.MessageTS)
	}

	// Slack answers: a bot serve posts the card in the channel, with the CLI's steps, and the
	// whole audit (the CLI's events included) in its thread.
	w.start()
	ts, _ := w.card("1001", "acme.example")
	w.cardShows(ts, "deny done")
	w.cardShows(ts, "approve:restore")
	thread := w.threadComplete(id)
	if !threadHas(thread, "alice (CLI)") || !threadHas(thread, "approval requested") || !threadHas(thread, "refused self approval") {
		t.Errorf("the thread lacks the CLI's events: %v", threadTexts(thread))
	}

	// bob approves from the CLI: the step runs at once, alice stays the actor of record.
	r = w.cli(env, "respond", "approve", id, "restore", "--actor", "bob")
	r.want(t, exitOK, "approval by a second actor")
	if !strings.Contains(r.out, "restore   done") || !strings.Contains(r.out, "closed: the original dial permission is restored") {
		t.Errorf("approve output:\n%s", r.out)
	}
	if got := w.pbxUser("1001")["dial-policy"]; got != "US and Canada" {
		t.Fatalf("after the approved restore the PBX has dial-policy %v", got)
	}
	if st := w.step(id, session.StepRestore); st.RequestedBy != "cli:alice" || st.ApprovedBy != "cli:bob" {
		t.Errorf("restore requested by %q approved by %q", st.RequestedBy, st.ApprovedBy)
	}
	w.waitFor("the restore in the thread", func() bool {
		return threadHas(w.threadComplete(id), "bob (CLI) · restore approval approved")
	})
	w.cardShows(ts, "restore done")

	w.cli(env, "audit", id, "--verify").want(t, exitOK, "audit --verify after CLI and serve wrote the chain")
	w.scanSecrets(values)
}

// TestRespondRefusalsAndFailures: usage errors (2), refusals (4) and a failed step (1) exit as
// documented and change nothing they should not.
func TestRespondRefusalsAndFailures(t *testing.T) {
	w := newWorld(t)
	env := w.cliEnv()
	for _, args := range [][]string{
		{"respond"},
		{"respond", "bogus"},
		{"respond", "open"},
		{"respond", "open", "nobody"},
		{"respond", "open", "10/01@acme.example"},
		{"respond", "open", "9999@acme.example"}, // no such user on the PBX
		{"respond", "open", target, "--channel", "#incidents"},
		{"respond", "run", target, "deny"}, // no open incident
		{"respond", "run", "INC-7K2QXM", "explode"},
		{"respond", "status", "INC-7K2QXM"},
		{"respond", "list", "--force"},
		{"respond", "list", "--actor", "alice bob"},
	} {
		if r := w.cli(env, args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, r.code, exitUsage, r.err)
		}
	}
	if len(w.pbx.Writes()) != 0 {
		t.Fatalf("usage errors wrote to the PBX: %v", w.pbx.Writes())
	}
	if r := w.cli(env, "respond", "-h"); r.code != exitOK || !strings.Contains(r.out, "usage: bot respond") {
		t.Errorf("respond -h: exit %d\n%s", r.code, r.out)
	}

	r := w.cli(env, "respond", "open", target, "--actor", "alice")
	r.want(t, exitOK, "open")
	id := openedRE.FindStringSubmatch(r.out)[1]
	r = w.cli(env, "respond", "open", target, "--actor", "bob")
	r.want(t, exitOK, "second open")
	if !strings.Contains(r.out, id+" is already open") {
		t.Errorf("second open does not name the open incident:\n%s", r.out)
	}
	// Step order: restore before deny is refused.
	w.cli(env, "respond", "run", id, "restore", "--actor", "alice").want(t, exitRefused, "restore before deny")
	// list needs Redis only.
	redisOnly := map[string]string{"REDIS_URL": env["REDIS_URL"], "REDIS_KEY_PREFIX": env["REDIS_KEY_PREFIX"]}
	if r := w.cli(redisOnly, "respond", "list"); r.code != exitOK || !strings.Contains(r.out, id) {
		t.Errorf("list: exit %d, lacks %s:\n%s%s", r.code, id, r.out, r.err)
	}
	// A Redis that does not answer: one clear line, exit 1.
	down := map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0"}
	if r := w.cli(down, "respond", "list"); r.code != exitFailed || !strings.Contains(r.err, "redis at redis://127.0.0.1:1/0 does not answer") {
		t.Errorf("list with Redis down: exit %d\n%s", r.code, r.err)
	}
	if r := w.cli(env, "respond", "plan", target); r.code != exitOK || !strings.Contains(r.out, "US and Canada → Deny All") {
		t.Errorf("plan: exit %d\n%s", r.code, r.out)
	}

	// The PBX refuses the deny's write: the step fails (1) and says why.
	w.pbx.FailNext("PUT", "/domains/*/users/*", 403, "not allowed for this key")
	r = w.cli(env, "respond", "run", id, "deny", "--actor", "alice")
	r.want(t, exitFailed, "deny refused by the PBX")
	if !strings.Contains(r.out, "deny      failed") || !strings.Contains(r.err, "not allowed for this key") {
		t.Errorf("failed deny output:\n%s\n%s", r.out, r.err)
	}
	// A retry succeeds, then a second deny is refused (already done).
	w.cli(env, "respond", "run", id, "deny", "--actor", "alice").want(t, exitOK, "deny retried")
	w.cli(env, "respond", "run", id, "deny", "--actor", "bob").want(t, exitRefused, "deny again")
	r = w.cli(env, "respond", "status", id)
	r.want(t, exitOK, "status")
	if !strings.Contains(r.out, "deny      done") || !strings.Contains(r.out, "dial permission Deny All") {
		t.Errorf("status:\n%s", r.out)
	}
	// Abort closes it; every further step is refused.
	w.cli(env, "respond", "abort", id, "--reason", "handled by phone", "--actor", "bob").want(t, exitOK, "abort")
	w.cli(env, "respond", "run", id, "restore", "--actor", "alice").want(t, exitRefused, "run on a closed incident")
}

func threadHas(msgs []slackfake.Message, s string) bool {
	for _, m := range msgs {
		if strings.Contains(m.Text, s) {
			return true
		}
	}
	return false
}

func threadTexts(msgs []slackfake.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Text)
	}
	return out
}

// TestRespondCardRefused: a card for a channel the bot is not in is not retried for ever: the
// running bot serve records the refusal in the incident's audit and forgets the pending card.
func TestRespondCardRefused(t *testing.T) {
	w := newWorld(t)
	env := w.cliEnv()
	r := w.cli(env, "respond", "open", target, "--channel", "C0OTHER", "--actor", "alice")
	r.want(t, exitOK, "open with a channel the bot is not in")
	id := openedRE.FindStringSubmatch(r.out)[1]
	w.start()
	w.waitFor("the refusal in the audit", func() bool {
		entries, err := w.store.Audit(context.Background(), id)
		if err != nil {
			return false
		}
		for _, e := range entries {
			if e.Action == "card.refused" && strings.Contains(e.Detail, "not_in_channel") {
				return true
			}
		}
		return false
	})
	w.waitFor("the pending card forgotten", func() bool {
		ids, err := w.store.PendingCards(context.Background())
		return err == nil && len(ids) == 0
	})
	if inc := w.incident(id); inc.MessageTS != "" {
		t.Errorf("a card was recorded in a channel the bot is not in: %s", inc.MessageTS)
	}
}
