package slackui

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/session"
)

// Changes collects the IDs of incidents that changed, for the card and thread sync. It is the
// engine's Notifier (remediate.Config.Notifier): Changed never blocks, and several changes of one
// incident before its sync runs collapse into one sync of the newest version.
type Changes struct {
	mu      sync.Mutex
	queue   []string
	pending map[string]bool
	running map[string]bool
	held    map[string]*time.Timer // syncs that run again later (holds.go)
	flush   bool                   // shutdown: nothing is held any more
	wake    chan struct{}
}

// NewChanges returns an empty change set.
func NewChanges() *Changes {
	return &Changes{pending: map[string]bool{}, running: map[string]bool{}, held: map[string]*time.Timer{},
		wake: make(chan struct{}, 1)}
}

// Changed marks an incident for a sync. It never blocks and never fails.
func (c *Changes) Changed(_ context.Context, incidentID string) {
	if incidentID == "" {
		return
	}
	c.mu.Lock()
	c.markLocked(incidentID)
	c.mu.Unlock()
	c.signal()
}

func (c *Changes) markLocked(id string) {
	if !c.pending[id] {
		c.pending[id] = true
		c.queue = append(c.queue, id)
	}
}

func (c *Changes) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// next returns a pending incident that no other sync worker of this process is syncing, and marks
// it running; it blocks until there is one or ctx ends.
func (c *Changes) next(ctx context.Context) (string, bool) {
	for {
		c.mu.Lock()
		for i, id := range c.queue {
			if c.running[id] {
				continue
			}
			c.queue = append(c.queue[:i:i], c.queue[i+1:]...)
			delete(c.pending, id)
			c.running[id] = true
			more := len(c.queue) > 0
			c.mu.Unlock()
			if more {
				c.signal() // let another worker pick the rest
			}
			return id, true
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", false
		case <-c.wake:
		}
	}
}

// done ends a sync of id; a change that arrived meanwhile is still pending and runs next.
func (c *Changes) done(id string) {
	c.mu.Lock()
	delete(c.running, id)
	more := len(c.queue) > 0
	c.mu.Unlock()
	if more {
		c.signal()
	}
}

// pendingFor reports whether id changed again since its sync began (a sync of it is pending).
func (c *Changes) pendingFor(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending[id]
}

// idle reports whether nothing is pending or running.
func (c *Changes) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue) == 0 && len(c.running) == 0 && len(c.held) == 0
}

// syncLoop runs one sync worker until ctx ends.
func (a *App) syncLoop(ctx context.Context) {
	for {
		id, ok := a.changes.next(ctx)
		if !ok {
			return
		}
		retry, err := a.syncAny(ctx, id)
		delay := a.cfg.syncRetry()
		if errors.Is(err, errPaced) {
			// The thread yielded its channel to cards: its lines wait, and go out together.
			err, delay = nil, pacedRetry
		}
		if d, ok := heldFor(err); ok {
			// The thread lines wait for the incident to go quiet (holds.go).
			a.changes.done(id)
			a.changes.hold(ctx, id, d)
			continue
		}
		if err != nil && ctx.Err() == nil {
			a.log.Warn().Err(err).Str("incident", id).Msg("card/thread sync")
		}
		a.changes.done(id)
		if retry && ctx.Err() == nil {
			// Another replica holds the lock (or Slack failed, or the channel is busy with cards):
			// try again shortly; the periodic pass is the backstop.
			time.AfterFunc(delay, func() { a.changes.Changed(ctx, id) })
		}
	}
}

// cardStamp orders renders of an incident: its version, and within one version how many
// approval requests have expired since (time alone changes what the card must show). It only
// grows, so a render is written only if it is newer than the one on the card.
func cardStamp(inc session.Incident, now time.Time) int64 {
	expired := int64(0)
	for _, s := range session.Steps {
		st := inc.Step(s)
		if st.Status == session.StatusAwaiting && !st.ApprovalExpires.IsZero() && now.After(st.ApprovalExpires) {
			expired++
		}
	}
	return inc.Version*8 + expired
}

// syncIncident brings one incident's card and thread up to date under its lock: the card shows
// the newest stored version (never an older one), and every audit entry not yet posted is posted
// once, in seq order. retry says the sync could not run now and should be tried again.
//
// The per-incident sync lock (session.SyncLock) serialises card updates and thread posts across
// replicas, and guards the two cursors: the newest rendered card stamp and the last audit seq
// posted.
//
// The incident is read before the lock with the two cursors and its audit head (one round trip,
// no write), and the sync ends there when there is nothing to do: no card of its own (not posted
// yet, or a lockdown member, whose card is the lockdown's), the card already shows this version
// and the thread every entry, or a card update held back (holds.go). Taking and releasing the
// lock are two fsynced Redis writes: ≈ 11 per member of a lockdown, which competed with its
// deny's writes, and two per open incident at every maintenance pass.
func (a *App) syncIncident(ctx context.Context, id string) (retry bool, err error) {
	inc, view, err := a.store.GetForSync(ctx, id)
	if err == nil && inc.Lockdown != "" {
		// A member's card is its lockdown's: a change outside a fan-out (its evidence read, a
		// gate check) shows there too, coalesced like every lockdown card update.
		a.changes.Changed(ctx, inc.Lockdown)
	}
	if retry, done, err := noCard(inc, err); done {
		return retry, err
	}
	// The cursors only grow, and only under the lock: read before it, they can only be behind,
	// so "nothing to do" is never wrong; what there is to do is decided again under the lock.
	cardNew := cardStamp(inc, a.now()) > view.CardStamp
	if !cardNew && view.ThreadPosted >= view.AuditSeq {
		return false, nil
	}
	if cardNew {
		if err := a.cardHeld(inc); err != nil {
			return false, err
		}
	} else if a.api.p.cardsWaiting(inc.Channel) {
		// Only thread lines to post, and cards wait for the channel: tryReply would refuse them
		// after the lock and the audit read. Retried every pacedRetry, that was two fsynced
		// writes and a decode of the incident and of every waiting line, each second, for each
		// incident of a wave whose card had posted. They wait instead for about as long as the
		// channel's cards take (a change of the incident meanwhile syncs it as usual).
		return false, heldError{min(max(a.api.p.backlog(inc.Channel), pacedRetry), maxPacedHold)}
	}
	l, ok, err := a.store.TrySyncLock(ctx, id)
	if err != nil {
		return true, err
	}
	if !ok {
		return true, nil
	}
	defer l.Release(context.WithoutCancel(ctx))

	// inc, read just before the lock, is not read again under it: a change stored since marked
	// the incident changed again (in this process through the Notifier; another replica's sync
	// found the lock taken and retries), so it is synced after this one, and the card's render
	// reads the newest version if one arrived. A second read was a round trip and a decode per sync.
	if err := a.syncCard(ctx, l, inc); err != nil {
		if errors.Is(err, session.ErrSyncLockLost) {
			return false, nil
		}
		return true, err
	}
	if err := a.syncThread(ctx, l, inc, view.AuditSeq); err != nil {
		if errors.Is(err, session.ErrSyncLockLost) {
			return false, nil
		}
		return true, err
	}
	return false, nil
}

// noCard says whether a sync of inc (read with err) ends here: discarded, unreadable, or no card.
func noCard(inc session.Incident, err error) (retry, done bool, _ error) {
	switch {
	case errors.Is(err, session.ErrNotFound):
		return false, true, nil // discarded
	case err != nil:
		return true, true, fmt.Errorf("read incident: %w", err)
	case inc.Channel == "" || inc.MessageTS == "":
		return false, true, nil // no card yet: the open handler posts it and syncs again
	}
	return false, false, nil
}

// syncCard updates the card when the newest version is not on it yet (a held update never gets
// here: syncIncident asks cardHeld before the lock). The update waits for the
// pacer's chat.update slot first and renders after the wait, from the incident as stored then
// when a change of it arrived meanwhile (in this process: the Changes set marked it), so every
// change that arrived while it waited is in the one update (the newest version wins; the
// Changes set keeps one sync, so one update, in flight per card in this process, and the sync
// lock across replicas). A change stored by another replica is synced by that replica's sync,
// which finds this lock taken and retries.
func (a *App) syncCard(ctx context.Context, l *session.SyncLock, inc session.Incident) error {
	if cardStamp(inc, a.now()) <= l.CardStamp() {
		return nil
	}
	var stamp int64
	render := func(ctx context.Context) (string, []slack.Block, error) {
		if err := l.Extend(ctx); err != nil {
			return "", nil, err
		}
		newest := inc
		if a.changes.pendingFor(inc.ID) {
			var err error
			if newest, err = a.store.Get(ctx, inc.ID); err != nil {
				return "", nil, fmt.Errorf("read incident: %w", err)
			}
		}
		now := a.now()
		stamp = cardStamp(newest, now)
		text, blocks := Card(newest, a.cardOptions(now))
		return text, blocks, nil
	}
	if err := a.api.update(ctx, inc.Channel, inc.MessageTS, render); err != nil {
		return fmt.Errorf("update card: %w", err)
	}
	a.m.CardUpdates.Inc()
	a.cardHolds.shown(inc.ID)
	return l.RaiseCardStamp(ctx, stamp)
}

// cardHeld is a heldError when inc's card update should wait for its running step to reach
// something (holds.go), nil otherwise.
func (a *App) cardHeld(inc session.Incident) error {
	if run := runningBlank(inc); run != "" && !a.changes.flushing() {
		if d := a.cardHolds.wait(inc.ID, run); d > 0 {
			return heldError{d}
		}
	}
	return nil
}

// cardOptions are the render options from the configuration.
func (a *App) cardOptions(now time.Time) CardOptions {
	return CardOptions{Now: now, ApprovalSteps: a.approvalSteps, Approvers: a.approversText,
		DenyPolicy: a.cfg.DenyPolicy, ResetEmail: a.cfg.ResetEmail, PortalPassword: a.cfg.PortalPassword}
}
