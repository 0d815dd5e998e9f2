package slackui

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// queue holds acknowledged work until a worker runs it: at most size jobs wait, the workers drain
// them oldest first, and the jobs of one lane (one incident) run one at a time and in order while
// other lanes run in parallel, so two clicks on one card never race each other for a worker.
// A lane whose next job is a Deny click (job.urgent) is taken before the other ready lanes: under
// a wave the opens of new incidents would otherwise hold every worker while someone's Deny
// waits, and a Deny is a user someone asked to contain, an open only a card still to post
// (issue 9 item 5, "containment is never queued behind cosmetics", on the worker side).
//
// Hand-written, because neither the standard library nor a well-kept package has a bounded queue
// with per-key serialization (a semaphore or errgroup bounds concurrency, not order per key): a
// mutex, a condition variable and a FIFO of the lanes that have a job ready.
type queue struct {
	size int
	m    *Metrics
	wg   sync.WaitGroup

	mu      sync.Mutex
	cond    *sync.Cond
	lanes   map[string]*lane // every lane with a job waiting or running
	ready   [2][]string      // lanes with a job waiting and none running, oldest first: [0] urgent
	waiting int
	workers int
	closed  bool
	anon    uint64        // names a lane of its own for each job without one
	avg     time.Duration // moving average of a job's run time, for "try again in N s"
}

type lane struct {
	jobs    []job
	running bool
}

func newQueue(size int, m *Metrics) *queue {
	q := &queue{size: size, m: m, lanes: map[string]*lane{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// start runs n workers; each runs fn for every job under ctx until the queue is closed and empty.
func (q *queue) start(ctx context.Context, n int, fn func(context.Context, job)) {
	q.mu.Lock()
	q.workers += n
	q.mu.Unlock()
	for range n {
		q.wg.Go(func() { q.worker(ctx, fn) })
	}
}

// worker runs jobs until the queue is closed and empty. A job that detaches (detachJob) gives
// the worker back when it returns, while its lane stays busy until the job's done.
func (q *queue) worker(ctx context.Context, fn func(context.Context, job)) {
	for {
		name, ln, j, ok := q.take()
		if !ok {
			return
		}
		rj := &runningJob{q: q, name: name, ln: ln, began: time.Now()}
		q.m.WorkersBusy.Inc()
		fn(context.WithValue(ctx, runningKey{}, rj), j)
		q.m.WorkersBusy.Dec()
		if rj.done == nil {
			q.finish(name, ln, time.Since(rj.began))
		}
	}
}

// runningJob is the job a worker runs, for detachJob.
type runningJob struct {
	q     *queue
	name  string
	ln    *lane
	began time.Time
	done  func() // set by detach, on the job's goroutine
}

type runningKey struct{}

// inQueueJob reports whether ctx is a queue job's (detachJob may detach it).
func inQueueJob(ctx context.Context) bool {
	_, ok := ctx.Value(runningKey{}).(*runningJob)
	return ok
}

// detachJob lets the job that runs ctx return to its worker while its work goes on elsewhere: the
// job's lane stays busy until done is called (one job per incident at a time, in order, and
// the queue's drain waits for it), but the worker takes other lanes' jobs at once. Deny calls it
// at "contained": its live-call work then waits for other incidents' PBX requests
// (netsapiens.FollowUp) as a closure in the engine's follow-up queue (RunOptions.Continue), not
// on the worker, which under a burst would keep the next incident's Deny click waiting, nor in
// a goroutine parked per deny. It must be called on the job's goroutine; done may be called
// from any, once or more. Outside a queue job done does nothing.
func detachJob(ctx context.Context) (done func()) {
	rj, ok := ctx.Value(runningKey{}).(*runningJob)
	if !ok {
		return func() {}
	}
	if rj.done == nil {
		rj.q.wg.Add(1) // while this worker counts in wg: the drain's Wait sees it
		var once sync.Once
		rj.done = func() {
			once.Do(func() {
				rj.q.finish(rj.name, rj.ln, time.Since(rj.began))
				rj.q.wg.Done()
			})
		}
	}
	return rj.done
}

// submit queues j in lane key ("" = a lane of its own) and reports false, queuing nothing, when
// size jobs are waiting already or the queue is closed. It never blocks.
func (q *queue) submit(key string, j job) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.waiting >= q.size {
		return false
	}
	if key == "" {
		q.anon++
		key = "\x00" + strconv.FormatUint(q.anon, 36) // no lane key starts with NUL
	}
	ln := q.lanes[key]
	if ln == nil {
		ln = &lane{}
		q.lanes[key] = ln
	}
	ln.jobs = append(ln.jobs, j)
	q.waiting++
	q.m.QueueDepth.Set(float64(q.waiting))
	if !ln.running && len(ln.jobs) == 1 {
		q.markReady(key, j)
	}
	return true
}

// markReady puts lane key, whose next job is next, on its ready list and wakes a worker.
func (q *queue) markReady(key string, next job) {
	if next.urgent() {
		q.ready[0] = append(q.ready[0], key)
	} else {
		q.ready[1] = append(q.ready[1], key)
	}
	q.cond.Signal()
}

// take waits for a ready lane (an urgent one first) and starts its oldest job; false when the queue is closed and
// nothing waits any more.
func (q *queue) take() (string, *lane, job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.ready[0])+len(q.ready[1]) == 0 {
		if q.closed && q.waiting == 0 {
			return "", nil, job{}, false
		}
		q.cond.Wait()
	}
	r := &q.ready[0]
	if len(*r) == 0 {
		r = &q.ready[1]
	}
	name := (*r)[0]
	(*r)[0] = ""
	*r = (*r)[1:]
	ln := q.lanes[name]
	j := ln.jobs[0]
	ln.jobs[0] = job{}
	ln.jobs = ln.jobs[1:]
	ln.running = true
	q.waiting--
	q.m.QueueDepth.Set(float64(q.waiting))
	if q.closed && q.waiting == 0 {
		q.cond.Broadcast() // idle workers may stop
	}
	return name, ln, j, true
}

// finish ends a lane's running job: its next job becomes ready, or the lane goes away.
func (q *queue) finish(name string, ln *lane, took time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	ln.running = false
	if len(ln.jobs) > 0 {
		q.markReady(name, ln.jobs[0])
	} else {
		delete(q.lanes, name)
	}
	if q.avg == 0 {
		q.avg = took
	} else {
		q.avg += (took - q.avg) / 8
	}
}

// retryAfter is when a retry may find room: the waiting jobs' run time spread over the workers,
// rounded up to whole seconds, 1 s to 60 s (1 s per job until one has finished).
func (q *queue) retryAfter() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	per := q.avg
	if per == 0 {
		per = time.Second
	}
	d := per * time.Duration(q.waiting) / time.Duration(max(q.workers, 1))
	return min(max(d.Truncate(time.Second)+time.Second, time.Second), time.Minute)
}

// close stops taking jobs; the workers go on with what waits.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// abandon takes every job still waiting out of the queue, oldest first within each lane (for a
// shutdown whose grace ended: they are answered instead of run).
func (q *queue) abandon() []job {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []job
	for _, name := range append(q.ready[0], q.ready[1]...) {
		out = append(out, q.lanes[name].jobs...)
		delete(q.lanes, name)
	}
	for _, ln := range q.lanes {
		if ln.running {
			out = append(out, ln.jobs...) // a running lane is not in ready
			ln.jobs = nil
		}
	}
	q.ready = [2][]string{}
	q.waiting = 0
	q.m.QueueDepth.Set(0)
	q.cond.Broadcast()
	return out
}

// wait returns when every worker has stopped, or false when ctx ends first.
func (q *queue) wait(ctx context.Context) bool {
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
