package slackui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slacksocket"
)

// Config configures the App. The tokens are secrets: they go to slack-go and nowhere else.
type Config struct {
	BotToken string // xoxb-…
	AppToken string // xapp-…
	APIURL   string // Slack Web API base ending in "/"; "" = https://slack.com/api/

	Responders    []string // user IDs (U…/W…) and user-group IDs (S…)
	Approvers     []string // same form
	ApprovalSteps []session.Step
	AuditChannel  string // "" = none
	DenyPolicy    string // NS_DENY_POLICY (for the card before deny ran)
	ResetEmail    bool   // NS_RESET_EMAIL_TEMPLATE is set
	// PortalPassword: NS_V1_PORTAL_PASSWORD is on (reset sets a new portal password).
	PortalPassword bool

	// ApprovalBroadcast also shows the approvers' page of a request in the channel
	// (APPROVAL_BROADCAST: reply_broadcast), not only in the card's thread.
	ApprovalBroadcast bool

	RemindAfter, RemindEvery time.Duration // 0 = no reminders
	Workers                  int           // workers draining the queue; 0 = 16
	// QueueSize is how many acknowledged commands and clicks may wait for a worker; 0 = 1000.
	// Past it they are answered "busy, try again in N s", never dropped.
	QueueSize int
	// SocketConnections is how many Socket Mode connections are kept up at once
	// (SOCKET_CONNECTIONS), so one refreshed by Slack leaves another to deliver on; 0 = 1.
	SocketConnections int
	// PingInterval is the link's watchdog: the most time allowed without a ping (or any frame) from Slack; 0 = 30 s.
	PingInterval time.Duration
	// ReconcileEvery is the period of Reconcile, the sync backstop and reminders; 0 = 5 s.
	ReconcileEvery time.Duration
	// ShutdownGrace is how long running jobs may finish after ctx ends; 0 = 25 s.
	ShutdownGrace time.Duration
	// SyncRetry is how soon a card/thread sync blocked by another replica is tried again; 0 = 250 ms.
	SyncRetry time.Duration
	// HeadEvery is how often the global audit chain's head is posted to AUDIT_CHANNEL (when it
	// moved), by one replica; 0 = 10 min.
	HeadEvery time.Duration

	// Lockdowns runs lockdowns (many users on one card, lockdownhandlers.go); nil = the
	// lockdown commands answer that they are not available.
	Lockdowns Lockdowns

	// Observer is told a step request refused here (not allowed), as the engine tells it the
	// outcomes it decides; nil = none.
	Observer remediate.Observer

	Logger zerolog.Logger
	Now    func() time.Time // nil = time.Now
}

func (c Config) reconcileEvery() time.Duration {
	if c.ReconcileEvery <= 0 {
		return 5 * time.Second
	}
	return c.ReconcileEvery
}

func (c Config) syncRetry() time.Duration {
	if c.SyncRetry <= 0 {
		return 250 * time.Millisecond
	}
	return c.SyncRetry
}

// Engine is the part of the runbook engine (*remediate.Engine) the app calls.
type Engine interface {
	Open(ctx context.Context, r remediate.OpenRequest) (session.Incident, bool, error)
	Plan(ctx context.Context, user, domain string) (remediate.Plan, error)
	Request(ctx context.Context, id string, step session.Step, actor string, o remediate.RunOptions) (remediate.Result, error)
	Approve(ctx context.Context, id string, step session.Step, approver string) (remediate.Result, error)
	Reject(ctx context.Context, id string, step session.Step, actor string) (session.Incident, error)
	Abort(ctx context.Context, id, actor, note, confirmMissing string) (session.Incident, error)
	Credentials(ctx context.Context, id, actor string) (remediate.Result, error)
	Refresh(ctx context.Context, id string) (session.Incident, error)
	RestoreChoices(ctx context.Context, id string) ([]remediate.PolicyChoice, error)
	Discard(ctx context.Context, id string) error
	SetCard(ctx context.Context, id, channel, ts string) (session.Incident, error)
	Reconcile(ctx context.Context) ([]remediate.Resumed, error)
}

// Store is the part of the incident store (*session.Store) the app reads and writes directly.
type Store interface {
	Get(ctx context.Context, id string) (session.Incident, error)
	FindOpen(ctx context.Context, user, domain string) (session.Incident, error)
	ListOpen(ctx context.Context) ([]session.Incident, error)
	Update(ctx context.Context, id string, fn func(*session.Incident) error) (session.Incident, error)
	Audit(ctx context.Context, id string) ([]session.AuditEntry, error)
	AuditAfter(ctx context.Context, id string, seq int64) ([]session.AuditEntry, error)
	Append(ctx context.Context, e session.AuditEntry) (session.AuditEntry, error)
	ClaimReminder(ctx context.Context, id string, after, every time.Duration) (bool, session.Incident, error)
	AuditHead(ctx context.Context, id string) (int64, string, error)
	GlobalAudit(ctx context.Context, since int64, limit int) ([]session.AuditEntry, error)
	// ListOpenLockdowns: the maintenance pass posts the card of one that has none.
	ListOpenLockdowns(ctx context.Context) ([]session.Lockdown, error)

	// The app's own bookkeeping (session/slacksync.go): delivery dedupe, the per-incident sync
	// lock with the card stamp and thread cursor (and the incident read with them), the audit
	// head throttle.
	FirstDelivery(ctx context.Context, key string) (bool, error)
	FirstDeliveries(ctx context.Context, keys ...string) ([]bool, error)
	GetForSync(ctx context.Context, id string) (session.Incident, session.SyncView, error)
	TrySyncLock(ctx context.Context, incidentID string) (*session.SyncLock, bool, error)
	ClaimHeadPost(ctx context.Context, seq int64, every time.Duration) (bool, error)
	HeadPosted(ctx context.Context, seq int64) error

	// Cards of incidents opened from the CLI (session/cardpending.go).
	PendingCards
}

// App is the Socket Mode app: it acks every envelope at once (answering in the ack what needs no
// work), runs the rest from a bounded queue with one lane per incident (queue.go), keeps each incident's card and audit thread in sync, and runs the periodic reconcile.
type App struct {
	cfg       Config
	log       zerolog.Logger
	api       slackAPI
	sm        *slacksocket.Client
	eng       Engine
	store     Store
	changes   *Changes
	m         *Metrics
	auth      *authorizer
	queue     *queue
	cards     *cardPosts    // first posts of new cards (cardpost.go)
	threads   *threadHolds  // audit lines held back to be batched (holds.go)
	cardHolds *cardHolds    // card updates held back while a step starts (holds.go)
	channels  *channelInfos // conversations.info for opens (channelcheck.go)
	replies   chan reply    // answers to clicks the full queue could not take (replier)
	// viewSlots bounds the view submissions being checked before their ack (viewSubmission).
	viewSlots chan struct{}
	viewWG    sync.WaitGroup // the checks running, which Run waits for before it closes the queue
	now       func() time.Time

	approvalSteps map[session.Step]bool
	approversText string
	botUserID     string

	// lockdownCards throttles and deduplicates lockdown card updates (lockdownsync.go).
	lockdownCards *lockdownCards

	// globalSeq is how far the periodic pass has read the global audit chain (maintain only).
	globalSeq int64

	linkMu  sync.Mutex
	linkUp  bool
	linkWhy string
}

// ErrInvalidAuth is returned (wrapped) by Run when Slack refuses a token (invalid_auth and
// friends): the process cannot work and must stop with a clear message.
var ErrInvalidAuth = errors.New("slack refused the token")

// New builds the App. eng must have been created with changes as its Notifier. Errors: a
// missing dependency or token (plain errors: a wiring bug).
func New(cfg Config, eng Engine, store Store, changes *Changes, m *Metrics) (*App, error) {
	switch {
	case eng == nil || store == nil || changes == nil:
		return nil, errors.New("slackui: engine, store and changes are required")
	case cfg.BotToken == "" || cfg.AppToken == "":
		return nil, errors.New("slackui: bot and app tokens are required")
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1000
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 25 * time.Second
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	logAdapter := slackLog{l: cfg.Logger.With().Str("component", "slack-go").Logger()}
	apiURL := slack.APIURL
	if cfg.APIURL != "" {
		apiURL = cfg.APIURL
	}
	// echoless drops the echoed message from chat.postMessage/chat.update replies (echoless.go).
	opts := []slack.Option{
		slack.OptionAppLevelToken(cfg.AppToken),
		slack.OptionHTTPClient(&http.Client{Timeout: session.SlackCallTimeout, Transport: echoless{next: slackTransport(), apiURL: apiURL}}),
		slack.OptionLog(logAdapter),
	}
	if cfg.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(cfg.APIURL))
	}
	// The Web API client waits out 429s (retryOption; after OptionHTTPClient, which it wraps).
	// Socket Mode gets a client without that retry: after a 429 on apps.connections.open it backs
	// off and reconnects itself, reporting the link down meanwhile.
	p := newPacer()
	client := slack.New(cfg.BotToken, append(slices.Clone(opts), retryOption(apiURL, m, p))...)
	smClient := slack.New(cfg.BotToken, opts...)
	smOpts := slacksocket.Options{Connections: cfg.SocketConnections, PingInterval: cfg.PingInterval,
		Logger:  cfg.Logger.With().Str("component", "socketmode").Logger(),
		Metrics: slacksocket.Metrics{Connections: m.SocketConnections, Wanted: m.SocketsWanted, AckLatency: m.AckLatency}}
	a := &App{
		cfg: cfg, log: cfg.Logger, eng: eng, store: store, changes: changes, m: m, now: now,
		api:       slackAPI{c: client, m: m, p: p},
		sm:        slacksocket.New(smClient, smOpts),
		queue:     newQueue(cfg.QueueSize, m),
		cards:     newCardPosts(),
		threads:   newThreadHolds(),
		cardHolds: newCardHolds(),
		channels:  newChannelInfos(),
		replies:   make(chan reply, replyBuffer),
		viewSlots: make(chan struct{}, viewChecks),
		linkWhy:   "socket mode not connected yet",
	}
	a.auth = newAuthorizer(a.api, now)
	a.lockdownCards = newLockdownCards()
	if cfg.Lockdowns != nil {
		cfg.Lockdowns.SetDeliver(a.deliverSecrets)
	}
	a.approvalSteps = map[session.Step]bool{}
	for _, s := range cfg.ApprovalSteps {
		a.approvalSteps[s] = true
	}
	a.approversText = mentionList(cfg.Approvers)
	return a, nil
}

// mentionList renders APPROVERS for the card: users as <@U…>, groups as <!subteam^S…>.
func mentionList(ids []string) string {
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		parts = append(parts, mention(id))
	}
	if len(parts) > 6 {
		parts = append(parts[:6], fmt.Sprintf("+%d more", len(parts)-6))
	}
	return strings.Join(parts, ", ")
}

// Link reports whether the Socket Mode link is up and, when it is not, why (for /readyz).
func (a *App) Link() (up bool, why string) {
	a.linkMu.Lock()
	defer a.linkMu.Unlock()
	return a.linkUp, a.linkWhy
}

func (a *App) setLink(up bool, why string) {
	a.linkMu.Lock()
	changed := a.linkUp != up
	a.linkUp, a.linkWhy = up, why
	a.linkMu.Unlock()
	if up {
		a.m.LinkUp.Set(1)
	} else {
		a.m.LinkUp.Set(0)
	}
	if changed {
		a.log.Info().Bool("up", up).Str("why", why).Msg("socket mode link")
	}
}

// BotUserID is the bot's own user ID (from auth.test; empty before Run got it).
func (a *App) BotUserID() string { return a.botUserID }

// Run connects to Slack and serves until ctx ends, then lets running jobs finish (at most
// ShutdownGrace) so no step is cut off between two recorded progress points without need.
// Errors: ErrInvalidAuth (wrapped) when Slack refuses a token at start-up or later; other
// start-up failures of auth.test (wrapped); nil after a clean shutdown.
func (a *App) Run(ctx context.Context) error {
	actx, cancel := context.WithTimeout(ctx, 15*time.Second)
	at, err := a.api.authTest(actx)
	cancel()
	if err != nil {
		if isAuthError(err) {
			return fmt.Errorf("auth.test: %w: check SLACK_BOT_TOKEN (%s)", ErrInvalidAuth, slackCode(err))
		}
		return fmt.Errorf("auth.test: %w", err)
	}
	a.botUserID = at.UserID
	a.log.Info().Str("bot_user", at.UserID).Str("team", at.TeamID).Msg("slack auth ok")
	// The user groups first, so the first commands already get their refusals in the ack.
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	a.auth.refresh(rctx, 0, a.cfg.Responders, a.cfg.Approvers)
	rcancel()

	// Work runs under a context that outlives ctx by the grace period, so a SIGTERM lets a running
	// step reach its end instead of leaving it for the reconciler.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	a.queue.start(workCtx, a.cfg.Workers, a.work)
	var bg sync.WaitGroup
	for range 4 {
		bg.Go(func() { a.syncLoop(workCtx) })
	}
	var repliers sync.WaitGroup
	for range replyWorkers {
		repliers.Go(func() { a.replier(workCtx) })
	}
	bg.Go(func() { a.maintain(ctx) })

	// Each connection's reading goroutine acks the envelopes it reads itself (socketHandler); Run
	// returns when ctx ends (every connection closed), or when Slack refuses the app-level token.
	if err = a.sm.Run(ctx, socketHandler{a}); err != nil {
		err = fmt.Errorf("socket mode: %w: check SLACK_APP_TOKEN: %w", ErrInvalidAuth, err)
	}
	a.setLink(false, "shutting down")
	a.viewWG.Wait() // each is bounded by submissionTimeout and its ack's timeout

	// Nothing new arrives now: the link read on until it was quiet, then until Slack had its
	// close, so what Slack had sent is queued (and acked, but for what came as the close was on
	// its way), and Slack sends the rest to other replicas (a slash command or a click it
	// delivered is never delivered again). What is queued runs within the grace; what still
	// waits after it is answered "restarting, try again" instead of being forgotten.
	gctx, gcancel := context.WithTimeout(context.Background(), a.cfg.ShutdownGrace)
	a.drain(gctx)
	a.cards.wait(gctx)
	// Let the sync workers post what the last jobs changed, within the same grace (nothing
	// held back any more).
	a.changes.flushHeld()
	for !a.changes.idle() && gctx.Err() == nil {
		select {
		case <-gctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	gcancel()
	repliers.Wait() // each reply is bounded by replyTimeout
	a.cards.stop()
	cancelWork()
	bg.Wait()
	return err
}

// drain closes the queue and lets the workers run what waits in it until ctx ends; what still
// waits then is answered "restarting" by the repliers instead of being forgotten (a running
// step keeps its recorded progress for the reconciler). It closes the repliers' channel: the
// dispatcher, its only other sender, has stopped.
func (a *App) drain(ctx context.Context) {
	a.queue.close()
	if !a.queue.wait(ctx) {
		left := a.queue.abandon()
		a.log.Warn().Int("answered", len(left)).Msg("shutdown grace ended: queued requests answered 'restarting', running steps are resumed by the reconciler")
		for _, j := range left {
			a.replies <- reply{j: j, text: RestartingText()}
		}
	}
	close(a.replies)
}

// slackIdleConns is how many idle connections to Slack's Web API are kept: the sync workers,
// the repliers and the card posts of a burst call it at once.
const slackIdleConns = 32

// slackTransport is http.DefaultTransport's settings with room for slackIdleConns idle
// connections: the default keeps 2 per host, so under a burst most Web API calls paid a new TCP
// and TLS handshake.
func slackTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = slackIdleConns
	return t
}

func isAuthError(err error) bool {
	switch slackCode(err) {
	case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired":
		return true
	}
	return false
}

// slackLog writes slack-go's log lines through zerolog, so with LOG_FORMAT=json they are JSON
// like every other line of the process.
type slackLog struct{ l zerolog.Logger }

// Output implements slack-go's logger interface.
func (s slackLog) Output(_ int, msg string) error {
	s.l.Info().Msg(strings.TrimSpace(msg))
	return nil
}
