package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
)

// The roles of the authorization matrix, each played by one person of newWorld.
type role string

const (
	roleNone      role = "not a responder" // mallory
	roleResponder role = "responder"       // carol: RESPONDERS (through S0ONCALL), not APPROVERS
	roleApprover  role = "approver"        // bob: RESPONDERS and APPROVERS
)

var roleUser = map[role]string{roleNone: mallory, roleResponder: carol, roleApprover: bob}

// acts is the outcome of an allowed cell; every other outcome is the audit action of a refusal.
const acts = "acts"

// authzMatrix is the authorization matrix (issue 11 item 7), derived from DESIGN.md "Commands",
// "Buttons" and "Behaviour a user can rely on" and the README: everything but help needs
// RESPONDERS; approve needs APPROVERS, reject APPROVERS or the requester (to withdraw); the
// requester may not approve their own request; an answer to a step that awaits none, a button
// naming an incident that does not exist, or a button clicked on another incident's card acts
// on nothing. An allowed cell acts; every other cell is refused with this audit action and
// changes neither the PBX nor the incident. A missing cell does not apply (only a responder can
// have a request of their own). Self-approval and withdrawal are by the request's own requester.
var authzMatrix = map[string]map[role]string{
	"open":                     {roleNone: "refused.unauthorized", roleResponder: acts, roleApprover: acts},
	"step:deny":                {roleNone: "refused.unauthorized", roleResponder: acts, roleApprover: acts},
	"step:recreate":            {roleNone: "refused.unauthorized", roleResponder: acts, roleApprover: acts},
	"step:reset":               {roleNone: "refused.unauthorized", roleResponder: acts, roleApprover: acts},
	"step:restore":             {roleNone: "refused.unauthorized", roleResponder: acts, roleApprover: acts},
	"credentials":              {roleNone: "refused.unauthorized", roleResponder: acts, roleApprover: acts},
	"approve":                  {roleNone: "refused.unauthorized", roleResponder: "refused.unauthorized", roleApprover: acts},
	"reject":                   {roleNone: "refused.unauthorized", roleResponder: "refused.unauthorized", roleApprover: acts},
	"withdraw own request":     {roleResponder: acts, roleApprover: acts},
	"self-approve":             {roleResponder: "refused.unauthorized", roleApprover: "refused.self_approval"},
	"approve not awaiting":     {roleNone: "refused.unauthorized", roleResponder: "refused.unauthorized", roleApprover: "refused.not_awaiting"},
	"force:restore":            {roleNone: "refused.unauthorized", roleResponder: acts, roleApprover: acts},
	"abort":                    {roleNone: "refused.unauthorized", roleResponder: acts, roleApprover: acts},
	"forged: other's card":     {roleNone: "refused.unauthorized", roleResponder: "refused.forged", roleApprover: "refused.forged"},
	"forged: no such incident": {roleNone: "refused.no_incident", roleResponder: "refused.no_incident", roleApprover: "refused.no_incident"},
}

// matrix runs the cells of authzMatrix against one world and records which ran.
type matrix struct {
	w   *world
	ran map[string]map[role]bool
}

// cell runs one cell: do (as the role's person) must act (acted becomes true) if the matrix
// allows it; otherwise it must be refused with the matrix's audit action, answered to that
// person, with no PBX write and no change of any incident's steps or state.
func (m *matrix) cell(action string, r role, do func(user string), acted func() bool) {
	w := m.w
	w.t.Helper()
	want, ok := authzMatrix[action][r]
	if !ok {
		w.t.Fatalf("cell %q × %s is not in the matrix", action, r)
	}
	if m.ran[action] == nil {
		m.ran[action] = map[role]bool{}
	}
	m.ran[action][r] = true
	user := roleUser[r]
	writes, ephemerals := len(w.pbx.Writes()), len(w.slack.Ephemerals(user))
	audit := w.globalAudit()
	before := w.stepsOfOpen()
	do(user)
	if want == acts {
		w.waitFor(action+" by the "+string(r), acted)
		return
	}
	w.waitFor(action+" by the "+string(r)+" audited as "+want, func() bool {
		for _, e := range w.globalAudit()[len(audit):] {
			if e.Action == want && e.Actor == user {
				return true
			}
		}
		return false
	})
	w.waitFor("the refusal answered to the "+string(r), func() bool { return len(w.slack.Ephemerals(user)) > ephemerals })
	if got := len(w.pbx.Writes()); got != writes {
		w.t.Errorf("%s by the %s (refused) made %d PBX writes", action, r, got-writes)
	}
	if after := w.stepsOfOpen(); after != before {
		w.t.Errorf("%s by the %s (refused) changed an incident:\n before %s\n after  %s", action, r, before, after)
	}
}

func (w *world) globalAudit() []session.AuditEntry {
	w.t.Helper()
	es, err := w.store.GlobalAudit(context.Background(), 0, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	return es
}

// stepsOfOpen is the state and steps of the open incident of each of w.authzUsers, as one
// comparable string.
func (w *world) stepsOfOpen() string {
	w.t.Helper()
	var b strings.Builder
	for _, u := range w.authzUsers {
		inc, err := w.store.FindOpen(context.Background(), u[0], u[1])
		if err != nil {
			b.WriteString(u[0] + ": none; ")
			continue
		}
		b.WriteString(inc.ID + " " + string(inc.State) + ":")
		for _, s := range session.Steps {
			st := inc.Step(s)
			b.WriteString(" " + string(s) + "=" + string(st.Status) + "/" + st.RequestedBy + "/" + st.ApprovedBy)
		}
		b.WriteString("; ")
	}
	return b.String()
}

// press clicks actionID on the card at ts with value id, whether the card shows it now or not
// (a button of an older rendering, or a forged value: Slack delivers what the click names).
func (w *world) press(user, ts, actionID, id string) {
	w.t.Helper()
	w.clickWith(slackfake.Click{UserID: user, ChannelID: incChan, MessageTS: ts, ActionID: actionID,
		BlockID: "s:any:v1", Value: id, Stale: true})
}

// TestServeAuthorizationMatrix: every cell of authzMatrix, through slackfake and the real bot:
// exactly the allowed cells act, every refusal is audited and changes nothing.
func TestServeAuthorizationMatrix(t *testing.T) {
	w := newWorld(t)
	w.start()
	m := &matrix{w: w, ran: map[string]map[role]bool{}}

	// The responder's lane is 1001@acme.example (approved by bob), the approver's
	// 2002@globex.example (approved by alice); both have a soft phone, for credentials.
	type lane struct {
		r            role
		user, domain string // the PBX user
		drift        string // a dial policy that is neither the deny policy nor the user's original
		approver     string // who approves this lane's requests
		ts, id       string // the current incident and its card
	}
	lanes := []*lane{{r: roleResponder, user: "1001", domain: "acme.example", drift: "International", approver: bob},
		{r: roleApprover, user: "2002", domain: "globex.example", drift: "US and Canada", approver: alice}}
	w.authzUsers = [][2]string{{"1001", "acme.example"}, {"2002", "globex.example"}}
	open := func(l *lane) func() bool {
		return func() bool {
			inc, err := w.store.FindOpen(context.Background(), l.user, l.domain)
			return err == nil && inc.MessageTS != ""
		}
	}
	command := func(text string) func(string) { return func(u string) { w.command(u, incChan, text) } }
	m.cell("open", roleNone, command("1001@acme.example"), nil)
	for _, l := range lanes {
		m.cell("open", l.r, command(l.user+"@"+l.domain), open(l))
		l.ts, _ = w.card(l.user, l.domain)
		inc, _ := w.store.FindOpen(context.Background(), l.user, l.domain)
		l.id = inc.ID
	}
	step := func(l *lane, s session.Step) *session.StepState { return w.step(l.id, s) }
	finished := func(l *lane, s session.Step) func() bool {
		return func() bool { return step(l, s).Status.Finished() }
	}
	click := func(l *lane, action string) func(string) { return func(u string) { w.press(u, l.ts, action, l.id) } }

	for i, l := range lanes {
		first := i == 0 // the cells of the role without rights run once
		for _, s := range []session.Step{session.StepDeny, session.StepRecreate} {
			if first {
				m.cell("step:"+string(s), roleNone, click(l, "step:"+string(s)), nil)
			}
			m.cell("step:"+string(s), l.r, click(l, "step:"+string(s)), finished(l, s))
		}
		if first {
			m.cell("approve not awaiting", roleNone, click(l, "approve:recreate"), nil)
			m.cell("credentials", roleNone, click(l, "credentials"), nil)
		}
		m.cell("approve not awaiting", l.r, click(l, "approve:recreate"), nil)
		creds := func(u string) int {
			n := 0
			for _, e := range w.slack.Ephemerals(u) {
				if strings.Contains(e.Text, "New credentials") {
					n++
				}
			}
			return n
		}
		had := creds(roleUser[l.r])
		m.cell("credentials", l.r, click(l, "credentials"), func() bool { return creds(roleUser[l.r]) > had })
		if first {
			m.cell("step:reset", roleNone, click(l, "step:reset"), nil)
		}
		m.cell("step:reset", l.r, click(l, "step:reset"), finished(l, session.StepReset))

		// Forged buttons: this lane's card naming the other lane's incident, or no incident.
		other := lanes[1-i]
		forged := func(id string) func(string) { return func(u string) { w.press(u, l.ts, "step:deny", id) } }
		if first {
			m.cell("forged: other's card", roleNone, forged(other.id), nil)
			m.cell("forged: no such incident", roleNone, forged("INC-000000"), nil)
		}
		m.cell("forged: other's card", l.r, forged(other.id), nil)
		m.cell("forged: no such incident", l.r, forged("INC-000000"), nil)

		// Restore: requested, answered by the wrong people, withdrawn, rejected, approved.
		awaiting := func(force bool) func() bool {
			return func() bool {
				st := step(l, session.StepRestore)
				return st.Status == session.StatusAwaiting && st.RequestedBy == roleUser[l.r] && st.Force == force
			}
		}
		ready := func() bool { return step(l, session.StepRestore).Status == session.StatusReady }
		if first {
			m.cell("step:restore", roleNone, click(l, "step:restore"), nil)
		}
		m.cell("step:restore", l.r, click(l, "step:restore"), awaiting(false))
		m.cell("self-approve", l.r, click(l, "approve:restore"), nil)
		if first {
			m.cell("approve", roleNone, click(l, "approve:restore"), nil)
			m.cell("reject", roleNone, click(l, "reject:restore"), nil)
		} else {
			// The responder answers the approver's request: neither an approver nor its requester.
			m.cell("approve", roleResponder, click(l, "approve:restore"), nil)
			m.cell("reject", roleResponder, click(l, "reject:restore"), nil)
		}
		m.cell("withdraw own request", l.r, click(l, "reject:restore"), ready)
		if first {
			// The approver rejects the responder's request.
			w.press(roleUser[l.r], l.ts, "step:restore", l.id)
			w.waitFor("restore requested again", awaiting(false))
			m.cell("reject", roleApprover, click(l, "reject:restore"), func() bool {
				st := step(l, session.StepRestore)
				return st.Status == session.StatusReady && st.RejectedBy == bob
			})
		}

		// A drift, so that force applies: the approved restore fails with it, then force.
		w.pbx.SetUserField(l.domain, l.user, "dial-policy", l.drift)
		w.press(roleUser[l.r], l.ts, "step:restore", l.id)
		w.waitFor("restore requested", awaiting(false))
		drifted := func() bool {
			st := step(l, session.StepRestore)
			return st.Status == session.StatusFailed && st.ErrKind == "drift"
		}
		if first {
			m.cell("approve", roleApprover, click(l, "approve:restore"), drifted)
			m.cell("force:restore", roleNone, click(l, "force:restore"), nil)
		} else {
			w.press(l.approver, l.ts, "approve:restore", l.id)
			w.waitFor("the drift", drifted)
		}
		m.cell("force:restore", l.r, click(l, "force:restore"), awaiting(true))
		w.press(l.approver, l.ts, "approve:restore", l.id)
		w.waitFor("the forced restore", func() bool { return w.incident(l.id).State == session.StateRestored })
		if u, _ := w.pbx.User(l.domain, l.user); u["dial-policy"] == l.drift || u["dial-policy"] == "Deny All" {
			t.Errorf("after the forced restore %s has dial-policy %v", l.user, u["dial-policy"])
		}

		// Abort, on a new incident of the same user.
		w.command(roleUser[l.r], incChan, l.user+"@"+l.domain)
		w.waitFor("a new incident of "+l.user, open(l))
		l.ts, _ = w.card(l.user, l.domain)
		inc, _ := w.store.FindOpen(context.Background(), l.user, l.domain)
		l.id = inc.ID
		if first {
			m.cell("abort", roleNone, click(l, "abort"), nil)
		}
		m.cell("abort", l.r, click(l, "abort"), func() bool { return w.incident(inc.ID).State == session.StateAborted })
	}

	for action, cells := range authzMatrix {
		for r := range cells {
			if !m.ran[action][r] {
				t.Errorf("cell %q × %s never ran", action, r)
			}
		}
	}
	// Every refusal of the run is in the audit (the cells checked each one as it happened);
	// and the audit holds no refusal the matrix does not name.
	names := []string{}
	for _, cells := range authzMatrix {
		for _, o := range cells {
			names = append(names, o)
		}
	}
	for _, e := range w.globalAudit() {
		if strings.HasPrefix(e.Action, "refused.") && !slices.Contains(names, e.Action) {
			t.Errorf("an unexpected refusal in the audit: %+v", e)
		}
	}
}
