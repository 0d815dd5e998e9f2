// Package netsapiens is a typed client for the NetSapiens API v2 (ns-api v2, spec v45): users,
// dial policies, devices, phones, JWT revocation, templated email, active calls, CDRs.
//
// It authenticates with an API key or the OAuth2 password grant (cached, refreshed, shared by
// concurrent callers), bounds concurrent requests (a waiting request is served by its Priority, so
// containment goes before cosmetic reads), retries only what is safe to retry (reads,
// PUTs, DELETEs; a create is checked before it is tried again), validates every path segment
// before a request is made, and keeps secrets out of logs, errors and the PBX's own request
// logs (see Secret and the operations table in operations.go).
//
// It speaks net/http directly rather than through resty. The retry rules are this client's
// own and are what keeps a runbook from doing a write twice: a create is never retried blindly
// but read back first, a DELETE that finds the resource gone after a lost reply is done, a 401
// refreshes the OAuth token once, every attempt holds a slot of the in-flight bound and its
// own timeout, and the backoff waits on an injectable clock. resty's retry conditions and
// hooks cannot express the read-back between attempts or the per-attempt slot without
// re-implementing this loop around them, and building a request, all that resty was left
// doing, is a few lines of net/http. Config.Observe is the per-request hook (for metrics).
package netsapiens

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxInflight = 8
	DefaultTimeout     = 15 * time.Second
	DefaultMaxRetries  = 3
	DefaultRetryBase   = 200 * time.Millisecond
	DefaultRetryMax    = 5 * time.Second
	// maxRetryAfter caps how long a Retry-After header can make a request wait.
	maxRetryAfter = time.Minute
)

// OAuthConfig holds the OAuth2 password-grant credentials (API.md §2.2).
type OAuthConfig struct {
	ClientID     string
	ClientSecret Secret
	Username     string // the login, often user@domain
	Password     Secret
}

// Config configures a Client. Exactly one of APIKey and OAuth is set.
type Config struct {
	// BaseURL is the API v2 base, e.g. "https://pbx.example.com/ns-api/v2". It must be
	// https, or http on a loopback host (127.0.0.0/8, ::1, localhost).
	BaseURL string
	// V1BaseURL is the legacy v1 API's endpoint, e.g. "https://pbx.example.com/ns-api/", for
	// the one thing only v1 can do (SetPortalPassword); "" = V1BaseFor(BaseURL).
	V1BaseURL string
	APIKey    Secret       // Bearer API key (nsr_…, nsd_…)
	OAuth     *OAuthConfig // or the password grant

	MaxInflight int           // most concurrent requests (waiters served by Priority); 0 = DefaultMaxInflight
	Timeout     time.Duration // per request attempt; 0 = DefaultTimeout
	MaxRetries  int           // retries after a transient error; 0 = DefaultMaxRetries, < 0 = none

	// RetryBaseDelay and RetryMaxDelay shape the exponential backoff (jittered 0.5–1.5×);
	// 0 = DefaultRetryBase, DefaultRetryMax.
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration

	Logger     zerolog.Logger
	HTTPClient *http.Client // optional; copied, never modified
	UserAgent  string       // optional

	// Observe, when set, is called once per request the client makes, after its retries, with
	// the operation's name (a fixed vocabulary such as "get_user" or "create_device"), how long
	// it took with its retries and waits, and the error it ended with (nil on success): the hook
	// for metrics. It must not block.
	Observe func(op string, took time.Duration, err error)

	// Now and Sleep replace the clock (token expiry) and the backoff wait in tests.
	// Sleep must return ctx's error when ctx ends first.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client is a NetSapiens API v2 client. It is safe for concurrent use.
type Client struct {
	base        string
	v1          string // the v1 endpoint, with its trailing "/"
	http        *http.Client
	observe     func(op string, took time.Duration, err error)
	log         zerolog.Logger
	sem         *prioritySem // MaxInflight slots, served by the request's Priority
	timeout     time.Duration
	maxRetries  int
	retryBase   time.Duration
	retryMax    time.Duration
	now         func() time.Time
	sleep       func(ctx context.Context, d time.Duration) error
	userAgent   string
	apiKey      Secret
	oauth       *oauthSource
	oauthConfig OAuthConfig
}

// New validates cfg and returns a Client. It makes no request. Returns a KindInvalid *Error
// listing every problem (never a secret's value).
func New(cfg Config) (*Client, error) {
	var problems []string
	base, err := checkBaseURL(cfg.BaseURL)
	if err != nil {
		problems = append(problems, err.Error())
	}
	switch {
	case cfg.APIKey != "" && cfg.OAuth != nil:
		problems = append(problems, "set either APIKey or OAuth, not both")
	case cfg.APIKey == "" && cfg.OAuth == nil:
		problems = append(problems, "set APIKey or OAuth")
	case cfg.OAuth != nil:
		for name, empty := range map[string]bool{
			"OAuth.ClientID": cfg.OAuth.ClientID == "", "OAuth.ClientSecret": cfg.OAuth.ClientSecret == "",
			"OAuth.Username": cfg.OAuth.Username == "", "OAuth.Password": cfg.OAuth.Password == "",
		} {
			if empty {
				problems = append(problems, name+" is empty")
			}
		}
	}
	if strings.ContainsAny(string(cfg.APIKey), " \t\r\n") {
		problems = append(problems, "APIKey contains whitespace")
	}
	v1raw := cfg.V1BaseURL
	if v1raw == "" && base != "" {
		v1raw = V1BaseFor(base)
	}
	v1, err := checkBaseURL(v1raw)
	if err != nil && base != "" {
		problems = append(problems, "V1"+err.Error())
	}
	if cfg.MaxInflight < 0 {
		problems = append(problems, "MaxInflight is negative")
	}
	if cfg.Timeout < 0 {
		problems = append(problems, "Timeout is negative")
	}
	if cfg.RetryBaseDelay < 0 || cfg.RetryMaxDelay < 0 {
		problems = append(problems, "retry delays are negative")
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, invalidf("config: %s", strings.Join(problems, "; "))
	}

	c := &Client{
		base:       base,
		v1:         v1 + "/",
		log:        cfg.Logger.With().Str("component", "netsapiens").Logger(),
		timeout:    orDefault(cfg.Timeout, DefaultTimeout),
		maxRetries: cfg.MaxRetries,
		retryBase:  orDefault(cfg.RetryBaseDelay, DefaultRetryBase),
		retryMax:   orDefault(cfg.RetryMaxDelay, DefaultRetryMax),
		now:        cfg.Now,
		sleep:      cfg.Sleep,
		userAgent:  cfg.UserAgent,
		apiKey:     cfg.APIKey,
		observe:    cfg.Observe,
	}
	inflight := orDefault(cfg.MaxInflight, DefaultMaxInflight)
	c.sem = newPrioritySem(inflight)
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	if c.userAgent == "" {
		c.userAgent = "compromised-responder-bot (netsapiens-v2)"
	}
	hc := &http.Client{Transport: pooledTransport(inflight)}
	if cfg.HTTPClient != nil {
		copied := *cfg.HTTPClient
		hc = &copied
	}
	// A redirect is never followed: it would carry the Bearer token to wherever it points.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = hc
	if cfg.OAuth != nil {
		c.oauthConfig = *cfg.OAuth
		c.oauth = &oauthSource{c: c}
	}
	return c, nil
}

// pooledTransport is http.DefaultTransport's settings with room to keep one idle connection per
// request slot: the default keeps 2 per host, so past 2 requests in flight every request opened a
// new connection (a TCP and TLS handshake, one or two round trips more, before the request) and
// closed it after, which under a burst put a handshake in front of most PBX calls.
func pooledTransport(inflight int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = inflight
	t.MaxIdleConns = max(t.MaxIdleConns, inflight)
	return t
}

// checkBaseURL enforces https, or http only on a loopback host, and returns the URL without
// a trailing slash.
func checkBaseURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("BaseURL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", errors.New("BaseURL is not an absolute URL")
	}
	if u.User != nil {
		return "", errors.New("BaseURL must not carry credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("BaseURL must not have a query or fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !IsLoopback(u.Hostname()) {
			return "", errors.New("BaseURL must be https (http only on a loopback host)")
		}
	default:
		return "", errors.New("BaseURL must be https (http only on a loopback host)")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// IsLoopback reports whether host (a URL's Hostname, or a listen address's host) names this
// machine: "localhost" or an address in 127.0.0.0/8 or ::1. It is the project's one rule for
// where plain http (and the simulator's demo credentials) may go.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// logTagKey is the context key of the X-NetSapiens-Log tag.
type logTagKey struct{}

// WithLogTag returns a context whose requests carry "X-NetSapiens-Log: tag", which turns on the
// PBX's detailed logging for them (e.g. the incident ID). A request whose request or answer can
// hold a secret is never tagged (see opSpec.secret). A tag with characters outside printable
// ASCII, or longer than 128, is not sent.
func WithLogTag(ctx context.Context, tag string) context.Context {
	return context.WithValue(ctx, logTagKey{}, tag)
}

func logTag(ctx context.Context) string {
	tag, _ := ctx.Value(logTagKey{}).(string)
	if tag == "" || len(tag) > 128 {
		return ""
	}
	for i := 0; i < len(tag); i++ {
		if tag[i] < 0x20 || tag[i] > 0x7e {
			return ""
		}
	}
	return tag
}

// Format prints the configuration without any secret, for every fmt verb. (Without it, a
// mismatched verb such as %d makes fmt print nested fields raw, bypassing Secret.Format.)
func (cfg Config) Format(f fmt.State, _ rune) {
	auth := "none"
	switch {
	case cfg.OAuth != nil && cfg.APIKey != "":
		auth = "api-key+oauth"
	case cfg.OAuth != nil:
		auth = fmt.Sprintf("oauth %v", *cfg.OAuth)
	case cfg.APIKey != "":
		auth = "api-key " + redacted
	}
	fmt.Fprintf(f, "netsapiens.Config{BaseURL: %s, auth: %s, MaxInflight: %d, Timeout: %s, MaxRetries: %d}",
		cfg.BaseURL, auth, cfg.MaxInflight, cfg.Timeout, cfg.MaxRetries)
}

// Format prints the OAuth settings with the client secret and password redacted, for every verb.
func (o OAuthConfig) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "{ClientID: %s, Username: %s, ClientSecret: %s, Password: %s}", o.ClientID, o.Username, redacted, redacted)
}

// MarshalJSON encodes the configuration without its secrets (a Config is never sent to the
// PBX, so nothing needs the values in JSON; a logger that JSON-encodes it stays safe).
func (cfg Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		BaseURL     string        `json:"base_url"`
		APIKeySet   bool          `json:"api_key_set"`
		OAuth       *OAuthConfig  `json:"oauth,omitempty"`
		MaxInflight int           `json:"max_inflight"`
		Timeout     time.Duration `json:"timeout"`
		MaxRetries  int           `json:"max_retries"`
	}{cfg.BaseURL, cfg.APIKey != "", cfg.OAuth, cfg.MaxInflight, cfg.Timeout, cfg.MaxRetries})
}

// MarshalJSON encodes the OAuth settings without the client secret and password.
func (o OAuthConfig) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ClientID string `json:"client_id"`
		Username string `json:"username"`
	}{o.ClientID, o.Username})
}

// Version returns the server's API version (GET /version). Errors: KindTransient,
// KindUnauthorized, KindForbidden, KindInternal, or the context's error.
func (c *Client) Version(ctx context.Context) (Version, error) {
	var v Version
	err := c.get(ctx, opVersion, "/version", nil, &v)
	return v, err
}

// String describes the client without any credential.
func (c *Client) String() string {
	auth := "api-key"
	if c.oauth != nil {
		auth = "oauth"
	}
	return fmt.Sprintf("netsapiens.Client{base: %s, auth: %s}", c.base, auth)
}

// V1BaseFor derives the v1 endpoint from a v2 base: "https://h/ns-api/v2" → "https://h/ns-api/"
// (API.md §1: v2 is https://{server}/ns-api/v2, v1 https://{server}/ns-api/).
func V1BaseFor(v2 string) string {
	b := strings.TrimRight(v2, "/")
	if i := strings.LastIndex(b, "/"); i >= 0 && strings.EqualFold(b[i+1:], "v2") {
		b = b[:i]
	}
	return b + "/"
}
