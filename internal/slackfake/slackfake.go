// Package slackfake is a loopback Slack for tests and benchmarks: one HTTP server that
// the real, unmodified slack-go client talks to, both its Web API (form and JSON
// methods, response_urls) and Socket Mode (apps.connections.open, the WebSocket with
// hello, server pings, envelopes and acks).
//
// It speaks the wire protocol only and does not import slack-go, so that a change in
// slack-go's behaviour shows up as a failing test instead of being mirrored here. The
// facts it reproduces are in /work/shared/slack/SOCKETMODE.md; where Slack's behaviour
// is unknown the fake takes the stricter reading and says so in a comment.
//
// State is a small workspace (users, user groups, channels, IMs) plus a recorder of
// every Web API call, message, envelope and ack. WaitFor re-evaluates a condition after
// every recorded event, so tests never poll with sleeps.
package slackfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// Options configures a Server. Zero values take the defaults named per field.
type Options struct {
	AppToken string // app-level token expected on apps.connections.open; default "xapp-1-test"
	BotToken string // bot token expected on every other method; default "xoxb-test"

	// PingInterval is the period of the server's WebSocket Ping frames; default 2s.
	// It must be shorter than the client's socketmode.OptionPingInterval, or the
	// client's watchdog drops every socket.
	PingInterval time.Duration

	TeamID    string // default "T0001"
	AppID     string // default "A0001"
	BotUserID string // default "U0BOT"
	BotID     string // default "B0001"

	// RequireTextFallback makes a message with blocks but no text fail with no_text
	// instead of succeeding with the warning missing_text_fallback.
	RequireTextFallback bool

	// RateLimits turns on the rate-limit mode from the start: per Web API method, the limit
	// the fake enforces with HTTP 429 and Retry-After, as Slack does (SlackLimits() for
	// Slack's documented ones). nil, the default, enforces none. SetRateLimits changes it.
	RateLimits map[string]Limit

	// Logger receives the fake's debug lines (sockets, envelopes, faults). Tokens never
	// appear in it. The zero Logger discards everything.
	Logger zerolog.Logger
}

// String describes the options without the tokens.
func (o Options) String() string {
	return fmt.Sprintf("slackfake.Options{TeamID:%s AppID:%s BotUserID:%s BotID:%s PingInterval:%s}",
		o.TeamID, o.AppID, o.BotUserID, o.BotID, o.PingInterval)
}

func (o *Options) defaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&o.AppToken, "xapp-1-test")
	def(&o.BotToken, "xoxb-test")
	def(&o.TeamID, "T0001")
	def(&o.AppID, "A0001")
	def(&o.BotUserID, "U0BOT")
	def(&o.BotID, "B0001")
	if o.PingInterval <= 0 {
		o.PingInterval = 2 * time.Second
	}
}

// Message is one recorded message event, or the current version of a message.
type Message struct {
	// Method is chat.postMessage, chat.update, chat.postEphemeral, chat.delete,
	// response_url, or ack (a slash command ack whose payload carried a message). In a
	// current version it names the call that last changed the message.
	Method       string
	Channel      string
	TS           string
	ThreadTS     string
	User         string // the target of an ephemeral message; empty otherwise
	Text         string
	Blocks       json.RawMessage // compact JSON array, nil when the message has none
	ResponseType string          // response_url and ack only: in_channel or ephemeral
	Replace      bool            // response_url: replace_original
	Delete       bool            // response_url: delete_original
	Broadcast    bool            // chat.postMessage: a thread reply sent with reply_broadcast (also shown in the channel)
	At           time.Time
}

// APICall is one raw Web API request as received, whatever its outcome.
type APICall struct {
	Method string
	Form   url.Values      // form and query values, token replaced by "REDACTED"
	JSON   json.RawMessage // the body of a JSON request
	Error  string          // the Slack error answered ("ratelimited" for a 429), empty on success
	At     time.Time
}

// Ack is one acknowledgement frame received from the client.
type Ack struct {
	EnvelopeID string
	Payload    json.RawMessage // nil when the ack carried none
	Latency    time.Duration   // from the latest write of that envelope on a socket to the ack
	At         time.Time
}

// stored is a message's current version plus what the accessors need to filter it.
type stored struct {
	Message
	ephemeral bool
	deleted   bool
}

type user struct {
	id, name string
	bot      bool
}

type channel struct {
	id, name string
	member   bool
	im       bool
	imUser   string
}

type fault struct {
	n          int
	retryAfter int    // RateLimit
	code       string // FailMethod
	status     int    // FailHTTP
}

// Server is the loopback Slack. All methods are safe for concurrent use.
type Server struct {
	opts     Options
	log      zerolog.Logger
	srv      *httptest.Server
	upgrader websocket.Upgrader

	mu      sync.Mutex
	changed chan struct{}  // closed and replaced on every recorded event
	counts  []*countWaiter // WaitMessages and WaitAcks, woken only when their count is reached
	// acksRead is the acks read off the sockets and not yet recorded (socket.go); its own
	// locks, taken before s.mu.
	acksRead ackQueue
	closed   bool
	wg       sync.WaitGroup // socket goroutines

	users    map[string]user
	groups   map[string][]string
	channels map[string]*channel

	msgs       []*stored // channel and ephemeral messages in order of creation
	byKey      map[string]*stored
	events     []Message
	calls      []APICall
	acks       []Ack
	firstAck   map[string]Ack
	sentAt     map[string]time.Time
	envelopes  map[string]envelopeInfo
	responses  map[string]*responseTarget
	triggers   map[string]*trigger
	views      []*openView
	expireURLs bool

	seq       int64 // ts counter
	ids       int64 // other ids
	opens     int
	connects  int
	tickets   map[string]bool
	sockets   map[int]*socket
	nextSock  int
	stopPings bool
	noSocket  int // envelopes sent when no socket was live (NoSocketSends)
	limits    map[string]*fault
	failures  map[string]*fault
	httpFails map[string]*fault        // FailHTTP
	latency   map[string]time.Duration // SetLatency, by method ("*" = every method)
	sent      map[string][]byte        // the latest delivery of each envelope, for Redeliver
	limiter   *limiter                 // the rate-limit mode; nil = off
	stats     map[string]MethodStats   // per method, for Stats
}

// New starts a Server on a loopback port (127.0.0.1:0), like httptest.NewServer, and
// panics if it cannot listen. Call Close when done, or use Start.
func New(opts Options) *Server {
	opts.defaults()
	s := &Server{
		opts:      opts,
		log:       opts.Logger.With().Str("component", "slackfake").Logger(),
		changed:   make(chan struct{}),
		users:     map[string]user{},
		groups:    map[string][]string{},
		channels:  map[string]*channel{},
		byKey:     map[string]*stored{},
		sentAt:    map[string]time.Time{},
		firstAck:  map[string]Ack{},
		envelopes: map[string]envelopeInfo{},
		responses: map[string]*responseTarget{},
		triggers:  map[string]*trigger{},
		tickets:   map[string]bool{},
		sockets:   map[int]*socket{},
		limits:    map[string]*fault{},
		failures:  map[string]*fault{},
		httpFails: map[string]*fault{},
		latency:   map[string]time.Duration{},
		sent:      map[string][]byte{},
		stats:     map[string]MethodStats{},
	}
	s.setRateLimitsLocked(opts.RateLimits)
	s.users[opts.BotUserID] = user{id: opts.BotUserID, name: "compromised-bot", bot: true}
	// slack-go dials with Origin: https://api.slack.com, which the default CheckOrigin
	// refuses with 403 (and slack-go then loops on apps.connections.open forever).
	s.upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.handleAPI)
	mux.HandleFunc("/link/", s.handleLink)
	mux.HandleFunc("/response/", s.handleResponseURL)
	s.srv = httptest.NewServer(mux)
	return s
}

// TB is the part of testing.TB that Start uses, declared here so that no non-test package
// imports the testing package.
type TB interface {
	Helper()
	Cleanup(func())
}

// Start is New plus Close at the end of the test (pass the test's *testing.T or B).
func Start(tb TB, opts Options) *Server {
	tb.Helper()
	s := New(opts)
	tb.Cleanup(s.Close)
	return s
}

// URL is the server's base, "http://127.0.0.1:PORT".
func (s *Server) URL() string { return s.srv.URL }

// APIURL is the Web API base with its trailing slash, for slack.OptionAPIURL.
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// Close drops every socket and stops the server. It is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	socks := s.socketsLocked(false)
	s.notifyLocked()
	s.mu.Unlock()
	for _, so := range socks {
		_ = so.ws.Close()
	}
	s.srv.Close()
	s.wg.Wait()
}

// notifyLocked wakes every WaitFor, and the count waiters whose count is reached; s.mu must be
// held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
	s.wakeCountsLocked()
}

// WaitFor returns nil as soon as cond reports true, re-evaluating it after every
// recorded event (API call, message, envelope, ack, socket change). cond may call any
// accessor of s. It returns ctx's error, wrapped, when ctx ends first, or
// ErrClosed when the server is closed.
func (s *Server) WaitFor(ctx context.Context, cond func(*Server) bool) error {
	for {
		s.mu.Lock()
		ch, closed := s.changed, s.closed
		s.mu.Unlock()
		if cond(s) {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("slackfake: wait: %w", ctx.Err())
		}
	}
}

// ErrClosed is returned by waits and sends on a closed Server.
var ErrClosed = errors.New("slackfake: server closed")

// AddUser adds (or renames) a workspace user.
func (s *Server) AddUser(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id] = user{id: id, name: name}
	s.notifyLocked()
}

// AddUserGroup adds (or replaces) a user group and its members.
func (s *Server) AddUserGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = append([]string(nil), members...)
	s.notifyLocked()
}

// AddChannel adds (or replaces) a channel; botIsMember decides whether posting works or
// answers not_in_channel.
func (s *Server) AddChannel(id, name string, botIsMember bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[id] = &channel{id: id, name: name, member: botIsMember}
	s.notifyLocked()
}

// AddIM adds a direct-message channel between the bot and userID.
func (s *Server) AddIM(id, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[id] = &channel{id: id, member: true, im: true, imUser: userID}
	s.notifyLocked()
}

// SetBotMember changes whether the bot is a member of a known channel.
func (s *Server) SetBotMember(channelID string, member bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.channels[channelID]; ok {
		c.member = member
	}
	s.notifyLocked()
}

func key(channel, ts string) string { return channel + "|" + ts }

// nextTS hands out monotonic, unique message timestamps like 1700000000.000001.
func (s *Server) nextTSLocked() string {
	s.seq++
	return fmt.Sprintf("%d.%06d", 1700000000+s.seq/1000000, s.seq%1000000)
}

func (s *Server) nextIDLocked(prefix string) string {
	s.ids++
	return fmt.Sprintf("%s%d", prefix, s.ids)
}

// record appends a message event and wakes waiters; s.mu must be held.
func (s *Server) recordLocked(m Message) { s.recordAtLocked(m, time.Now()) }

// recordAtLocked is recordLocked of a message that showed at at (an ack's, when it was read).
func (s *Server) recordAtLocked(m Message, at time.Time) {
	m.At = at
	s.events = append(s.events, cloneMessage(m))
	s.notifyLocked()
}

// storeLocked adds a new message version to the workspace; s.mu must be held.
func (s *Server) storeLocked(m Message, ephemeral bool) *stored {
	st := &stored{Message: cloneMessage(m), ephemeral: ephemeral}
	if st.At.IsZero() { // an ack's message comes with the time it was read
		st.At = time.Now()
	}
	s.msgs = append(s.msgs, st)
	s.byKey[key(m.Channel, m.TS)] = st
	return st
}

func cloneMessage(m Message) Message {
	if m.Blocks != nil {
		m.Blocks = append(json.RawMessage(nil), m.Blocks...)
	}
	return m
}

func cloneMessages(ms []Message) []Message {
	out := make([]Message, len(ms))
	for i, m := range ms {
		out[i] = cloneMessage(m)
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// channelName is the channel's name, or "directmessage" for an IM, as slash command
// payloads say.
func (s *Server) channelNameLocked(id string) string {
	c, ok := s.channels[id]
	switch {
	case !ok:
		return ""
	case c.im:
		return "directmessage"
	default:
		return c.name
	}
}

func (s *Server) userNameLocked(id string) string {
	if u, ok := s.users[id]; ok {
		return u.name
	}
	return strings.ToLower(id)
}
