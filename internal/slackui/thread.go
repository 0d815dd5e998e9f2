package slackui

import (
	"context"
	"fmt"
	"strings"

	"github.com/compromised-responder/bot/internal/session"
)

// syncThread posts the incident's audit entries that are not in its thread yet, oldest first,
// each as one reply (and mirrored to AUDIT_CHANNEL when set). The "posted up to seq" cursor in
// the store moves by compare-and-set under the incident's sync lock right after each post, so
// replicas and restarts post every entry once. The one gap: a crash between a post and its
// cursor write posts that entry again (at-least-once for that single line), which is the
// better failure than losing an audit line.
func (a *App) syncThread(ctx context.Context, l *session.SyncLock, inc session.Incident) error {
	posted, err := l.ThreadPosted(ctx)
	if err != nil {
		return err
	}
	entries, err := a.store.Audit(ctx, inc.ID)
	if err != nil {
		return fmt.Errorf("read audit: %w", err)
	}
	for _, e := range entries {
		if e.Seq <= posted {
			continue
		}
		if err := l.Extend(ctx); err != nil {
			return err
		}
		line := AuditLine(e)
		if err := a.postAuditReply(ctx, inc, e); err != nil {
			return fmt.Errorf("post audit line %d: %w", e.Seq, err)
		}
		a.m.ThreadPosts.Inc()
		if a.cfg.AuditChannel != "" && a.cfg.AuditChannel != inc.Channel {
			if _, err := a.api.post(ctx, a.cfg.AuditChannel, "", line, nil); err != nil {
				a.log.Warn().Err(err).Str("incident", inc.ID).Int64("seq", e.Seq).Msg("mirror audit line to AUDIT_CHANNEL")
			}
		}
		if err := l.AdvanceThread(ctx, posted, e.Seq); err != nil {
			return err
		}
		posted = e.Seq
	}
	return nil
}

// auditGlobal records an event that belongs to no incident (a refused command) in the global
// chain, the log and AUDIT_CHANNEL. It never fails the caller: the refusal stands regardless.
func (a *App) auditGlobal(ctx context.Context, e session.AuditEntry) {
	stored, err := a.store.Append(ctx, e)
	if err != nil {
		a.log.Warn().Err(err).Str("action", e.Action).Msg("append audit entry")
		stored = e
	}
	a.log.Info().Str("actor", e.Actor).Str("action", e.Action).Str("detail", e.Detail).Msg("audit")
	if a.cfg.AuditChannel != "" {
		if _, err := a.api.post(ctx, a.cfg.AuditChannel, "", AuditLine(stored), nil); err != nil {
			a.log.Warn().Err(err).Msg("post audit line to AUDIT_CHANNEL")
		}
	}
}

// auditIncident records an event of an incident (its thread shows it after the next sync).
func (a *App) auditIncident(ctx context.Context, e session.AuditEntry) {
	if _, err := a.store.Append(ctx, e); err != nil {
		a.log.Warn().Err(err).Str("incident", e.IncidentID).Str("action", e.Action).Msg("append audit entry")
		return
	}
	a.log.Info().Str("incident", e.IncidentID).Str("actor", e.Actor).Str("action", e.Action).Msg("audit")
	a.changes.Changed(ctx, e.IncidentID)
}

// AuditLine renders one audit entry as a thread reply: actor, what happened, step, before → after,
// detail. Audit entries never hold secrets; everything but the actor's mention is escaped.
func AuditLine(e session.AuditEntry) string {
	var b strings.Builder
	b.WriteString(userRef(e.Actor))
	b.WriteString(" · ")
	action := strings.Fields(strings.NewReplacer(".", " ", "_", " ").Replace(e.Action))
	if e.Step != "" && !strings.Contains(e.Action, string(e.Step)) {
		action = append([]string{string(e.Step)}, action...)
	}
	b.WriteString(esc(short(strings.Join(action, " "), 100)))
	if e.Before != "" || e.After != "" {
		fmt.Fprintf(&b, " · %s → %s", orDash(esc(short(e.Before, 200))), orDash(esc(short(e.After, 200))))
	}
	if e.Detail != "" {
		b.WriteString(" · " + esc(short(e.Detail, 500)))
	}
	if e.IncidentID != "" {
		b.WriteString(" · " + esc(short(e.IncidentID, 20)))
	}
	return b.String()
}
