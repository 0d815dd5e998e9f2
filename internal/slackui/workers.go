package slackui

import (
	"context"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// job is one acknowledged envelope waiting for a worker.
type job struct {
	envelopeID string
	received   time.Time
	command    *slack.SlashCommand
	callback   *slack.InteractionCallback
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
