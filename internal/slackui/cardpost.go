package slackui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/session"
)

// cardPosts runs card posts off the goroutines that ask for them: the first post of each new
// incident's or lockdown's card off the queue worker that opened it (postLater), and the
// maintenance pass's posts of the cards not posted yet (later, pending.go). A post waits for its
// channel's chat.postMessage slot (one per second per channel, see pacer.go) or a 429, and a
// queue worker held by that wait could not run other incidents' PBX work (their Deny clicks), nor
// could the maintenance pass resume interrupted steps. Their number is bounded by the incidents
// and lockdowns being opened, so a goroutine each is enough.
type cardPosts struct {
	wg      sync.WaitGroup
	ctx     context.Context // ended by stop, when the shutdown grace is over
	cancel  context.CancelFunc
	timeout time.Duration // bounds an opener's card post (jobTimeout; tests shorten it)

	mu        sync.Mutex
	stopped   bool
	busy      map[string]bool      // incidents whose card a post of later's is posting
	notBefore map[string]time.Time // incidents later leaves alone until then (their post failed)
}

func newCardPosts() *cardPosts {
	ctx, cancel := context.WithCancel(context.Background())
	return &cardPosts{ctx: ctx, cancel: cancel, timeout: jobTimeout, busy: map[string]bool{}, notBefore: map[string]time.Time{}}
}

// run runs post in the background, or at once on this goroutine after stop (post then finds
// its context ended and only answers for the card, cardNotPosted): the WaitGroup is not added
// to once stop waits on it.
func (p *cardPosts) run(post func()) {
	p.mu.Lock()
	if !p.stopped {
		p.wg.Go(post)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	post()
}

// later posts the card of incident id in the background with post (the maintenance pass's,
// pending.go), unless a post of it runs already or its last one failed and asked to be left
// alone until after now: a backlog or an outage of Slack makes a pass every few seconds neither
// wait for each card in turn nor send (and log) the same failing post again and again. post
// returns until when to leave id alone after it (zero: not at all), on the App's clock.
//
// post runs under the posts' context (ended by stop); its wait for the channel's slot also ends
// with ctx, the maintenance pass's: at a shutdown a card still waiting for its turn is left to
// the next replica at once, instead of holding the grace that the last jobs' card updates need.
func (p *cardPosts) later(ctx context.Context, id string, now time.Time, post func(ctx, slotCtx context.Context, id string) (notBefore time.Time)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || p.busy[id] || now.Before(p.notBefore[id]) {
		return
	}
	delete(p.notBefore, id)
	p.busy[id] = true
	p.wg.Go(func() {
		slotCtx, cancel := context.WithCancel(p.ctx)
		defer cancel()
		defer context.AfterFunc(ctx, cancel)()
		notBefore := post(p.ctx, slotCtx, id)
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.busy, id)
		if !notBefore.IsZero() {
			p.notBefore[id] = notBefore
		}
	})
}

// sweep forgets the incidents later no longer leaves alone at now, so the set holds only
// failing ones.
func (p *cardPosts) sweep(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, t := range p.notBefore {
		if !now.Before(t) {
			delete(p.notBefore, id)
		}
	}
}

// wait returns when every card post has ended, or false when ctx ends first.
func (p *cardPosts) wait(ctx context.Context) bool {
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// stop ends the posts still waiting and waits for them: the incidents and lockdowns stay open,
// and a replica's maintenance pass posts their cards (postOrphanCards, postOrphanLockdownCards).
func (p *cardPosts) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}

// postLater runs the first post of a card just opened (post) in the background (cards.run),
// under the posts' context (ended by stop) and their bound (cards.timeout), logging with the
// job's logger (jobCtx's): the queue worker that opened it goes on at once. One way for both
// kinds of card: an incident's (postCardLater) and a lockdown's (cmdLockdown).
func (a *App) postLater(jobCtx context.Context, post func(ctx context.Context)) {
	log := a.logger(jobCtx)
	a.cards.run(func() {
		ctx, cancel := context.WithTimeout(log.WithContext(a.cards.ctx), a.cards.timeout)
		defer cancel()
		post(ctx)
	})
}

// postCardLater posts the card of the incident c just opened, in the background (postLater).
func (a *App) postCardLater(jobCtx context.Context, c *slack.SlashCommand, inc session.Incident) {
	a.postLater(jobCtx, func(ctx context.Context) { a.postOpenCard(ctx, c, inc) })
}

// answerCtx is the context of the answer to a card's opener after its post: the post's
// context may have ended (its deadline, the shutdown), and the answer must still go out.
func answerCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), replyTimeout)
}

// postOpenCard posts the card, records its ts and starts its sync. When the card is not posted
// the incident stays open and its card follows, unless Slack refused it for good: then the
// incident is discarded again (nothing may stay open without a card) and the user told why
// (cardNotPosted).
//
// The post holds the incident's sync lock, so that the maintenance pass, which posts the card of an
// open incident that has none (its opener died between the open and the post, or its post did
// not get through in time, see postOrphanCards), leaves a live post alone.
func (a *App) postOpenCard(ctx context.Context, c *slack.SlashCommand, inc session.Incident) {
	lock, release := a.holdSyncLock(ctx, inc.ID)
	defer release()
	sent, err := a.sendOpenCard(ctx, c, inc)
	if err != nil {
		a.cardNotPosted(ctx, c, sent, err)
		return
	}
	var rec session.Incident
	for attempt := 0; ; attempt++ {
		rec, err = a.eng.SetCard(ctx, inc.ID, c.ChannelID, sent.ts)
		if err == nil || attempt == 2 || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		a.logger(ctx).Error().Err(err).Str("incident", inc.ID).Msg("record the card's ts: the maintenance pass posts it again")
	} else {
		a.cardShows(ctx, lock, sent.posted, rec, sent.text, sent.blocks)
	}
	release() // before the sync, which takes the lock
	a.changes.Changed(ctx, inc.ID)
}

// openCard is a new incident's card as sendOpenCard sent it: the incident as posted (as stored
// after the last wait), the card's text and blocks and its ts, and whether the opener got the
// notice meanwhile.
type openCard struct {
	posted  session.Incident
	text    string
	blocks  []slack.Block
	ts      string
	noticed bool
}

// sendOpenCard posts the card of inc, just opened by c. When Slack limits the channel, so the
// card waits noticeably for its slot (noticeAfter) or draws a 429, the opener gets the notice
// with the card's Deny button at once (openernotice.go), and the card is rendered again after
// every wait from the incident as stored then: it shows what a click on the notice did
// meanwhile (the deny, contained), and the devices read since the open. A 429 is waited out
// (its Retry-After) and the post sent again; Slack posted nothing, so this never makes a second
// card. The post's timeout (cardPosts.timeout) bounds it; a slot beyond it fails at once.
func (a *App) sendOpenCard(ctx context.Context, c *slack.SlashCommand, inc session.Incident) (sent openCard, err error) {
	sent.posted = inc
	waited := false
	watch := func(wait time.Duration, refused bool) {
		waited = true
		if !sent.noticed && (refused || wait >= noticeAfter) {
			sent.noticed = true
			a.noticeOpener(ctx, c, inc, max(wait, a.api.p.backlog(c.ChannelID)))
		}
	}
	pctx := withPostWatch(ctx, watch) // the watch runs on this goroutine: the pacer's wait, the client's 429
	done, err := a.api.p.post(pctx, c.ChannelID)
	if err != nil {
		return sent, a.api.fail("chat.postMessage", err)
	}
	defer done()
	for {
		if waited {
			if cur, gerr := a.store.Get(ctx, inc.ID); gerr == nil {
				sent.posted = cur
			} else {
				a.logger(ctx).Warn().Err(gerr).Str("incident", inc.ID).Msg("read the incident before its card post; posting it as opened")
			}
		}
		sent.text, sent.blocks = Card(sent.posted, a.cardOptions(a.now()))
		sent.ts, err = a.api.send(pctx, c.ChannelID, "", sent.text, sent.blocks)
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) || ctx.Err() != nil {
			return sent, err
		}
		if err := sleepCtx(ctx, max(rl.RetryAfter, time.Second)); err != nil {
			return sent, a.api.fail("chat.postMessage", err)
		}
	}
}

// cardNotPosted answers for a new incident whose card post failed (err). Only Slack refusing
// the card for good (refusedForGood) ends the open (cardRefused). Anything else (the channel's
// next slot beyond the post's bound in a wave of incidents, 429s outlasting it, a 5xx, the
// network, a shutdown cancelling the post) keeps the incident open: the maintenance pass posts
// its card (postOrphanCards), here or on the next replica. Told "nothing was opened, try
// again", the opener would retry into the same backlog while the user stays uncontained, and
// may already hold the notice's Deny button. So they are told once that it is open and its
// card follows, with the notice (and its Deny button) when they do not have it yet.
func (a *App) cardNotPosted(ctx context.Context, c *slack.SlashCommand, sent openCard, err error) {
	inc := sent.posted
	if refusedForGood(err) {
		a.cardRefused(ctx, c, inc, err)
		return
	}
	rctx, cancel := answerCtx(ctx)
	defer cancel()
	why, wait := a.cardDelay(err, inc.Channel, inc.CreatedAt)
	delayLog(a.logger(ctx), why).Err(err).Str("incident", inc.ID).Dur("wait", wait).
		Msg("card not posted: the incident stays open and the maintenance pass posts its card")
	if !sent.noticed {
		text, blocks := openerNotice(inc, a.cardOptions(a.now()), wait, why)
		a.replyCommand(rctx, c, text, blocks)
		return
	}
	a.replyCommand(rctx, c, CardDelayedText(inc, wait, why), nil)
}

// cardDelay reads why a first card post failed, not for good, for the card's opener: why the
// card waits (Slack limiting the channel, the bot restarting, or Slack's error code), and about
// how long until it shows (at least until the maintenance pass posts it, since the card's
// opening at created, and the channel's slot or backlog). One reading for an incident's card
// (cardNotPosted) and a lockdown's (postOpenLockdownCard).
func (a *App) cardDelay(err error, channel string, created time.Time) (why string, wait time.Duration) {
	why = limitedWhy
	wait = orphanCardAfter + a.cfg.reconcileEvery() - a.now().Sub(created)
	var far slotTooFar
	switch code := slackCode(err); {
	case errors.As(err, &far):
		wait = max(wait, far.wait)
	case errors.Is(err, context.Canceled) && a.cards.ctx.Err() != nil:
		why = restartingWhy
	case code != "canceled" && code != "ratelimited":
		why = "Slack did not take its card just now (" + code + ")"
	}
	return why, max(wait, a.api.p.backlog(channel), time.Second)
}

// delayLog is the log line of a card not posted for why (cardDelay): info for a wave's
// backlog or a restart, which are expected (one line per card), warn when Slack is failing.
func delayLog(log *zerolog.Logger, why string) *zerolog.Event {
	if why == limitedWhy || why == restartingWhy {
		return log.Info()
	}
	return log.Warn()
}

// restartingWhy is why a card waits, said to its opener, when the shutdown cancelled its post.
const restartingWhy = "The bot is restarting"

// cardRefusals are the chat.postMessage errors by which Slack refuses a card for good: posting
// it again, however much later, gets the same answer until someone changes the channel or the
// app. Any other failure is waited out. One list for every card post: the opener's
// (cardNotPosted) and the maintenance pass's (postPendingCard).
var cardRefusals = map[string]bool{
	// the channel: the bot is not in it, it is gone or read-only to the bot
	"not_in_channel": true, "channel_not_found": true, "is_archived": true, "restricted_action": true,
	"restricted_action_read_only_channel": true, "restricted_action_thread_only_channel": true,
	"restricted_action_non_threadable_channel": true, "team_access_not_granted": true, "ekm_access_denied": true,
	// the card itself
	"invalid_blocks": true, "invalid_blocks_format": true, "invalid_arguments": true, "invalid_arg_name": true,
	"invalid_array_arg": true, "invalid_charset": true, "invalid_form_data": true, "invalid_post_type": true,
	"missing_post_type": true, "msg_too_long": true, "no_text": true, "too_many_attachments": true,
	// the app
	"missing_scope": true, "not_allowed_token_type": true, "no_permission": true, "access_denied": true,
}

// refusedForGood reports whether err is Slack refusing a card for good (cardRefusals).
func refusedForGood(err error) bool { return cardRefusals[slackCode(err)] }

// cardRefused ends an open whose card Slack refused for good (err): the incident is discarded
// and the opener told that nothing was opened. An incident a click on the opener's notice already
// acted on is kept, not discarded (the store refuses: the deny's record must stay): the
// maintenance pass tries its card (postOrphanCards), and the opener is told so.
func (a *App) cardRefused(ctx context.Context, c *slack.SlashCommand, inc session.Incident, err error) {
	rctx, cancel := answerCtx(ctx)
	defer cancel()
	code := slackCode(err)
	derr := a.eng.Discard(rctx, inc.ID)
	if errors.Is(derr, session.ErrStarted) {
		a.logger(ctx).Warn().Err(err).Str("incident", inc.ID).Msg("post card of an incident already acted on: the maintenance pass posts it")
		a.replyCommand(rctx, c, "⚠️ Slack has not taken the card of "+esc(inc.ID)+" yet ("+esc(code)+"). The incident stays open as it is, and its card follows in this channel.", nil)
		return
	}
	if derr != nil {
		a.logger(ctx).Warn().Err(derr).Str("incident", inc.ID).Msg("discard incident after a failed card post")
	}
	switch code {
	case "not_in_channel", "channel_not_found":
		a.replyCommand(rctx, c, NotInChannelText(a.botUserID), nil)
	default:
		a.logger(ctx).Warn().Err(err).Str("incident", inc.ID).Msg("post card")
		a.replyCommand(rctx, c, "⚠️ I could not post the incident card ("+esc(code)+"), so nothing was opened. Please try again.", nil)
	}
}

// holdSyncLock takes the incident's sync lock and renews it until release is called (idempotent).
// Without the lock (another holder, Redis failing) l is nil and release does nothing: the lock
// only keeps the maintenance pass from posting a second card while this one is posted.
func (a *App) holdSyncLock(ctx context.Context, id string) (l *session.SyncLock, release func()) {
	l, ok, err := a.store.TrySyncLock(ctx, id)
	if err != nil || !ok {
		return nil, func() {}
	}
	stop := session.KeepAlive(ctx, session.SyncLockTTL/3, func(ctx context.Context) bool { return l.Extend(ctx) == nil })
	var once sync.Once
	return l, func() {
		once.Do(func() {
			stop()
			l.Release(context.WithoutCancel(ctx))
		})
	}
}

// cardShows records that the card just posted (text, blocks: posted rendered) shows rec, the
// incident with the card's ts recorded, when rec renders as that card: recording the ts makes a
// new version but changes nothing on the card, and without the record the first sync would send
// the same card again (one chat.update per incident, for nothing). The version only stamps the
// block_ids (card.go), so rec is compared as rendered at posted's version. l is the sync lock the
// post holds; without it, or when rec renders otherwise, the sync updates the card as usual.
func (a *App) cardShows(ctx context.Context, l *session.SyncLock, posted, rec session.Incident, text string, blocks []slack.Block) {
	now := a.now()
	probe := rec
	probe.Version = posted.Version
	if t, b := Card(probe, a.cardOptions(now)); t != text || !sameBlocks(b, blocks) {
		return
	}
	if l == nil {
		return
	}
	if err := l.RaiseCardStamp(ctx, cardStamp(rec, now)); err != nil {
		a.logger(ctx).Debug().Err(err).Str("incident", rec.ID).Msg("record the posted card's version")
	}
}

// sameBlocks reports whether two block lists encode alike (as chat.postMessage sends them).
func sameBlocks(a, b []slack.Block) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}
