// Package slacksocket is the bot's Socket Mode client: it keeps the WebSocket link to Slack,
// hands each request envelope (decoded once into slack-go's types) to the app on the reading
// goroutine, and writes the acks.
//
// Why not slack-go's socketmode.Client: under a burst of 200 `/compromised help` it cost the bot
// 77–107 µs of CPU per envelope and an ack p99 of ~20 ms (BENCHMARKS.md, "Socket Mode ack
// path"): gorilla's ReadJSON into a RawMessage, a hand-off to a parsing goroutine, the request
// and its payload decoded again (slack.SlashCommand decodes itself twice), a hand-off to the
// app's loop, then the ack marshalled, handed to a writer goroutine and written with one
// syscall each (JSON ~40 % of that CPU, the write syscalls 17 %). Here a frame is read, decoded
// once (a slash command by a one-pass scanner, fastSlashFrame; the rest by encoding/json into
// slack-go's types) and answered by the goroutine that read it, and the acks of frames read
// together leave in one write (corkConn): 82–94 → 29–33 µs of the bot's CPU per command. What slack-go's client does for the protocol is kept: the URL from
// apps.connections.open (through slack-go's Web API client), hello, disconnect (reconnect at
// once), server pings answered and watched (no ping nor frame for PingInterval: the link is dead),
// reconnect with backoff (Retry-After of a 429 honoured; a refused token ends Run), the 20 KiB
// ack limit, and the link state for /readyz.
package slacksocket

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
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

// Handler is what the client delivers to. Both methods are called on a connection's reading
// goroutine: Envelope must ack (Envelope.Ack) and return without blocking on anything slow (no
// Web API call, no Redis); what must wait calls Envelope.Flush first, so the acks held back
// for one write (see corkConn) are not held with it.
type Handler interface {
	Envelope(ctx context.Context, e *Envelope)
	// Link is told when the link goes up (a connection said hello) or down, with why.
	Link(up bool, why string)
}

// Options configures a Client.
type Options struct {
	// PingInterval is the most time allowed between Slack's pings (or any frame) before the
	// connection is taken for dead and replaced; 0 = 30 s.
	PingInterval time.Duration
	Logger       zerolog.Logger
	// TLSConfig is for the wss:// dial; nil = the system's roots (tests give their own CA).
	TLSConfig *tls.Config
}

// Client keeps one Socket Mode connection up while Run runs.
type Client struct {
	api  Opener
	opts Options
	log  zerolog.Logger

	mu      sync.Mutex
	live    *conn         // the connection that said hello and was not told to go; nil = none
	changed chan struct{} // closed when live changes
	dialled int
}

// ErrAuth is returned (wrapped) by Run when Slack refuses the app-level token.
var ErrAuth = errors.New("slack refused the app-level token")

// New makes a Client; api must carry the app-level token (slack.OptionAppLevelToken).
func New(api Opener, opts Options) *Client {
	if opts.PingInterval <= 0 {
		opts.PingInterval = 30 * time.Second
	}
	return &Client{api: api, opts: opts, log: opts.Logger, changed: make(chan struct{})}
}

// Run keeps the link up until ctx ends (nil) or Slack refuses the token (ErrAuth, wrapped).
// Everything else (a refused dial, a dropped connection, a disconnect request) is retried: at
// once after a connection that worked, else after a backoff from 100 ms doubling to 5 min (a
// 429's Retry-After when longer), as slack-go does.
func (c *Client) Run(ctx context.Context, h Handler) error {
	b := backoff{initial: 100 * time.Millisecond, max: 5 * time.Minute}
	for {
		h.Link(false, "socket mode connecting")
		cn, err := c.connect(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, ErrAuth) {
				return err
			}
			wait := b.next()
			if rl, ok := errors.AsType[*slack.RateLimitedError](err); ok {
				wait = max(wait, rl.RetryAfter)
			}
			c.log.Warn().Err(err).Dur("retry_in", wait).Msg("socket mode connection failed")
			h.Link(false, "socket mode connection error")
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			continue
		}
		hello, why := c.serve(ctx, cn, h)
		if ctx.Err() != nil {
			return nil
		}
		h.Link(false, why)
		if !hello { // it never worked: do not redial in a tight loop
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(b.next()):
			}
			continue
		}
		b.reset()
	}
}

// connect asks apps.connections.open for a URL and dials it.
func (c *Client) connect(ctx context.Context) (*conn, error) {
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
	cn, err := dial(ctx, url, id, c.opts.TLSConfig)
	if err != nil {
		return nil, err
	}
	return cn, nil
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

// serve reads cn until it fails, Slack asks to disconnect, or ctx ends; it reports whether cn
// said hello and why it ended.
func (c *Client) serve(ctx context.Context, cn *conn, h Handler) (hello bool, why string) {
	stop := context.AfterFunc(ctx, cn.close)
	defer stop()
	defer c.retire(cn)
	defer cn.close()
	log := c.log.With().Int("socket", cn.id).Logger()

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
	why = "socket mode link closed"
	err := cn.frames(func(data []byte) bool {
		now := time.Now()
		deadline(now)
		f, err := parseFrame(data)
		if err != nil && f.EnvelopeID == "" {
			log.Warn().Err(err).Int("bytes", len(data)).Msg("socket mode: frame ignored")
			return false
		}
		switch f.Type {
		case TypeHello:
			hello = true
			c.setLive(cn)
			log.Debug().Int("num_connections", f.NumConnections).Msg("socket mode hello")
			h.Link(true, "")
		case TypeDisconnect:
			// refresh_requested, warning (the link closes soon), link_disabled (Socket Mode
			// turned off: apps.connections.open will say so): reconnect now, as slack-go does.
			// Envelopes not read yet are not acked, so Slack delivers them on the next link.
			log.Info().Str("reason", f.Reason).Msg("socket mode: slack asked to reconnect")
			why = "slack asked to reconnect"
			return true
		default:
			e := &Envelope{ID: f.EnvelopeID, Type: f.Type, AcceptsResponsePayload: f.AcceptsResponsePayload,
				RetryAttempt: f.RetryAttempt, RetryReason: f.RetryReason, Command: f.command, Callback: f.callback,
				Received: now, client: c, conn: cn}
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
	return hello, why
}

// setLive makes cn the connection acks of closed connections go to.
func (c *Client) setLive(cn *conn) {
	c.mu.Lock()
	c.live = cn
	c.changedLocked()
	c.mu.Unlock()
}

// retire forgets cn as the live connection.
func (c *Client) retire(cn *conn) {
	c.mu.Lock()
	if c.live == cn {
		c.live = nil
		c.changedLocked()
	}
	c.mu.Unlock()
}

// changedLocked wakes the acks waiting for the live connection (waitLive) to change.
func (c *Client) changedLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Ack acknowledges the envelope with payload (nil: a bare ack; a json.RawMessage is sent as
// is). The ack goes on the connection the envelope came on, or, when that one has closed, on
// the live one (waiting for it until ctx ends). Errors: ErrAckTooBig (nothing sent), a payload
// that does not marshal, ctx's error (wrapped) when no connection took it in time.
func (e *Envelope) Ack(ctx context.Context, payload any) error { return e.AckWithin(ctx, payload, 0) }

// AckWithin is Ack waiting at most wait (0: until ctx ends) for a live connection when the
// envelope's own has closed. The bound costs nothing while the envelope's connection is open:
// its timer is only made when there is a wait (a context.WithTimeout around every ack was
// ≈ 7 % of the bot's CPU per command under a burst of `/compromised help`).
func (e *Envelope) AckWithin(ctx context.Context, payload any, wait time.Duration) error {
	body, err := ackBody(payload)
	if err != nil {
		return err
	}
	buf := ackBufs.Get().(*[]byte)
	defer ackBufs.Put(buf)
	data, err := appendAck((*buf)[:0], e.ID, body)
	*buf = data[:0]
	if err != nil {
		return err
	}
	cn, bounded := e.conn, false
	for {
		if cn != nil && cn.isOpen() {
			if err := cn.write(data); err == nil {
				return nil
			} else if cn.isOpen() {
				cn.close() // a write error: the connection is dead, its reader ends
			}
		}
		if wait > 0 && !bounded {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, wait)
			defer cancel()
			bounded = true
		}
		if cn, err = e.client.waitLive(ctx, cn); err != nil {
			return fmt.Errorf("ack %s: %w", e.ID, err)
		}
	}
}

// ackBufs holds the buffers acks are built in: a frame is copied into gorilla's write buffer
// before the write returns, so its buffer is free again once the ack is written, and a burst of
// acks costs no allocation of a frame each.
var ackBufs = sync.Pool{New: func() any { return new([]byte) }}

// Flush sends the acks the envelope's connection holds back for one write (see Handler).
func (e *Envelope) Flush() {
	if e.conn != nil {
		_ = e.conn.flush() // an error shows on the reader's next Read
	}
}

// waitLive returns the live connection other than failed, waiting for one until ctx ends.
func (c *Client) waitLive(ctx context.Context, failed *conn) (*conn, error) {
	for {
		c.mu.Lock()
		live, ch := c.live, c.changed
		c.mu.Unlock()
		if live != nil && live != failed && live.isOpen() {
			return live, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("no live socket mode connection: %w", ctx.Err())
		}
	}
}

// backoff is an exponential wait (slack-go's: from initial, doubling, at most max), with a
// little jitter so replicas that lost Slack together do not all come back in the same instant.
type backoff struct {
	initial, max time.Duration
	attempts     int
}

func (b *backoff) next() time.Duration {
	d := b.max
	if b.attempts < 30 {
		d = min(b.initial<<b.attempts, b.max)
	}
	b.attempts++
	return d + rand.N(d/10+1)
}

func (b *backoff) reset() { b.attempts = 0 }
