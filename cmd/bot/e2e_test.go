package main

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
	"github.com/compromised-responder/bot/internal/testenv"
)

// TestServeRunbook drives the whole runbook through `run` by button clicks, with the restore
// approved by a second person: the PBX ends as the procedure says, the thread holds the full
// audit, the secrets reach only the requester, and every log line is JSON.
func TestServeRunbook(t *testing.T) {
	w := newWorld(t)
	w.slack.AddChannel("C0AUDIT", "audit", true)
	w.env["AUDIT_CHANNEL"] = "C0AUDIT"
	b := w.start()

	w.command(alice, incChan, target+" intl calls to +882")
	ts, inc := w.card("1001", "acme.example")
	w.cardShows(ts, inc.ID)

	w.click(alice, ts, "step:deny")
	w.cardShows(ts, "deny done")
	if got := w.pbxUser("1001")["dial-policy"]; got != "Deny All" {
		t.Fatalf("after deny the PBX has dial-policy %v, want Deny All", got)
	}

	// A click on a finished step: ephemeral "already done", nothing run again.
	writes := len(w.pbx.Writes())
	w.staleClick(bob, ts, "step:deny", inc.ID)
	w.ephemeralWith(bob, "already done")
	if got := len(w.pbx.Writes()); got != writes {
		t.Errorf("a click on a done step made %d PBX writes", got-writes)
	}

	w.click(alice, ts, "step:recreate")
	w.waitFor("recreate finished", func() bool { return w.step(inc.ID, session.StepRecreate).Status.Finished() })
	w.ephemeralWith(alice, "SIP password of device 1001a")
	w.ephemeralWith(alice, "Desk phone 1001")

	w.click(alice, ts, "step:reset")
	w.waitFor("reset finished", func() bool { return w.step(inc.ID, session.StepReset).Status.Finished() })
	w.ephemeralWith(alice, "Voicemail PIN of 1001@acme.example")

	// Restore needs approval: alice asks, may not approve herself, bob approves.
	w.click(alice, ts, "step:restore")
	w.cardShows(ts, "approve:restore")
	before := len(w.pbx.Writes())
	w.click(alice, ts, "approve:restore")
	w.ephemeralWith(alice, "not allowed to approve your own request")
	if st := w.step(inc.ID, session.StepRestore); st.Status != session.StatusAwaiting || st.ApprovedBy != "" {
		t.Fatalf("self-approval changed the step: %s approved by %q", st.Status, st.ApprovedBy)
	}
	if got := len(w.pbx.Writes()); got != before {
		t.Fatalf("self-approval made %d PBX writes", got-before)
	}
	w.click(bob, ts, "approve:restore")
	w.cardShows(ts, "Closed (restored)")

	final := w.incident(inc.ID)
	if final.State != session.StateRestored {
		t.Fatalf("incident state %s, want restored", final.State)
	}
	rs := final.Step(session.StepRestore)
	if rs.RequestedBy != alice || rs.ApprovedBy != bob {
		t.Errorf("restore requested by %s approved by %s, want %s and %s", rs.RequestedBy, rs.ApprovedBy, alice, bob)
	}
	if got := w.pbxUser("1001")["dial-policy"]; got != "US and Canada" {
		t.Errorf("after restore the PBX has dial-policy %v, want US and Canada", got)
	}
	var devs []string
	for _, d := range w.pbx.Devices("acme.example", "1001") {
		devs = append(devs, d["device"].(string))
	}
	if diff := cmp.Diff(devs, []string{"1001", "1001a"}); diff != "" {
		t.Errorf("devices after the runbook (-got +want):\n%s", diff)
	}

	// The thread: one reply per audit entry, in order, naming who did what.
	replies, entries := w.threadAndAudit(inc.ID)
	// AUDIT_CHANNEL mirrors every line, plus the chain head.
	w.waitFor("the audit channel mirror", func() bool {
		n, head := 0, false
		for _, m := range threadLines(w.slack.Channel("C0AUDIT")) {
			if strings.Contains(m.Text, inc.ID) {
				n++
			}
			head = head || strings.Contains(m.Text, "Audit chain head")
		}
		return n == len(entries) && head
	})
	var actions []string
	for i, e := range entries {
		actions = append(actions, e.Action)
		if !strings.Contains(replies[i].Text, "<@"+e.Actor+">") && e.Actor != "bot" {
			t.Errorf("reply %d %q does not name its actor %s", i, replies[i].Text, e.Actor)
		}
	}
	for _, want := range []string{"incident.opened", "step.deny.started", "approval.requested", "refused.self_approval",
		"approval.approved", "incident.restored"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit lacks %s: %v", want, actions)
		}
	}

	// Secrets: delivered to alice (the requester, also for the step bob approved) and nowhere else.
	secrets := secretValues(w.slack.Ephemerals(alice))
	if len(secrets) < 2 {
		t.Fatalf("alice got %d secrets, want a SIP password and a PIN", len(secrets))
	}
	if got := secretValues(w.slack.Ephemerals(bob)); len(got) != 0 {
		t.Errorf("bob received %d secrets", len(got))
	}
	for _, d := range w.pbx.Devices("acme.example", "1001") {
		if pw, _ := d["device-sip-registration-password"].(string); pw != "" && d["device"] == "1001a" && !slices.Contains(secrets, pw) {
			t.Errorf("the softphone's new password was not the one delivered")
		}
	}
	w.cardMonotonic(ts)
	_, r, err := readyz(b.url)
	if err != nil || !r.Ready || !strings.Contains(strings.Join(r.Warnings, ";"), "AUDIT_KEY") {
		t.Errorf("readyz %+v %v: want ready with the start-up warnings", r, err)
	}
	w.scrape(b.url)
	b.stop(t)
	w.scanSecrets(secrets)
	w.jsonLines()
}

// restoreApproved has alice request Restore on the card at ts and bob approve it, waits for the
// card to show the incident closed, and checks that 1001 has its original dial policy again.
func (w *world) restoreApproved(ts string) {
	w.t.Helper()
	w.click(alice, ts, "step:restore")
	w.cardShows(ts, "approve:restore")
	w.click(bob, ts, "approve:restore")
	w.cardShows(ts, "Closed (restored)")
	if got := w.pbxUser("1001")["dial-policy"]; got != "US and Canada" {
		w.t.Errorf("after restore the PBX has dial-policy %v, want US and Canada", got)
	}
}

func (w *world) pbxUser(user string) map[string]any {
	w.t.Helper()
	u, ok := w.pbx.User("acme.example", user)
	if !ok {
		w.t.Fatalf("no user %s on the PBX", user)
	}
	return u
}

func (w *world) step(id string, s session.Step) *session.StepState {
	inc := w.incident(id)
	return inc.Step(s)
}

// TestServeAuthorization: who may do what, and that a refusal changes nothing (a refused
// command makes no PBX call at all); DMs, a channel without the bot, and a second open.
func TestServeAuthorization(t *testing.T) {
	w := newWorld(t)
	w.start()
	// Ready means one connection said hello; the second's apps.connections.open must not be
	// counted as a call of the commands below.
	w.waitFor("every Socket Mode connection up", func() bool { return w.slack.LiveSockets() == socketsPerBot })

	// help needs nothing, and is answered in the ack itself: no Web API call, no response_url.
	stats := w.slack.Stats()
	w.command(mallory, incChan, "help")
	if m := w.ephemeralWith(mallory, "/compromised"); m.Method != "ack" {
		t.Errorf("help answered by %s, want the ack", m.Method)
	}
	// An expired response_url: an answer a worker gives still arrives, through chat.postEphemeral.
	w.slack.ExpireResponseURLs(true)
	n := len(w.slack.Calls("chat.postEphemeral"))
	w.command(alice, incChan, "list")
	w.waitFor("list through chat.postEphemeral", func() bool { return len(w.slack.Calls("chat.postEphemeral")) > n })
	w.slack.ExpireResponseURLs(false)

	// Refusals, and a command that cannot be parsed, are answered in the ack too.
	for _, text := range []string{target, "plan " + target, "status " + target, "list", "garbage!"} {
		w.pbx.ResetCalls()
		n := len(w.slack.Ephemerals(mallory))
		w.command(mallory, incChan, text)
		w.waitFor("refusal of "+text, func() bool { return len(w.slack.Ephemerals(mallory)) > n })
		if got := w.slack.Ephemerals(mallory)[n]; !strings.Contains(got.Text, "not allowed") || got.Method != "ack" {
			t.Errorf("%q by mallory answered %q by %s, want a refusal in the ack", text, got.Text, got.Method)
		}
		if calls := w.pbx.Calls(); len(calls) != 0 {
			t.Errorf("refused %q made %d PBX calls, e.g. %s %s", text, len(calls), calls[0].Method, calls[0].Path)
		}
	}
	w.command(alice, incChan, "status INC-1")
	if m := w.ephemeralWith(alice, "is not an incident ID"); m.Method != "ack" {
		t.Errorf("a usage error answered by %s, want the ack", m.Method)
	}
	for method, st := range w.slack.Stats() {
		if method == "chat.postEphemeral" || method == "usergroups.users.list" || method == "auth.test" {
			continue // alice's list above; the user-group cache; a bot start
		}
		if st.Calls != stats[method].Calls {
			t.Errorf("help, refusals and usage errors called %s %d times", method, st.Calls-stats[method].Calls)
		}
	}
	if got := len(w.slack.Channel(incChan)); got != 0 {
		t.Fatalf("refused commands posted %d channel messages", got)
	}

	// Not in the channel: told how to add the bot, nothing opened.
	w.command(alice, "C0OTHER", target)
	w.ephemeralWith(alice, "/invite")
	if _, err := w.store.FindOpen(context.Background(), "1001", "acme.example"); err == nil {
		t.Fatal("an incident was opened in a channel the bot is not in")
	}

	// DMs: channels only.
	w.slack.AddIM("D0ALICE", alice)
	w.command(alice, "D0ALICE", target)
	w.ephemeralWith(alice, "channels only")

	// carol is a responder through the user group.
	w.command(carol, incChan, target)
	ts, inc := w.card("1001", "acme.example")

	// A second open points at the card and posts nothing.
	w.command(bob, incChan, "1001 acme.example again")
	m := w.ephemeralWith(bob, "already has an open incident")
	if link := "<https://fake.slack.com/archives/" + incChan + "/p" + strings.Replace(ts, ".", "", 1) + "|its card>"; !strings.Contains(m.Text, link) {
		t.Errorf("second open answered %q, want a link to the card %s", m.Text, link)
	}
	if got := len(topLevel(w.slack.Channel(incChan))); got != 1 {
		t.Errorf("%d cards in the channel after a second open, want 1", got)
	}

	// mallory clicks deny and abort; carol (not an approver) and mallory try to approve.
	before := len(w.pbx.Writes())
	w.click(mallory, ts, "step:deny")
	if m := w.ephemeralWith(mallory, "not allowed to run incident steps"); m.Method != "response_url" {
		t.Errorf("a refused click answered by %s, want its response_url", m.Method)
	}
	w.click(mallory, ts, "abort")
	w.ephemeralWith(mallory, "not allowed to abort")
	if got := w.step(inc.ID, session.StepDeny).Status; got != session.StatusReady {
		t.Fatalf("deny is %s after mallory's click", got)
	}
	w.click(carol, ts, "step:deny")
	w.cardShows(ts, "deny done")
	w.click(carol, ts, "step:restore")
	w.cardShows(ts, "approve:restore")
	writes := len(w.pbx.Writes())
	w.click(carol, ts, "approve:restore")
	w.ephemeralWith(carol, "not allowed to approve")
	w.click(mallory, ts, "approve:restore")
	w.ephemeralWith(mallory, "not allowed to approve")
	w.click(mallory, ts, "reject:restore")
	w.ephemeralWith(mallory, "not allowed to reject")
	if st := w.step(inc.ID, session.StepRestore); st.Status != session.StatusAwaiting || st.ApprovedBy != "" {
		t.Fatalf("restore is %s approved by %q after refused answers", st.Status, st.ApprovedBy)
	}
	if got := len(w.pbx.Writes()); got != writes {
		t.Errorf("refused approvals made %d PBX writes", got-writes)
	}
	// The requester may withdraw her own request.
	w.click(carol, ts, "reject:restore")
	w.waitFor("restore withdrawn", func() bool { return w.step(inc.ID, session.StepRestore).Status == session.StatusReady })
	if before == len(w.pbx.Writes()) {
		t.Error("carol's deny made no PBX write")
	}

	// Every refusal is in the audit.
	w.threadComplete(inc.ID)
	entries, _ := w.store.Audit(context.Background(), inc.ID)
	refused := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Action, "refused.") {
			refused++
		}
	}
	if refused != 5 {
		t.Errorf("%d refusals in the incident's audit, want 5", refused)
	}
	global, _ := w.store.GlobalAudit(context.Background(), 0, 0)
	gref := 0
	for _, e := range global {
		if e.Action == "refused.unauthorized" && e.IncidentID == "" {
			gref++
		}
	}
	if gref != 5 {
		t.Errorf("%d refused commands in the global audit, want 5", gref)
	}
}

func topLevel(msgs []slackfake.Message) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range msgs {
		if m.ThreadTS == "" || m.ThreadTS == m.TS {
			out = append(out, m)
		}
	}
	return out
}

// TestServeExactlyOnce: two bot processes on one Redis, double clicks, and the same envelope
// delivered twice all lead to one set of PBX writes, each audit line once in the thread, and a
// card that never goes backwards.
func TestServeExactlyOnce(t *testing.T) {
	w := newWorld(t)
	b1 := w.start()
	b2 := w.start() // a second replica: Slack spreads envelopes over both sockets at random
	w.waitFor("both replicas' sockets", func() bool { return w.slack.LiveSockets() == 2*socketsPerBot })

	w.command(alice, incChan, target)
	ts, inc := w.card("1001", "acme.example")
	w.pbx.ResetCalls()

	// Sixteen clicks on deny at once, by two people, spread over both processes. slackfake picks
	// a socket at random for each, as Slack does: with 16 (and the two redeliveries below) all
	// landing on one process has a chance of 2 in 2^18, so the two-replica check at the end
	// does not fail by chance (with 8 it was 1 in 512).
	var wg sync.WaitGroup
	for i := range 16 {
		user := []string{alice, bob}[i%2]
		wg.Go(func() { w.click(user, ts, "step:deny") })
	}
	wg.Wait()
	w.cardShows(ts, "deny done")
	// The same envelope delivered twice (Slack redelivery): the second does nothing.
	env := clickEnvelope("env-dup-1", alice, ts, "step:recreate", "s:recreate:v1", inc.ID)
	ctx := w.ctx()
	for range 2 {
		if err := w.slack.SendEnvelope(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	w.waitFor("recreate finished", func() bool { return w.step(inc.ID, session.StepRecreate).Status.Finished() })
	w.threadComplete(inc.ID)

	puts, deletes, posts := 0, 0, 0
	for _, c := range w.pbx.Writes() {
		switch {
		case c.Method == "PUT" && c.Path == "/domains/acme.example/users/1001":
			puts++
		case c.Method == "DELETE" && strings.Contains(c.Path, "/devices/"):
			deletes++
		case c.Method == "POST" && strings.HasSuffix(c.Path, "/devices"):
			posts++
		}
	}
	if diff := cmp.Diff([]int{puts, deletes, posts}, []int{1, 2, 2}); diff != "" {
		t.Errorf("PBX writes [user PUTs, device DELETEs, device POSTs] (-got +want):\n%s", diff)
	}
	started := 0
	entries, _ := w.store.Audit(context.Background(), inc.ID)
	for _, e := range entries {
		if e.Action == "step.deny.started" || e.Action == "step.recreate.started" {
			started++
		}
	}
	if started != 2 {
		t.Errorf("%d step starts in the audit, want 2", started)
	}
	// Each audit line once in the thread, whichever replica posted it.
	replies := threadLines(w.slack.Thread(incChan, ts))
	seen := map[string]int{}
	for _, r := range replies {
		seen[r.Text]++
	}
	for text, n := range seen {
		if n > 1 {
			t.Errorf("thread reply posted %d times: %s", n, text)
		}
	}
	if len(replies) != len(entries) {
		t.Errorf("thread has %d replies for %d audit entries", len(replies), len(entries))
	}
	// The requester got the softphone's password exactly once.
	w.ephemeralWith(alice, "SIP password of device 1001a")
	if got := len(secretValues(w.slack.Ephemerals(alice))); got != 1 {
		t.Errorf("alice got %d secrets messages' values, want 1 (the softphone)", got)
	}
	w.cardMonotonic(ts)
	w.scanSecrets(secretValues(w.slack.Ephemerals(alice)))
	if dups := metric(t, b1.url, `compromised_slack_duplicates_total{what="envelope"}`) +
		metric(t, b2.url, `compromised_slack_duplicates_total{what="envelope"}`); dups != 1 {
		t.Errorf("%v duplicate envelopes recognised, want 1", dups)
	}
	n1 := metric(t, b1.url, `compromised_slack_envelopes_received_total{type="interactive"}`)
	n2 := metric(t, b2.url, `compromised_slack_envelopes_received_total{type="interactive"}`)
	t.Logf("clicks received per process: %v and %v", n1, n2)
	if n1 == 0 || n2 == 0 {
		t.Errorf("one process received no click (%v, %v): the two-replica case was not exercised", n1, n2)
	}
}

// clickEnvelope is a block_actions envelope as Slack sends it, for delivering one twice.
func clickEnvelope(envID, user, ts, actionID, blockID, value string) map[string]any {
	return map[string]any{"envelope_id": envID, "type": "interactive", "accepts_response_payload": false,
		"payload": map[string]any{
			"type": "block_actions", "api_app_id": "A0001", "trigger_id": "1.2.dup",
			"team":      map[string]any{"id": "T0001", "domain": "fake"},
			"user":      map[string]any{"id": user, "username": "u", "name": "u", "team_id": "T0001"},
			"container": map[string]any{"type": "message", "message_ts": ts, "channel_id": incChan, "is_ephemeral": false},
			"channel":   map[string]any{"id": incChan, "name": "incident"},
			"actions": []any{map[string]any{"type": "button", "action_id": actionID, "block_id": blockID,
				"value": value, "action_ts": "1700000001.000001",
				"text": map[string]any{"type": "plain_text", "text": "x"}}},
		}}
}

// TestServeInvalidAuth: a bot token Slack refuses stops start-up with a clear message.
func TestServeInvalidAuth(t *testing.T) {
	w := newWorld(t)
	w.env["SLACK_BOT_TOKEN"] = "xoxb-wrong"
	var out, errs testenv.SyncBuffer
	err := run(context.Background(), []string{"bot", "serve"}, func(k string) string { return w.env[k] }, strings.NewReader(""), &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "SLACK_BOT_TOKEN") || strings.Contains(err.Error(), "xoxb-wrong") {
		t.Fatalf("run with a refused token returned %v, want an error naming SLACK_BOT_TOKEN without its value", err)
	}
	if strings.Contains(errs.String(), "xoxb-wrong") || strings.Contains(out.String(), "xoxb-wrong") {
		t.Error("the token appears in the output")
	}
}

// TestServeCommands: plan, status, list and usage answer ephemerally; plan writes nothing.
func TestServeCommands(t *testing.T) {
	w := newWorld(t)
	w.start()
	w.command(alice, incChan, target)
	_, inc := w.card("1001", "acme.example")

	w.pbx.ResetCalls()
	w.command(alice, incChan, "plan 1002@acme.example")
	w.ephemeralWith(alice, "Dry run for 1002@acme.example")
	if n := len(w.pbx.Writes()); n != 0 {
		t.Errorf("plan made %d PBX writes", n)
	}
	w.command(alice, incChan, "status "+strings.ToLower(inc.ID))
	w.ephemeralWith(alice, "as of")
	w.command(bob, incChan, "list")
	w.ephemeralWith(bob, "Open incidents")
	w.command(bob, incChan, "status 1001@acme.example")
	w.ephemeralWith(bob, inc.ID)
	w.command(bob, incChan, "1001@acme.example/../x")
	w.ephemeralWith(bob, "Usage")
	if got := len(topLevel(w.slack.Channel(incChan))); got != 1 {
		t.Errorf("%d channel messages, want only the card: these answers are ephemeral", got)
	}
}
