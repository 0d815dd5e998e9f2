package slackui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// Paging the approvers. Slack notifies a mention only in a new message (chat.postMessage): one
// added by chat.update notifies nobody. So the thread reply of an "approval.requested" audit
// entry is the page itself, a new message that mentions the approvers, posted once across
// replicas by the thread sync (its cursor moves under the incident's sync lock); reminders
// while a request waits page them again.

// approvalRequested is the audit action the engine records for an approval request.
const approvalRequested = "approval.requested"

// mention is the mrkdwn that notifies an APPROVERS/RESPONDERS entry: a user as <@U…>, a user
// group as <!subteam^S…> (config validated the IDs).
func mention(id string) string {
	if strings.HasPrefix(id, "S") {
		return "<!subteam^" + id + ">"
	}
	return "<@" + id + ">"
}

// approverMentions lists who is paged for a request by requester: every configured approver
// but the requester, none left out (a page must reach them all). A group is paged whole: Slack
// notifies its members, perhaps the requester too, but the requester's own approval is refused
// anyway. "" when nobody else is configured.
func approverMentions(approvers []string, requester string) string {
	var parts []string
	for _, id := range approvers {
		if id != requester {
			parts = append(parts, mention(id))
		}
	}
	return strings.Join(parts, " ")
}

// ApprovalPageText is the thread reply for an approval request: the approvers' mentions (all but
// the requester), who asks, what exactly the step will change, and until when. Everything but
// the mentions is escaped.
func ApprovalPageText(inc session.Incident, e session.AuditEntry, approvers []string, now time.Time) string {
	st := inc.Step(e.Step)
	requester := e.Actor
	if st.RequestedBy != "" {
		requester = st.RequestedBy
	}
	r := &renderer{inc: &inc, o: CardOptions{Now: now}}
	what := esc(short(r.change(e.Step), 300))
	if st.Force {
		what += " (a *forced* restore: the live dial permission changed since deny)"
	}
	until := ""
	if !st.ApprovalExpires.IsZero() {
		until = " The request expires at " + clockAt(st.ApprovalExpires, now) + "."
	}
	who := approverMentions(approvers, requester)
	if who == "" {
		return fmt.Sprintf("🙋 Approval requested by %s to %s, but APPROVERS names nobody else: nobody can approve it. (%s)",
			userRef(requester), what, esc(inc.ID))
	}
	return fmt.Sprintf("🙋 %s: approval requested by %s to %s. Approve or Reject on the card.%s (%s)",
		who, userRef(requester), what, until, esc(inc.ID))
}

// ApprovalReminderLines pages the approvers again for every request of inc still waiting, one
// line per step ("" when none waits): reminders carry it.
func ApprovalReminderLines(inc session.Incident, approvers []string, now time.Time) string {
	var lines []string
	for _, s := range session.Steps {
		st := inc.Step(s)
		if !st.ApprovalPending(now) {
			continue
		}
		who := approverMentions(approvers, st.RequestedBy)
		if who == "" {
			who = "nobody else is in APPROVERS"
		}
		lines = append(lines, fmt.Sprintf("🙋 %s: %s still awaits approval (asked by %s at %s, expires %s).",
			who, esc(string(s)), userRef(st.RequestedBy), clockAt(st.RequestedAt, now), clockAt(st.ApprovalExpires, now)))
	}
	return strings.Join(lines, "\n")
}

// postAuditReply posts one audit entry's thread reply: the approval page for a request (with
// reply_broadcast when APPROVAL_BROADCAST is set, so the channel sees it too), else the plain
// audit line.
func (a *App) postAuditReply(ctx context.Context, inc session.Incident, e session.AuditEntry) error {
	if e.Action == approvalRequested {
		// The sync read inc before the audit, so the request may be newer than inc: read again.
		if cur, err := a.store.Get(ctx, inc.ID); err == nil {
			inc = cur
		}
	}
	// A request answered before its entry reached the thread (the sync lagged) pages nobody.
	if e.Action != approvalRequested || !inc.Step(e.Step).ApprovalPending(a.now()) {
		_, err := a.api.post(ctx, inc.Channel, inc.MessageTS, AuditLine(e), nil)
		return err
	}
	text := ApprovalPageText(inc, e, a.cfg.Approvers, a.now())
	if _, err := a.api.reply(ctx, inc.Channel, inc.MessageTS, text, a.cfg.ApprovalBroadcast); err != nil {
		return err
	}
	a.m.ApprovalPages.WithLabelValues(string(e.Step)).Inc()
	return nil
}
