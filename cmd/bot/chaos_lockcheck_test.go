package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// The invariants of the chaos run's lockdowns (chaos_lockdown_test.go), checked with the others
// once every lockdown was finished. The members' incidents are in c.incs and their users in
// c.users, so the run's own checks cover them too: none stuck, every original on the PBX again or
// kept, no PBX write twice per step run, every audit chain verifies. These add what only a
// lockdown has: one card with the right counts, the members it should have (a user's open
// incident joined, not doubled), and every member's original recorded before its deny PUT.

// lockdowns checks every lockdown rec saw, and the problems its drivers met.
func (c *chaosCheck) lockdowns(ctx context.Context, rec *lockRecord, domain, named []chaosUser, calls []nstest.Call) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, p := range rec.problems {
		c.violation("%s", p)
	}
	byID := map[string]session.Incident{}
	for _, l := range c.incs {
		for _, inc := range l {
			byID[inc.ID] = inc
		}
	}
	seeded := map[string]string{}
	for _, u := range slices.Concat(domain, named) {
		seeded[u.target()] = u.original
	}
	for _, id := range rec.ids {
		l, err := c.w.store.GetLockdown(ctx, id)
		if err != nil {
			c.violation("%s: read the lockdown: %v", id, err)
			continue
		}
		want := named
		if l.Scope == session.ScopeDomain {
			want = domain
		}
		var runs []string
		for _, r := range l.Runs {
			runs = append(runs, strings.TrimSpace(r.Kind+" "+string(r.Step)))
		}
		c.notes = append(c.notes, fmt.Sprintf("%s (%s, %d members): closed %s after the runs %s", l.ID, l.Scope, len(l.Members), l.State, strings.Join(runs, ", ")))
		c.lockMembers(l, want, rec.joiners[l.ID], byID)
		c.lockCard(ctx, l, byID)
		for _, m := range l.Members {
			if inc, ok := byID[m.IncidentID]; ok {
				c.originalBeforePUT(inc, seeded[m.Key()], calls)
			}
		}
	}
}

// lockMembers: the lockdown has exactly the users it named, each with an incident of its own
// (distinct), marked a member and with no card of its own; the user who had an open incident
// joined with it (which keeps its card).
func (c *chaosCheck) lockMembers(l session.Lockdown, want []chaosUser, joiner string, byID map[string]session.Incident) {
	var got, exp []string
	seen := map[string]bool{}
	for _, m := range l.Members {
		got = append(got, m.Key())
		inc, ok := byID[m.IncidentID]
		switch {
		case m.IncidentID == "" || !ok:
			c.violation("%s: member %s has no incident (%q)", l.ID, m.Key(), m.IncidentID)
			continue
		case seen[m.IncidentID]:
			c.violation("%s: incident %s is the member of two users", l.ID, m.IncidentID)
		case m.Joined && (inc.Lockdown != "" || inc.MessageTS == ""):
			c.violation("%s: %s joined with %s, which has lockdown %q and card %q (want its own card)", l.ID, m.Key(), inc.ID, inc.Lockdown, inc.MessageTS)
		case !m.Joined && (inc.Lockdown != l.ID || inc.MessageTS != ""):
			c.violation("%s: %s's incident %s has lockdown %q and card %q (want %s's, no card of its own)", l.ID, m.Key(), inc.ID, inc.Lockdown, inc.MessageTS, l.ID)
		case inc.Key() != m.Key():
			c.violation("%s: member %s has %s's incident %s", l.ID, m.Key(), inc.Key(), inc.ID)
		}
		seen[m.IncidentID] = true
		if joiner != "" && (m.IncidentID == joiner) != m.Joined {
			c.violation("%s: %s is member %+v; the incident %s opened before the lockdown should have joined", l.ID, m.Key(), m, joiner)
		}
	}
	for _, u := range want {
		exp = append(exp, u.target())
	}
	slices.Sort(got)
	slices.Sort(exp)
	if !slices.Equal(got, exp) {
		c.violation("%s: members %v, want %v", l.ID, got, exp)
	}
	if joiner != "" && !seen[joiner] {
		c.violation("%s: the open incident %s did not join (members %v)", l.ID, joiner, got)
	}
}

// lockCard: the lockdown is closed, in the state its members say, and has one card in the
// channel, which (once it caught up: a card is updated at most every 2 s) shows the members'
// counts: contained, failed and total, and how many were restored and aborted.
func (c *chaosCheck) lockCard(ctx context.Context, l session.Lockdown, byID map[string]session.Incident) {
	var contained, failed, restored, aborted int
	for _, m := range l.Members {
		inc, ok := byID[m.IncidentID]
		if !ok {
			continue
		}
		switch inc.State {
		case session.StateRestored:
			restored++
		case session.StateAborted:
			aborted++
		}
		if inc.Step(session.StepDeny).Status.Finished() {
			contained++
		}
		for _, s := range session.Steps {
			if st := inc.Step(s); st.Status == session.StatusFailed && st.ErrKind != remediate.KindOriginalUnknown {
				failed++
			}
		}
	}
	state := session.StateRestored
	if aborted > 0 {
		state = session.StateAborted
	}
	if l.Open() || restored+aborted != len(l.Members) || l.State != state {
		c.violation("%s is %s with %d of %d members restored and %d aborted (want closed %s)", l.ID, l.State, restored, len(l.Members), aborted, state)
	}
	var cards []string
	for _, m := range c.w.slack.Channel(incChan) {
		if m.ThreadTS == "" && strings.Contains(m.Text, " "+l.ID+":") {
			cards = append(cards, m.TS)
		}
	}
	if len(cards) != 1 || cards[0] != l.MessageTS {
		c.violation("%s: cards in the channel %v, want exactly one, its own %q", l.ID, cards, l.MessageTS)
		return
	}
	target := "every user of " + l.Domain
	if l.Scope == session.ScopeUsers {
		target = fmt.Sprintf("%d named users", len(l.Members))
	}
	text := fmt.Sprintf("Closed lockdown (%s) %s: %s — %d of %d contained, %d failed", l.State, l.ID, target, contained, len(l.Members), failed)
	closed := fmt.Sprintf("closed: %d restored, %d aborted", restored, aborted)
	shown := (&driver{w: c.w}).poll(ctx, 30*time.Second, func() bool {
		m, ok := c.w.slack.Message(l.Channel, l.MessageTS)
		return ok && m.Text == text && strings.Contains(string(m.Blocks), closed)
	})
	if !shown {
		m, _ := c.w.slack.Message(l.Channel, l.MessageTS)
		c.violation("%s: the card says %q (want %q) and %v %q", l.ID, m.Text, text, strings.Contains(string(m.Blocks), closed), closed)
	}
}

// originalBeforePUT: the member's original was recorded (the seeded one; none for a user seeded
// in Deny All) before each PUT of the deny policy its incident made.
func (c *chaosCheck) originalBeforePUT(inc session.Incident, seeded string, calls []nstest.Call) {
	o := inc.Original
	if inc.Step(session.StepDeny).Status.Finished() {
		switch {
		case o == nil:
			c.violation("%s (%s): denied with no original on record", inc.ID, inc.Key())
		case seeded == "Deny All" && o.Known:
			c.violation("%s (%s): seeded in Deny All, but %q is recorded as its original", inc.ID, inc.Key(), o.Policy)
		case seeded != "Deny All" && (!o.Known || o.Policy != seeded):
			c.violation("%s (%s): original %+v, want %q", inc.ID, inc.Key(), *o, seeded)
		}
	}
	path := "/domains/" + inc.Domain + "/users/" + inc.User
	for _, call := range calls {
		if !call.Applied || call.Method != "PUT" || call.Path != path || call.At.Before(inc.CreatedAt) ||
			!inc.ClosedAt.IsZero() && call.At.After(inc.ClosedAt) {
			continue
		}
		var body map[string]any
		if json.Unmarshal(call.Body, &body) != nil || body["dial-policy"] != "Deny All" {
			continue
		}
		if o == nil || o.RecordedAt.IsZero() || o.RecordedAt.After(call.At) {
			c.violation("%s (%s): the deny PUT at %s came before its original was recorded (%+v)", inc.ID, inc.Key(), call.At.Format(time.StampMicro), o)
		}
	}
}
