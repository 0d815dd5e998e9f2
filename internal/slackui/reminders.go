package slackui

import (
	"context"
	"fmt"
	"time"

	"github.com/compromised-responder/bot/internal/lockdown"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// maintain is the periodic pass every replica runs (every ReconcileEvery, first at once):
// Reconcile resumes interrupted steps (and their credentials go to the requester), every open
// incident is synced (a backstop for a lost notification, a sync that lost a race, or expiring
// approval requests), and due reminders are posted, one per incident across replicas.
func (a *App) maintain(ctx context.Context) {
	t := time.NewTicker(a.cfg.reconcileEvery())
	defer t.Stop()
	for {
		// Keep the user groups of RESPONDERS and APPROVERS cached, so the dispatcher can answer
		// a refusal in the ack and a click is authorized without waiting on Slack.
		a.auth.refresh(ctx, 2*a.cfg.reconcileEvery(), a.cfg.Responders, a.cfg.Approvers)
		a.maintainOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *App) maintainOnce(ctx context.Context) {
	rs, err := a.eng.Reconcile(ctx)
	if err != nil && ctx.Err() == nil {
		a.log.Warn().Err(err).Msg("reconcile")
	}
	for _, r := range rs {
		a.m.ReconcileResumed.Inc()
		ev := a.log.Info()
		if r.Err != nil {
			ev = a.log.Warn().Str("kind", string(remediate.KindOf(r.Err)))
		}
		ev.Str("incident", r.IncidentID).Str("step", string(r.Step)).Bool("failed", r.Failed).Msg("reconciled step")
		if len(r.Secrets) > 0 {
			a.deliverSecrets(ctx, r.Incident, r.RequestedBy, r.Step, r.Secrets)
		}
		a.changes.Changed(ctx, r.IncidentID)
	}
	a.postPendingCards(ctx)
	open, err := a.store.ListOpen(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("list open incidents")
		}
		return
	}
	a.postOrphanCards(ctx, open)
	a.postOrphanLockdownCards(ctx)
	for _, inc := range open {
		a.changes.Changed(ctx, inc.ID)
		a.remind(ctx, inc)
	}
	a.syncRecent(ctx)
	a.postHead(ctx)
}

// recentWindow is how many global audit entries a fresh process looks back at.
const recentWindow = 500

// syncRecent syncs every incident and lockdown with a new entry in the global audit chain since
// the last pass, closed ones included (the open lists miss one whose closing sync was lost to a
// crash). A new process starts recentWindow entries back from the head.
func (a *App) syncRecent(ctx context.Context) {
	if a.globalSeq == 0 {
		seq, _, err := a.store.AuditHead(ctx, "")
		if err != nil {
			return
		}
		a.globalSeq = max(0, seq-recentWindow)
	}
	entries, err := a.store.GlobalAudit(ctx, a.globalSeq, 2*recentWindow)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("read the global audit chain")
		}
		return
	}
	for _, e := range entries {
		if e.IncidentID != "" {
			a.changes.Changed(ctx, e.IncidentID)
		} else if id, ok := lockdown.OfAudit(e); ok {
			a.changes.Changed(ctx, id)
		}
		a.globalSeq = max(a.globalSeq, e.Seq)
	}
}

// postHead posts the global audit chain's head (seq and MAC) to AUDIT_CHANNEL at most every
// HeadEvery and only when it moved, from one replica (the store's throttle), so a later rewrite or
// truncation of the chain in Redis contradicts a record kept outside it.
func (a *App) postHead(ctx context.Context) {
	if a.cfg.AuditChannel == "" {
		return
	}
	every := a.cfg.HeadEvery
	if every <= 0 {
		every = 10 * time.Minute
	}
	seq, mac, err := a.store.AuditHead(ctx, "")
	if err != nil || seq == 0 {
		return
	}
	ok, err := a.store.ClaimHeadPost(ctx, seq, every)
	if err != nil || !ok {
		return
	}
	text := fmt.Sprintf("🔗 Audit chain head: seq %d · MAC `%s` · %s", seq, codeSafe(short(mac, 100)), clockAt(a.now(), time.Time{}))
	if _, err := a.api.post(ctx, a.cfg.AuditChannel, "", text, nil); err != nil {
		a.log.Warn().Err(err).Msg("post audit chain head")
		return
	}
	_ = a.store.HeadPosted(ctx, seq)
}

// remind posts the Deny All reminder into the incident's thread when it is due; ClaimReminder
// lets exactly one replica post each due reminder.
func (a *App) remind(ctx context.Context, inc session.Incident) {
	if inc.MessageTS == "" || a.cfg.RemindAfter <= 0 {
		return
	}
	if !inc.Step(session.StepDeny).Status.Finished() {
		return
	}
	ok, cur, err := a.store.ClaimReminder(ctx, inc.ID, a.cfg.RemindAfter, a.cfg.RemindEvery)
	if err != nil {
		a.log.Warn().Err(err).Str("incident", inc.ID).Msg("claim reminder")
		return
	}
	if !ok {
		return
	}
	text := ReminderText(cur, a.now())
	pages := ApprovalReminderLines(cur, a.cfg.Approvers, a.now())
	if pages != "" {
		text += "\n" + pages
	}
	if _, err := a.api.post(ctx, cur.Channel, cur.MessageTS, text, nil); err != nil {
		a.log.Warn().Err(err).Str("incident", inc.ID).Msg("post reminder")
		return
	}
	a.m.RemindersPosted.Inc()
	for _, s := range session.Steps {
		if cur.Step(s).ApprovalPending(a.now()) {
			a.m.ApprovalPages.WithLabelValues(string(s)).Inc()
		}
	}
}

// ReminderText is the thread reminder for an incident whose user is still in the deny policy.
func ReminderText(inc session.Incident, now time.Time) string {
	since := inc.CreatedAt
	if d := inc.Step(session.StepDeny); !d.FinishedAt.IsZero() {
		since = d.FinishedAt
	}
	deny := inc.DenyPolicy
	if deny == "" {
		deny = remediate.DefaultDenyPolicy
	}
	was := "the original is unknown, so Restore asks which policy to set"
	if o := inc.Original; o != nil && o.Known {
		was = "it was " + esc(short(o.Policy, 100))
	}
	return fmt.Sprintf("⏰ %s %s has been in %s for %s (since %s). When the devices and credentials are safe, "+
		"restore the dial permission (%s), or abort the incident to keep the user blocked. (%s)",
		userRef(inc.OpenedBy), esc(inc.Key()), esc(short(deny, 100)), age(since, now), clockAt(since, now), was, esc(inc.ID))
}
