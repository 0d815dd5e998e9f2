package slackui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// Thread replies carry several audit lines when several are waiting (a burst, or lines held
// back while the channel's rate went to cards): at most threadBatchLines lines and
// threadBatchChars characters per reply, well inside Slack's 4,000-character guidance for a
// message's text (chat.postMessage truncates past 40,000).
const (
	threadBatchLines = 20
	threadBatchChars = 3500
)

// syncThread posts the incident's audit entries that are not in its thread yet, oldest first,
// batched into as few replies as the limits above allow (each batch mirrored to AUDIT_CHANNEL
// when set). The "posted up to seq" cursor in the store moves by compare-and-set under the
// incident's sync lock right after each reply, so replicas and restarts post every entry once.
// The one gap: a crash between a post and its cursor write posts that batch again
// (at-least-once for those lines), which is the better failure than losing an audit line.
// errPaced: the channel's rate goes to cards now; the lines stay for a later sync.
//
// auditSeq is the incident's newest audit entry as read with it before the lock: when the thread
// already has it, the audit is not read (an entry appended since marked the incident changed
// again, so the next sync posts it).
func (a *App) syncThread(ctx context.Context, l *session.SyncLock, inc session.Incident, auditSeq int64) error {
	posted := l.ThreadPosted()
	if auditSeq <= posted {
		a.threads.posted(inc.ID)
		return nil
	}
	entries, err := a.store.AuditAfter(ctx, inc.ID, posted)
	if err != nil {
		return fmt.Errorf("read audit: %w", err)
	}
	if d := a.threadHold(inc.ID, entries, posted); d > 0 {
		return heldError{d}
	}
	var lines []string
	var seqs []int64
	// flush posts the lines gathered so far, in as few replies as the batch limits allow.
	flush := func() error {
		for _, b := range batchLines(lines, threadBatchLines, threadBatchChars) {
			last := seqs[b.end-1]
			if err := a.postThreadBatch(ctx, l, inc, strings.Join(lines[b.start:b.end], "\n"), posted, last); err != nil {
				return err
			}
			posted = last
		}
		lines, seqs = lines[:0], seqs[:0]
		return nil
	}
	for _, e := range entries {
		if e.Seq <= posted {
			continue
		}
		if e.Action != approvalRequested {
			lines, seqs = append(lines, AuditLine(e)), append(seqs, e.Seq)
			continue
		}
		// An approval request is a page: a message of its own that mentions the approvers.
		if err := flush(); err != nil {
			return err
		}
		if err := l.Extend(ctx); err != nil {
			return err
		}
		if err := a.postAuditReply(ctx, inc, e); err != nil {
			return fmt.Errorf("post audit line %d: %w", e.Seq, err)
		}
		a.m.ThreadPosts.Inc()
		a.mirrorAudit(ctx, inc, AuditLine(e), e.Seq)
		if err := l.AdvanceThread(ctx, posted, e.Seq); err != nil {
			return err
		}
		posted = e.Seq
	}
	if err := flush(); err != nil {
		return err
	}
	a.threads.posted(inc.ID)
	return nil
}

// threadHold is how long the lines after posted should wait to be batched with what comes next
// (holds.go): 0 when none waits, one is an approval request, or shutdown began.
func (a *App) threadHold(id string, entries []session.AuditEntry, posted int64) time.Duration {
	newest := int64(0)
	for _, e := range entries {
		if e.Seq <= posted {
			continue
		}
		if e.Action == approvalRequested {
			return 0
		}
		newest = max(newest, e.Seq)
	}
	if newest == 0 || a.changes.flushing() {
		return 0
	}
	return a.threads.wait(id, newest)
}

// postThreadBatch posts audit lines as one thread reply, if the channel has a slot for it now
// (errPaced otherwise), and moves the thread cursor from posted to last.
func (a *App) postThreadBatch(ctx context.Context, l *session.SyncLock, inc session.Incident, text string, posted, last int64) error {
	if err := l.Extend(ctx); err != nil {
		return err
	}
	if _, err := a.api.threadLine(ctx, inc.Channel, inc.MessageTS, text); err != nil {
		if errors.Is(err, errPaced) {
			return err
		}
		return fmt.Errorf("post audit lines to %d: %w", last, err)
	}
	a.m.ThreadPosts.Inc()
	a.mirrorAudit(ctx, inc, text, last)
	return l.AdvanceThread(ctx, posted, last)
}

// mirrorAudit copies thread lines to AUDIT_CHANNEL when it is set and not the card's channel. A
// failure is logged only: the thread has the lines.
func (a *App) mirrorAudit(ctx context.Context, inc session.Incident, text string, seq int64) {
	if a.cfg.AuditChannel == "" || a.cfg.AuditChannel == inc.Channel {
		return
	}
	if _, err := a.api.post(ctx, a.cfg.AuditChannel, "", text, nil); err != nil {
		a.log.Warn().Err(err).Str("incident", inc.ID).Int64("seq", seq).Msg("mirror audit lines to AUDIT_CHANNEL")
	}
}

// batch is lines[start:end].
type batch struct{ start, end int }

// batchLines splits lines, in order, into batches of at most maxLines lines whose joined length
// (with one newline between lines) stays within maxChars; a line longer than maxChars alone is a
// batch of its own.
func batchLines(lines []string, maxLines, maxChars int) []batch {
	var out []batch
	start, size := 0, 0
	for i, ln := range lines {
		n := len(ln)
		if i > start {
			n++ // the newline before it
		}
		if i > start && (i-start >= maxLines || size+n > maxChars) {
			out = append(out, batch{start, i})
			start, size, n = i, 0, len(ln)
		}
		size += n
	}
	if start < len(lines) {
		out = append(out, batch{start, len(lines)})
	}
	return out
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
