package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/compromised-responder/bot/internal/lockdown"
	"github.com/compromised-responder/bot/internal/session"
)

// `bot respond status LCK-…`: a lockdown's progress and every member's state, in plain text, as
// `/compromised status LCK-…` answers in Slack (there capped; here every member).

// lockdownRef reports whether ref names a lockdown (LCK-…): its canonical ID, or a usage error
// for a malformed one. A user@domain never does, even one whose user starts with "lck" (as
// /compromised status reads it).
func lockdownRef(ref string) (string, bool, error) {
	if strings.Contains(ref, "@") {
		return "", false, nil
	}
	if id, ok := session.NormalizeLockdownID(ref); ok {
		return id, true, nil
	}
	if strings.HasPrefix(strings.ToUpper(ref), "LCK") {
		return "", true, exitf(exitUsage, "%q is not a lockdown ID (LCK- and 6 characters)", ref)
	}
	return "", false, nil
}

func (r *responder) lockdownStatus(ctx context.Context, lk *lockdown.Engine, id string) error {
	l, s, members, err := lk.Status(ctx, id)
	if errors.Is(err, session.ErrNotFound) {
		return exitf(exitUsage, "no lockdown %s", id)
	}
	if err != nil {
		return respondErr(id, err)
	}
	target := fmt.Sprintf("%d named users", len(l.Members))
	if l.Scope == session.ScopeDomain {
		target = "every user of " + l.Domain
	}
	r.say("%s · %s · %s · opened %s by %s · %d users · %d devices", l.ID, target, l.State, ts(l.CreatedAt), l.OpenedBy, s.Total, s.Devices)
	if l.Reason != "" {
		r.say("  reason: %s", l.Reason)
	}
	r.say("  %d contained · %d pending · %d failed · %d held by the restore gate · %d not opened — of %d",
		s.Contained, s.Total-s.Contained, len(s.Failures), len(s.Held), s.Total-s.Opened, s.Total)
	r.say("  members: %d open · %d restored · %d aborted", s.Open, s.Restored, s.Aborted)
	if run := l.LastRun(); run != nil {
		when := "running since " + ts(run.StartedAt)
		if run.Done() {
			when = "finished " + ts(run.FinishedAt)
		}
		r.say("  last: %s by %s, %s", lockdown.RunTitle(run), run.Actor, when)
	}
	for _, step := range session.Steps {
		c := s.Steps[step]
		line := fmt.Sprintf("  %-9s %d/%d done", step, c[session.StatusDone]+c[session.StatusWarnings], s.Total)
		for _, st := range []session.Status{session.StatusRunning, session.StatusAwaiting, session.StatusFailed, session.StatusSkipped} {
			if c[st] > 0 {
				line += fmt.Sprintf(" · %d %s", c[st], st)
			}
		}
		r.say("%s", line)
	}
	r.say("  members (those that need attention first):")
	for _, m := range members {
		line := fmt.Sprintf("    %-28s", m.Member.Key())
		if inc := m.Incident; inc != nil {
			steps := make([]string, len(session.Steps))
			for i, st := range session.Steps {
				steps[i] = string(st) + " " + orNone(string(inc.Step(st).Status))
			}
			line += fmt.Sprintf(" %s %-8s %s", inc.ID, inc.State, strings.Join(steps, " · "))
		}
		if m.Note != "" {
			note := m.Note
			if m.AskedBy != "" {
				note += "; asked by " + m.AskedBy
			}
			line += "  (" + note + ")"
		}
		r.say("%s", line)
	}
	return nil
}
