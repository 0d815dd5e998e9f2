// Package slacksocket is the bot's Socket Mode client: it keeps the WebSocket link to Slack (one
// or a few connections at once, Options.Connections), hands each request envelope (decoded once
// into slack-go's types) to the app on the goroutine that read it, and writes the acks.
//
// Why not slack-go's socketmode.Client: under a burst of 200 `/compromised help` it cost the bot
// 77–107 µs of CPU per envelope and an ack p99 of ~20 ms (BENCHMARKS.md, "Socket Mode ack
// path"): gorilla's ReadJSON into a RawMessage, a hand-off to a parsing goroutine, the request
// and its payload decoded again (slack.SlashCommand decodes itself twice), a hand-off to the
// app's loop, then the ack marshalled, handed to a writer goroutine and written with one
// syscall each (JSON ~40 % of that CPU, the write syscalls 17 %). Here a frame is read, decoded
// once (a slash command by a one-pass scanner, fastSlashFrame; the rest by encoding/json into
// slack-go's types) and answered by the goroutine that read it, and the acks of frames read
// together leave in one write (corkConn): 82–94 → 29–33 µs of the bot's CPU per command. What
// slack-go's client does for the protocol is kept, per connection: the URL from
// apps.connections.open (through slack-go's Web API client), hello, disconnect (reconnect at
// once), server pings answered and watched (no ping nor frame for PingInterval: the link is dead),
// reconnect with backoff (Retry-After of a 429 honoured; a refused token ends Run), the 20 KiB
// ack limit, and the link state for /readyz. slack-go holds one connection; this client may hold
// several, as Slack advises, so that Slack's routine refresh of one (or its drop) leaves others
// to deliver on: with one, a slash command sent in that window fails (dispatch_failed).
package slacksocket

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
)

// Opener is the part of slack-go's Web API client (made with the app-level token) that opens
// a link: apps.connections.open.
type Opener interface {
	StartSocketModeContext(ctx context.Context) (*slack.SocketModeConnection, string, error)
}

// Handler is what the client delivers to. Envelope is called on the reading goroutine of the
// connection the envelope came on, so, with several connections, from several goroutines at
// once: it must ack (Envelope.Ack) and return without blocking on anything slow (no Web API
// call, no Redis); what must wait calls Envelope.Flush first, so the acks held back for one
// write (see corkConn) are not held with it.
type Handler interface {
	Envelope(ctx context.Context, e *Envelope)
	// Link is told when the link goes up or down, with why: it is up while at least one of the
	// client's connections is (said hello and has not closed: one Slack asked to go counts
	// until its reading ends), so one refreshed or dropped while another serves does not take it
	// down. Its calls are never concurrent.
	Link(up bool, why string)
}

// Options configures a Client.
type Options struct {
	// Connections is how many Socket Mode connections the client keeps up at once; 0 = 1. Slack
	// delivers each envelope on one of an app's connections, at random, so while one is being
	// refreshed (or has dropped) the others still take commands, and a burst is read, parsed and
	// acked by one goroutine per connection. Slack allows 10 per app, every replica's counted.
	Connections int
	// PingInterval is the most time allowed between Slack's pings (or any frame) before the
	// connection is taken for dead and replaced; 0 = 30 s.
	PingInterval time.Duration
	Logger       zerolog.Logger
	// TLSConfig is for the wss:// dial; nil = the system's roots (tests give their own CA).
	TLSConfig *tls.Config
	// Metrics is where the client reports; the app defines the series, with its others.
	Metrics Metrics
}

// Metrics are the series the client keeps up to date; a nil one is not reported.
type Metrics struct {
	// Connections is set to how many connections are live (Client.Live) whenever that changes:
	// the link is up while one is, so only this shows one of several down (a drop, a slow
	// reconnect, a too_many_websockets backoff). One Slack asked to go counts until its reading
	// ends, beside its replacement: a refresh shows as one above Wanted for a few seconds.
	Connections Gauge
	// Wanted is set once, by New, to Options.Connections as clamped: what Connections should be.
	Wanted Gauge
	// AckLatency observes each ack's seconds from when its frame came off the socket (the Read
	// that brought its header in) to when the ack was handed to the connection's write, so the
	// frame's parse, the frames read ahead of it and the handler's work all count; an ack
	// corked to leave with others (corkConn) waits at most maxHold more, which is not counted.
	AckLatency Observer
}

// Gauge is the part of a prometheus.Gauge the client sets.
type Gauge interface{ Set(float64) }

// Observer is the part of a prometheus.Histogram the client observes with.
type Observer interface{ Observe(float64) }

// MaxConnections is the most Connections a Client keeps: Slack's cap is 10 per app, shared by
// every replica, and past two or three a replica gains nothing (each envelope goes to one).
const MaxConnections = 4

// Client keeps Options.Connections Socket Mode connections up while Run runs.
type Client struct {
	api   Opener
	opts  Options
	log   zerolog.Logger
	opens *opens

	// linkMu orders the link reports (Handler.Link) with the changes of live they report.
	linkMu  sync.Mutex
	mu      sync.Mutex
	live    []*conn       // the connections that said hello and have not closed, oldest first
	changed chan struct{} // closed when live changes
	dialled int

	now  func() time.Time // the clock of the ack latency and the cork's hold; nil = time.Now (tests give theirs)
	caps quiesceCaps      // a shutdown's waits (tests shorten them)
}

// ErrAuth is returned (wrapped) by Run when Slack refuses the app-level token.
var ErrAuth = errors.New("slack refused the app-level token")

// New makes a Client; api must carry the app-level token (slack.OptionAppLevelToken).
// Connections is clamped to 1..MaxConnections.
func New(api Opener, opts Options) *Client {
	if opts.PingInterval <= 0 {
		opts.PingInterval = 30 * time.Second
	}
	opts.Connections = min(max(opts.Connections, 1), MaxConnections)
	if g := opts.Metrics.Wanted; g != nil {
		g.Set(float64(opts.Connections))
	}
	if g := opts.Metrics.Connections; g != nil {
		g.Set(0)
	}
	return &Client{api: api, opts: opts, log: opts.Logger, changed: make(chan struct{}), caps: defaultCaps,
		opens: newOpens(backoff{initial: 100 * time.Millisecond, max: 5 * time.Minute})}
}

// Run keeps the connections up until ctx ends (nil) or Slack refuses the token (ErrAuth,
// wrapped; every connection is then closed). Everything else (a refused dial, a dropped
// connection, a disconnect request) is retried by the connection it befell, the others serving
// meanwhile: at once after a connection that worked (one Slack asks to go is replaced as soon
// as it asks, see keep), else after a backoff from 100 ms doubling to 5 min (a 429's
// Retry-After when longer), as slack-go does. The backoff is the client's, not each
// connection's (opens), so N connections do not call apps.connections.open N times as often.
// Run returns only once every connection's serve has, those still draining included.
func (c *Client) Run(ctx context.Context, h Handler) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var keeps, serves sync.WaitGroup
	for range c.opts.Connections {
		keeps.Go(func() {
			if err := c.keep(ctx, h, &serves); err != nil {
				cancel(err) // ErrAuth: the others close too, the draining ones within their caps
			}
		})
	}
	keeps.Wait()
	serves.Wait() // keeps.Wait first: no keep adds to serves any more
	if err := context.Cause(ctx); errors.Is(err, ErrAuth) {
		return err
	}
	return nil
}

// keep is one of Run's connections: connected, served until it ends, connected again, until ctx
// ends (nil) or the token is refused (ErrAuth). Each connection is served on its own goroutine
// (in serves, which Run waits for): when Slack asks it to go (a disconnect but
// too_many_websockets), keep connects its replacement at once, as Slack advises, while the old
// one drains (reads what Slack still sends there, within the caps of quiesce) and stays live
// until its reading ends; keep no longer looks at the old one, so it is replaced once, not again
// when its reading ends. So a slot has one draining connection beside its serving one, or two
// when Slack asks the replacement to go too before the old has drained (each still bounded by
// its caps, so at most a few seconds).
func (c *Client) keep(ctx context.Context, h Handler, serves *sync.WaitGroup) error {
	for {
		c.down(h, "socket mode connecting")
		cn, err := c.connect(ctx)
		if ctx.Err() != nil {
			if cn != nil {
				cn.close() // dialled as Run was ending (another connection's refused token)
			}
			return nil
		}
		if err != nil {
			if errors.Is(err, ErrAuth) {
				return err
			}
			c.down(h, "socket mode connection error")
			continue // connect put the next open off (opens)
		}
		leaving := make(chan struct{}) // closed (once) when Slack asks cn to go after it worked
		ended := make(chan bool, 1)    // whether cn worked, once its serve returned
		serves.Go(func() { ended <- c.serve(ctx, cn, h, func() { close(leaving) }) })
		select {
		case <-leaving:
			if ctx.Err() != nil {
				return nil // its serve goes on to its end; Run waits for it
			}
			c.opens.worked() // it said hello: replaced at once
			continue
		case worked := <-ended:
			if ctx.Err() != nil {
				return nil
			}
			if !worked { // it never worked: do not redial in a tight loop
				c.opens.failed(nil)
				continue
			}
			c.opens.worked()
		}
	}
}

// connect asks apps.connections.open for a URL and dials it, in its turn among the client's
// connections (opens); a failure puts every connection's next open off by the backoff.
func (c *Client) connect(ctx context.Context) (*conn, error) {
	release, err := c.opens.turn(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	cn, err := c.dial(ctx)
	if err != nil && !errors.Is(err, ErrAuth) && ctx.Err() == nil {
		wait := c.opens.failed(err)
		c.log.Warn().Err(err).Dur("retry_in", wait).Msg("socket mode connection failed")
	}
	return cn, err
}

// dial opens one connection: a URL from apps.connections.open, dialled.
func (c *Client) dial(ctx context.Context) (*conn, error) {
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, url, err := c.api.StartSocketModeContext(octx)
	cancel()
	if err != nil {
		return nil, classifyOpen(err)
	}
	c.mu.Lock()
	c.dialled++
	id := c.dialled
	c.mu.Unlock()
	return dial(ctx, url, id, c.opts.TLSConfig, c.now, c.caps)
}

// classifyOpen wraps apps.connections.open's refusals of the token as ErrAuth (slack-go's
// client stops on the same codes, and on an HTTP 404).
func classifyOpen(err error) error {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "not_allowed_token_type":
			return fmt.Errorf("apps.connections.open: %w (%s)", ErrAuth, se.Err)
		}
	}
	if sc, ok := errors.AsType[slack.StatusCodeError](err); ok && sc.Code == http.StatusNotFound {
		return fmt.Errorf("apps.connections.open: %w (HTTP 404)", ErrAuth)
	}
	return fmt.Errorf("apps.connections.open: %w", err)
}

// serve reads cn until it fails or closes; Slack asking it to go (disconnect) and ctx ending
// both leave it as quiesce does, reading on until it is quiet. It reports whether cn worked: it
// said hello, and Slack did not refuse it for too many connections. replace is called (once)
// when Slack asks a connection that worked to go, but for too_many_websockets: keep then
// connects its replacement while serve goes on reading.
func (c *Client) serve(ctx context.Context, cn *conn, h Handler, replace func()) (worked bool) {
	why := "socket mode link closed"
	stop := context.AfterFunc(ctx, cn.quiesce) // goodbye once the link is quiet; the reading ends at Slack's close
	defer stop()
	defer func() {
		if ctx.Err() != nil {
			why = "shutting down"
		}
		c.retire(h, cn, why)
	}()
	defer cn.close()
	log := c.log.With().Int("socket", cn.id).Logger()
	var left sync.Once // a second disconnect on cn does not replace it again

	// The watchdog is a read deadline, pushed back by every ping and every frame: a frame read
	// late because a burst queued ahead of it proves the link alive as well as a ping does.
	var pushed time.Time
	deadline := func(now time.Time) {
		if now.Sub(pushed) > c.opts.PingInterval/8 {
			pushed = now
			_ = cn.ws.SetReadDeadline(now.Add(c.opts.PingInterval))
		}
	}
	deadline(time.Now())
	cn.ws.SetPingHandler(func(data string) error {
		deadline(time.Now())
		// WriteControl may run beside the data writer; a failure shows on the next read.
		_ = cn.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
		return nil
	})
	err := cn.frames(func(data []byte, read time.Time) bool {
		deadline(time.Now())
		f, err := parseFrame(data)
		if err != nil && f.EnvelopeID == "" {
			log.Warn().Err(err).Int("bytes", len(data)).Msg("socket mode: frame ignored")
			return false
		}
		switch f.Type {
		case TypeHello:
			worked = true
			log.Debug().Int("num_connections", f.NumConnections).Msg("socket mode hello")
			c.setLive(h, cn)
		case TypeDisconnect:
			// refresh_requested, warning (the link closes soon), link_disabled (Socket Mode
			// turned off: apps.connections.open will say so): reconnect, as slack-go does, while
			// the client's other connections serve. The connection is left as at a shutdown
			// (quiesce), not closed at once: Slack does not deliver a slash command or a click
			// again, so what it sent before it saw this end go is still read, acked and run.
			// Its replacement is connected at once (replace), as Slack advises, not once this
			// reading ends: with one connection the wait left no live connection for up to the
			// caps of quiesce, and an envelope read after the goodbye had none to take its ack.
			// too_many_websockets (the app's 10 sockets are taken, by all its replicas):
			// reconnecting at once would only be refused again, so it waits the backoff like a
			// connection that never worked (no early replacement).
			log.Info().Str("reason", f.Reason).Msg("socket mode: slack asked to reconnect")
			why = "slack asked to reconnect"
			if f.Reason == "too_many_websockets" {
				log.Warn().Int("connections", c.opts.Connections).
					Msg("socket mode: slack refused a connection: the app holds its 10 already (every replica's SOCKET_CONNECTIONS counted)")
				worked = false
			}
			cn.quiesce() // the reading ends at Slack's close, or goodbyeRead after the goodbye
			if worked {
				left.Do(replace)
			}
			return false
		default:
			e := &Envelope{ID: f.EnvelopeID, Type: f.Type, AcceptsResponsePayload: f.AcceptsResponsePayload,
				RetryAttempt: f.RetryAttempt, RetryReason: f.RetryReason, Command: f.command, Callback: f.callback,
				Received: read, client: c, conn: cn}
			if err != nil {
				// Acked bare so Slack does not deliver the same bad payload again.
				log.Warn().Err(err).Str("type", f.Type).Msg("socket mode: undecodable payload acked and dropped")
				if err := e.Ack(ctx, nil); err != nil {
					log.Warn().Err(err).Msg("socket mode: ack")
				}
				return false
			}
			h.Envelope(ctx, e)
		}
		return false
	})
	if err != nil && ctx.Err() == nil {
		log.Info().Err(err).Msg("socket mode connection ended")
	}
	return worked
}

// setLive adds cn to the live connections, which acks of closed connections may go to; the
// first makes the link up.
func (c *Client) setLive(h Handler, cn *conn) {
	c.linkMu.Lock()
	defer c.linkMu.Unlock()
	c.mu.Lock()
	c.live = append(c.live, cn)
	first := len(c.live) == 1
	c.changedLocked()
	c.reportLiveLocked()
	c.mu.Unlock()
	if first {
		h.Link(true, "")
	}
}

// retire takes cn off the live connections; the link is down, with why, when it was the last.
func (c *Client) retire(h Handler, cn *conn, why string) {
	c.linkMu.Lock()
	defer c.linkMu.Unlock()
	c.mu.Lock()
	n := len(c.live)
	c.live = slices.DeleteFunc(c.live, func(l *conn) bool { return l == cn })
	last := n > 0 && len(c.live) == 0
	if len(c.live) != n {
		c.changedLocked()
		c.reportLiveLocked()
	}
	c.mu.Unlock()
	if last {
		h.Link(false, why)
	}
}

// changedLocked wakes the acks waiting for a live connection (waitLive).
func (c *Client) changedLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// reportLiveLocked sets the Connections gauge (under mu, so two changes cannot report out of order).
func (c *Client) reportLiveLocked() {
	if g := c.opts.Metrics.Connections; g != nil {
		g.Set(float64(len(c.live)))
	}
}

// clock is the client's clock (see now).
func (c *Client) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// Live is how many of the client's connections are live now: said hello and have not closed
// (one Slack asked to go, or a shutdown's, is live until its reading ends, quiesce); the link is
// up while it is more than 0.
func (c *Client) Live() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.live)
}

// down reports the link down, with why, unless a connection is live.
func (c *Client) down(h Handler, why string) {
	c.linkMu.Lock()
	defer c.linkMu.Unlock()
	c.mu.Lock()
	n := len(c.live)
	c.mu.Unlock()
	if n == 0 {
		h.Link(false, why)
	}
}
