package slackui

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/session"
)

// LockdownCardEvery is the least time between two updates of one lockdown card: a fan-out over
// hundreds of members changes it hundreds of times, and the card shows the newest state at most
// this often (Slack's chat.update is Tier 3, about 50 a minute).
const LockdownCardEvery = 2 * time.Second

// lockdownCards remembers, per lockdown card in this process, when it was last updated and what
// it showed, so that updates are coalesced (one per LockdownCardEvery) and an unchanged render is
// not sent at all.
type lockdownCards struct {
	mu        sync.Mutex
	last      map[string]lockdownCard
	scheduled map[string]bool // a sync is already set to run when the wait is over
}

type lockdownCard struct {
	at   time.Time
	hash [32]byte
}

func newLockdownCards() *lockdownCards {
	return &lockdownCards{last: map[string]lockdownCard{}, scheduled: map[string]bool{}}
}

// wait is how long to wait before card id may be updated again (0 = now); schedule says the
// caller is the one to set a sync for then (one timer per card, however many changes wait).
func (c *lockdownCards) wait(id string, now time.Time) (d time.Duration, schedule bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.last[id]; ok && now.Sub(l.at) < LockdownCardEvery {
		first := !c.scheduled[id]
		c.scheduled[id] = true
		return LockdownCardEvery - now.Sub(l.at), first
	}
	delete(c.scheduled, id)
	return 0, false
}

func (c *lockdownCards) unschedule(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.scheduled, id)
}

func (c *lockdownCards) same(id string, h [32]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last[id].hash == h
}

func (c *lockdownCards) posted(id string, at time.Time, h [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last[id] = lockdownCard{at: at, hash: h}
}

// forget drops what is kept of a closed lockdown's card (its last render): nothing changes it
// any more, and a process would otherwise keep an entry per lockdown it ever showed. A later
// change (a member's late evidence) renders it once more, unthrottled, and is forgotten again.
func (c *lockdownCards) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.last, id)
	delete(c.scheduled, id)
}

// hashCard identifies a render's content, less the "as of" time that changes every render.
func hashCard(text string, blocks []slack.Block) [32]byte {
	b, _ := json.Marshal(blocks[:max(len(blocks)-1, 0)])
	return sha256.Sum256(append([]byte(text+"\x00"), b...))
}

// syncAny syncs an incident's card and thread, or a lockdown's (IDs say which).
func (a *App) syncAny(ctx context.Context, id string) (retry bool, err error) {
	if strings.HasPrefix(id, "LCK-") {
		return a.syncLockdown(ctx, id)
	}
	return a.syncIncident(ctx, id)
}

// syncLockdown brings a lockdown's card (at most every LockdownCardEvery) and thread up to date
// under its sync lock, like syncIncident does for an incident.
func (a *App) syncLockdown(ctx context.Context, id string) (retry bool, err error) {
	if a.cfg.Lockdowns == nil {
		return false, nil
	}
	if d, schedule := a.lockdownCards.wait(id, a.now()); d > 0 {
		if schedule {
			time.AfterFunc(d, func() {
				a.lockdownCards.unschedule(id)
				a.changes.Changed(ctx, id)
			})
		}
		return false, nil
	}
	lock, ok, err := a.store.TrySyncLock(ctx, id)
	if err != nil || !ok {
		return true, err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	l, err := a.cfg.Lockdowns.Get(ctx, id)
	if errors.Is(err, session.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("read lockdown: %w", err)
	}
	if l.Channel == "" || l.MessageTS == "" {
		return false, nil // the command posts the card and syncs again
	}
	text, blocks, err := a.renderLockdown(ctx, l)
	if err != nil {
		return true, err
	}
	if h := hashCard(text, blocks); !a.lockdownCards.same(id, h) {
		err := a.api.update(ctx, l.Channel, l.MessageTS, func(context.Context) (string, []slack.Block, error) {
			if err := lock.Extend(ctx); err != nil {
				return "", nil, err
			}
			return text, blocks, nil
		})
		if err != nil {
			if errors.Is(err, session.ErrSyncLockLost) {
				return false, nil
			}
			return true, fmt.Errorf("update lockdown card: %w", err)
		}
		a.m.CardUpdates.Inc()
		a.lockdownCards.posted(id, a.now(), h)
	}
	if err := a.syncLockdownThread(ctx, lock, l); err != nil {
		if errors.Is(err, session.ErrSyncLockLost) {
			return false, nil
		}
		if errors.Is(err, errPaced) {
			return true, nil
		}
		return true, err
	}
	if !l.Open() {
		a.lockdownCards.forget(id) // its closed card and every thread line are posted
	}
	return false, nil
}

// syncLockdownThread posts the lockdown's thread lines not posted yet, batched, moving the
// thread cursor after each reply (every line once across replicas, as syncThread does).
func (a *App) syncLockdownThread(ctx context.Context, lock *session.SyncLock, l session.Lockdown) error {
	posted := lock.ThreadPosted()
	var lines []string
	var seqs []int64
	for _, ln := range l.Lines {
		if ln.Seq > posted {
			lines, seqs = append(lines, LockdownThreadLine(l, ln, a.cfg.Approvers)), append(seqs, ln.Seq)
		}
	}
	for _, b := range batchLines(lines, threadBatchLines, threadBatchChars) {
		if err := lock.Extend(ctx); err != nil {
			return err
		}
		text := strings.Join(lines[b.start:b.end], "\n")
		if _, err := a.api.threadLine(ctx, l.Channel, l.MessageTS, text); err != nil {
			return err
		}
		a.m.ThreadPosts.Inc()
		last := seqs[b.end-1]
		if err := lock.AdvanceThread(ctx, posted, last); err != nil {
			return err
		}
		posted = last
	}
	return nil
}
