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
	"github.com/slack-go/slack/socketmode"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
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

	// ApprovalBroadcast also shows the approvers' page of a request in the channel
	// (APPROVAL_BROADCAST: reply_broadcast), not only in the card's thread.
	ApprovalBroadcast bool

	RemindAfter, RemindEvery time.Duration // 0 = no reminders
	Workers                  int           // worker pool size; 0 = 16
	// PingInterval is slack-go's watchdog: the most time allowed between Slack's pings; 0 = 30 s.
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
	Abort(ctx context.Context, id, actor, note string) (session.Incident, error)
	Credentials(ctx context.Context, id, actor string) (remediate.Result, error)
	Refresh(ctx context.Context, id string) (session.Incident, error)
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
	Append(ctx context.Context, e session.AuditEntry) (session.AuditEntry, error)
	ClaimReminder(ctx context.Context, id string, after, every time.Duration) (bool, session.Incident, error)
	AuditHead(ctx context.Context, id string) (int64, string, error)
	GlobalAudit(ctx context.Context, since int64, limit int) ([]session.AuditEntry, error)

	// The app's own bookkeeping (session/slacksync.go): delivery dedupe, the per-incident sync
	// lock with the card stamp and thread cursor, the audit head throttle.
	FirstDelivery(ctx context.Context, key string) (bool, error)
	TrySyncLock(ctx context.Context, incidentID string) (*session.SyncLock, bool, error)
	ClaimHeadPost(ctx context.Context, seq int64, every time.Duration) (bool, error)
	HeadPosted(ctx context.Context, seq int64) error

	// Cards of incidents opened from the CLI (session/cardpending.go).
	PendingCards
}

// App is the Socket Mode app: it acks every envelope at once, runs the work in a bounded pool,
// keeps each incident's card and audit thread in sync, and runs the periodic reconcile.
type App struct {
	cfg     Config
	log     zerolog.Logger
	api     slackAPI
	sm      *socketmode.Client
	eng     Engine
	store   Store
	changes *Changes
	m       *Metrics
	auth    *authorizer
	pool    *pool
	now     func() time.Time

	approvalSteps map[session.Step]bool
	approversText string
	botUserID     string

	// globalSeq is how far the periodic pass has read the global audit chain (maintain only).
	globalSeq int64

	linkMu   sync.Mutex
	linkUp   bool
	linkWhy  string
	replySem chan struct{}
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
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 25 * time.Second
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	logAdapter := slackLog{l: cfg.Logger.With().Str("component", "slack-go").Logger()}
	opts := []slack.Option{
		slack.OptionAppLevelToken(cfg.AppToken),
		slack.OptionHTTPClient(&http.Client{Timeout: 10 * time.Second}),
		slack.OptionLog(logAdapter),
	}
	apiURL := slack.APIURL
	if cfg.APIURL != "" {
		apiURL = cfg.APIURL
		opts = append(opts, slack.OptionAPIURL(cfg.APIURL))
	}
	// The Web API client waits out 429s (retryOption; after OptionHTTPClient, which it wraps).
	// Socket Mode gets a client without that retry: after a 429 on apps.connections.open it backs
	// off and reconnects itself, reporting the link down meanwhile.
	client := slack.New(cfg.BotToken, append(slices.Clone(opts), retryOption(apiURL, m))...)
	smClient := slack.New(cfg.BotToken, opts...)
	smOpts := []socketmode.Option{socketmode.OptionLog(logAdapter)}
	if cfg.PingInterval > 0 {
		smOpts = append(smOpts, socketmode.OptionPingInterval(cfg.PingInterval))
	}
	a := &App{
		cfg: cfg, log: cfg.Logger, eng: eng, store: store, changes: changes, m: m, now: now,
		api:      slackAPI{c: client, m: m},
		sm:       socketmode.New(smClient, smOpts...),
		pool:     newPool(cfg.Workers, m),
		replySem: make(chan struct{}, 8),
		linkWhy:  "socket mode not connected yet",
	}
	a.auth = newAuthorizer(a.api, now)
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
	a.pool.start(workCtx, a.cfg.Workers, a.work)
	var bg sync.WaitGroup
	for range 4 {
		bg.Go(func() { a.syncLoop(workCtx) })
	}
	bg.Go(func() { a.maintain(ctx) })

	runErr := make(chan error, 1)
	go func() { runErr <- a.sm.RunContext(ctx) }()
	err = a.dispatch(ctx, runErr)
	a.setLink(false, "shutting down")

	a.pool.close()
	gctx, gcancel := context.WithTimeout(context.Background(), a.cfg.ShutdownGrace)
	if !a.pool.wait(gctx) {
		a.log.Warn().Msg("shutdown grace ended with jobs still running; the reconciler resumes their steps")
	}
	// Let the sync workers post what the last jobs changed, within the same grace.
	for !a.changes.idle() && gctx.Err() == nil {
		select {
		case <-gctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	gcancel()
	cancelWork()
	bg.Wait()
	return err
}

func isAuthError(err error) bool {
	switch slackCode(err) {
	case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired":
		return true
	}
	return false
}

// dispatch is the single event loop. It acks every envelope first (AckCtx with a short timeout:
// a plain Ack blocks forever when the link is down and the send queue is full), then hands the
// work to the pool. It does not use socketmode.SocketmodeHandler, which runs every handler in an
// unbounded goroutine with no context and can fire two handlers (two acks) for one envelope.
func (a *App) dispatch(ctx context.Context, runErr <-chan error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-runErr:
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return fmt.Errorf("socket mode: %w", err)
			}
			return errors.New("socket mode stopped")
		case evt := <-a.sm.Events:
			if err := a.handleEvent(ctx, evt); err != nil {
				return err
			}
		}
	}
}

func (a *App) handleEvent(ctx context.Context, evt socketmode.Event) error {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		a.setLink(false, "socket mode connecting")
	case socketmode.EventTypeConnectionError:
		a.setLink(false, "socket mode connection error")
	case socketmode.EventTypeConnected, socketmode.EventTypeHello:
		a.setLink(true, "")
	case socketmode.EventTypeIncomingError:
		a.setLink(false, "socket mode link closed")
	case socketmode.EventTypeDisconnect:
		a.setLink(false, "slack asked to reconnect")
	case socketmode.EventTypeInvalidAuth:
		return fmt.Errorf("socket mode: %w: check SLACK_APP_TOKEN", ErrInvalidAuth)
	case socketmode.EventTypeErrorBadMessage, socketmode.EventTypeErrorWriteFailed:
		a.log.Warn().Str("event", string(evt.Type)).Msg("socket mode")
	case socketmode.EventTypeSlashCommand, socketmode.EventTypeInteractive, socketmode.EventTypeEventsAPI:
		a.envelope(ctx, evt)
	}
	return nil
}

// envelope acks one request envelope and queues its work. A slash command whose answer needs no
// work (help, usage, a refusal: ackAnswer) is answered in the ack's payload, as is one that finds
// the queue full ("busy"); a click, whose ack carries no message, hears "busy" through its
// response_url.
func (a *App) envelope(ctx context.Context, evt socketmode.Event) {
	if evt.Request == nil {
		return
	}
	received := a.now()
	typ := string(evt.Type)
	a.m.EnvelopesReceived.WithLabelValues(typ).Inc()
	a.setLink(true, "") // an envelope arrived, so the link works
	j := job{envelopeID: evt.Request.EnvelopeID, received: received}
	var answer string // the ack's message; "" = a bare ack
	switch d := evt.Data.(type) {
	case slack.SlashCommand:
		text, refusal, ok := a.ackAnswer(&d)
		switch {
		case !ok:
			j.command = &d
		case refusal != nil:
			j.audit = refusal // a worker records it (Redis, AUDIT_CHANNEL)
		}
		if (j.command == nil && j.audit == nil) || a.pool.submit(j) {
			answer = text
		} else {
			answer = BusyText() // nothing was queued: nothing done, nothing recorded
		}
	case slack.InteractionCallback:
		if d.Type == slack.InteractionTypeBlockActions {
			j.callback = &d
		}
	}
	a.ack(ctx, evt.Request.EnvelopeID, typ, received, answer)
	if j.callback != nil && !a.pool.submit(j) {
		a.busy(ctx, j)
	}
	// events_api: nothing subscribed; acked so Slack does not retry.
}

// ackMessage is a slash command ack's payload: a message Slack shows to the person who ran
// the command, and to no one else.
type ackMessage struct {
	ResponseType string `json:"response_type"`
	Text         string `json:"text"`
}

// ack acknowledges an envelope, with answer as an ephemeral message when set (AckCtx with a short
// timeout: a plain Ack blocks forever when the link is down and the send queue is full).
func (a *App) ack(ctx context.Context, envelopeID, typ string, received time.Time, answer string) {
	var payload any
	if answer != "" {
		payload = ackMessage{ResponseType: slack.ResponseTypeEphemeral, Text: answer}
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := a.sm.AckCtx(actx, envelopeID, payload)
	cancel()
	a.m.AckLatency.Observe(time.Since(received).Seconds())
	if err != nil {
		a.m.EnvelopesAcked.WithLabelValues(typ, "error").Inc()
		a.log.Warn().Err(err).Str("type", typ).Msg("ack envelope")
	} else {
		a.m.EnvelopesAcked.WithLabelValues(typ, "ok").Inc()
	}
}

// busy answers "busy, try again" for a click the full pool could not take, on a bounded number
// of goroutines so the dispatcher never waits on Slack.
func (a *App) busy(ctx context.Context, j job) {
	select {
	case a.replySem <- struct{}{}:
	default:
		a.log.Warn().Msg("worker pool full and busy replies saturated: request answered by nothing")
		return
	}
	go func() {
		defer func() { <-a.replySem }()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		a.replyAction(rctx, j.callback, BusyText(), nil)
	}()
}

// slackLog writes slack-go's log lines through zerolog, so with LOG_FORMAT=json they are JSON
// like every other line of the process.
type slackLog struct{ l zerolog.Logger }

// Output implements slack-go's logger interface.
func (s slackLog) Output(_ int, msg string) error {
	s.l.Info().Msg(strings.TrimSpace(msg))
	return nil
}
