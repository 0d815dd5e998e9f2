package slackui

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// job is one acknowledged envelope waiting for a worker (queue.go).
type job struct {
	envelopeID string
	command    *slack.SlashCommand
	callback   *slack.InteractionCallback
	view       *submission         // a modal's submission, checked before its ack
	audit      *session.AuditEntry // a refusal answered in the ack, still to be recorded
}

// urgent reports whether j is a click of a card's Deny (or of its Approve, for a Deny waiting
// for approval): the queue takes it before other work (queue.go).
func (j job) urgent() bool {
	if j.callback == nil {
		return false
	}
	acts := ActionsFrom(*j.callback)
	return len(acts) > 0 && acts[0].Step == session.StepDeny && (acts[0].Kind == ActionStep || acts[0].Kind == ActionApprove)
}

// lane is the queue lane of a job: the incident a click acts on, or the user an open names, so
// one incident's work runs one job at a time and in order; "" (a lane of its own) for the rest.
func (j job) lane() string {
	switch {
	case j.view != nil:
		return "inc:" + j.view.inc.ID
	case j.callback != nil:
		if acts := ActionsFrom(*j.callback); len(acts) > 0 && acts[0].IncidentID != "" {
			return "inc:" + acts[0].IncidentID
		}
	case j.command != nil:
		if cmd := ParseCommand(j.command.Text); cmd.Kind == KindOpen {
			return "open:" + cmd.User + "@" + cmd.Domain
		}
	}
	return ""
}

// jobTimeout bounds one command or click; a step still running then stops at its next
// recorded boundary (remediate), and deliverTimeout bounds delivering what it made after it.
const (
	jobTimeout     = 5 * time.Minute
	deliverTimeout = 30 * time.Second
)

// work runs one acknowledged envelope on a queue worker.
func (a *App) work(ctx context.Context, j job) {
	ctx, cancel := context.WithTimeout(ctx, jobTimeout)
	defer cancel()
	ctx = a.jobLogger(j).WithContext(ctx)
	defer func() {
		if r := recover(); r != nil {
			// The value may be anything; log its type only, never its contents (could hold a secret).
			a.logger(ctx).Error().Str("panic", fmt.Sprintf("%T", r)).Str("stack", string(debug.Stack())).Msg("job panicked")
		}
	}()
	// A click's own delivery key goes with its envelope's: one round trip, one fsync, before its
	// step starts.
	keys := []string{"env:" + j.envelopeID}
	click := clickKey(j.callback)
	if click != "" {
		keys = append(keys, click)
	}
	clickAgain := false
	if firsts, err := a.store.FirstDeliveries(ctx, keys...); err != nil {
		a.logger(ctx).Warn().Err(err).Msg("dedupe envelope")
	} else if !firsts[0] {
		a.m.Duplicates.WithLabelValues("envelope").Inc()
		a.logger(ctx).Info().Msg("duplicate envelope ignored")
		return
	} else if click != "" {
		clickAgain = !firsts[1]
	}
	switch {
	case j.command != nil:
		a.command(ctx, j.command)
	case j.view != nil:
		viewRoutes[j.view.cb.View.CallbackID].handle(a, ctx, *j.view)
	case j.callback != nil:
		a.action(ctx, j.callback, clickAgain)
	case j.audit != nil:
		a.auditGlobal(ctx, *j.audit)
	}
}

// jobLogger is the App's logger with what the job is about, so every line a job writes names
// its envelope, actor, incident and step (the incident and step from the button's value and
// action_id; an open names its user instead, its incident ID does not exist yet).
func (a *App) jobLogger(j job) zerolog.Logger {
	c := a.log.With().Str("envelope", j.envelopeID)
	switch {
	case j.view != nil:
		c = c.Str("actor", j.view.user).Str("incident", j.view.inc.ID).Str("view", j.view.cb.View.CallbackID)
	case j.callback != nil:
		c = c.Str("actor", j.callback.User.ID)
		if acts := ActionsFrom(*j.callback); len(acts) > 0 {
			c = c.Str("incident", acts[0].IncidentID).Str("action", string(acts[0].Kind))
			if acts[0].Step != "" {
				c = c.Str("step", string(acts[0].Step))
			}
		}
	case j.command != nil:
		c = c.Str("actor", j.command.UserID)
		if cmd := ParseCommand(j.command.Text); cmd.Kind == KindOpen {
			c = c.Str("user", cmd.User+"@"+cmd.Domain)
		}
	case j.audit != nil:
		c = c.Str("actor", j.audit.Actor).Str("incident", j.audit.IncidentID)
	}
	return c.Logger()
}

// logger is the job's logger (jobLogger) when ctx carries one, else the App's.
func (a *App) logger(ctx context.Context) *zerolog.Logger {
	if l := zerolog.Ctx(ctx); l.GetLevel() != zerolog.Disabled {
		return l
	}
	return &a.log
}

// logErr logs an engine error: internal ones with the chain, expected ones by kind only.
func (a *App) logErr(ctx context.Context, err error, incident, what string) {
	kind := remediate.KindOf(err)
	log := a.logger(ctx)
	ev := log.Info()
	if kind == remediate.KindInternal || kind == remediate.KindNone {
		ev = log.Warn().Err(err)
	}
	ev.Str("incident", incident).Str("kind", string(kind)).Msg(what)
}
