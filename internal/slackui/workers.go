package slackui

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// job is one acknowledged envelope waiting for a worker.
type job struct {
	envelopeID string
	received   time.Time
	command    *slack.SlashCommand
	callback   *slack.InteractionCallback
	audit      *session.AuditEntry // a refusal answered in the ack, still to be recorded
}

// pool is a fixed number of workers behind a bounded queue. Submit never blocks: when every
// worker is busy and the queue is full the caller answers "busy, try again" instead of
// dropping the click or stalling the Socket Mode dispatcher (which must keep acking).
type pool struct {
	queue chan job
	wg    sync.WaitGroup
	m     *Metrics
}

func newPool(workers int, m *Metrics) *pool {
	return &pool{queue: make(chan job, workers), m: m}
}

// start runs n workers; each runs fn for every job under ctx until the queue is closed.
func (p *pool) start(ctx context.Context, n int, fn func(context.Context, job)) {
	for range n {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for j := range p.queue {
				p.m.WorkersBusy.Inc()
				fn(ctx, j)
				p.m.WorkersBusy.Dec()
			}
		}()
	}
}

// submit queues j and reports false when the pool is full.
func (p *pool) submit(j job) bool {
	select {
	case p.queue <- j:
		return true
	default:
		p.m.PoolRejections.Inc()
		return false
	}
}

// close stops taking jobs; the workers finish what is queued.
func (p *pool) close() { close(p.queue) }

// wait returns when every worker has finished, or false when ctx ends first.
func (p *pool) wait(ctx context.Context) bool {
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// jobTimeout bounds one command or click, step run included.
const jobTimeout = 5 * time.Minute

// work runs one acknowledged envelope on a pool worker.
func (a *App) work(ctx context.Context, j job) {
	ctx, cancel := context.WithTimeout(ctx, jobTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			// The value may be anything; log its type only, never its contents (could hold a secret).
			a.log.Error().Str("panic", fmt.Sprintf("%T", r)).Str("stack", string(debug.Stack())).Msg("job panicked")
		}
	}()
	if first, err := a.store.FirstDelivery(ctx, "env:"+j.envelopeID); err != nil {
		a.log.Warn().Err(err).Msg("dedupe envelope")
	} else if !first {
		a.m.Duplicates.WithLabelValues("envelope").Inc()
		a.log.Info().Str("envelope", j.envelopeID).Msg("duplicate envelope ignored")
		return
	}
	switch {
	case j.command != nil:
		a.command(ctx, j.command)
	case j.callback != nil:
		a.action(ctx, j.callback)
	case j.audit != nil:
		a.auditGlobal(ctx, *j.audit)
	}
}

// logErr logs an engine error: internal ones with the chain, expected ones by kind only.
func (a *App) logErr(err error, incident, what string) {
	kind := remediate.Kind(err)
	ev := a.log.Info()
	if kind == "internal" || kind == "" {
		ev = a.log.Warn().Err(err)
	}
	ev.Str("incident", incident).Str("kind", kind).Msg(what)
}
