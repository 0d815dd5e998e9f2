package netsapiens

import (
	"context"
	"sync"
	"time"
)

// tokenMargin is how long before expires_in a cached token is replaced, so that a token
// never expires in flight.
const tokenMargin = 60 * time.Second

// oauthSource holds the OAuth2 access token: cached until shortly before it expires,
// refreshed with the refresh token (or a new password grant if that fails), and fetched once
// for all concurrent callers.
type oauthSource struct {
	c *Client

	mu       sync.Mutex
	access   string
	refresh  string
	expiry   time.Time
	inflight *tokenFetch
}

// tokenFetch is one token request that every concurrent caller waits for.
type tokenFetch struct {
	done  chan struct{}
	token string
	err   error
}

// tokenRequest is the POST /tokens body (AuthRequest, or the refresh variant).
type tokenRequest struct {
	GrantType    string `json:"grant_type"`
	ClientID     string `json:"client_id"`
	ClientSecret Secret `json:"client_secret"`
	Username     string `json:"username,omitempty"`
	Password     Secret `json:"password,omitempty"`
	RefreshToken Secret `json:"refresh_token,omitempty"`
}

// tokenReply is the part of AccessToken the client uses.
type tokenReply struct {
	AccessToken  Secret `json:"access_token"`
	RefreshToken Secret `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	TokenType    string `json:"token_type"`
}

// token returns a valid access token, fetching one if needed. Callers that arrive while a
// fetch runs wait for it (or for their own ctx).
func (o *oauthSource) token(ctx context.Context) (string, error) {
	o.mu.Lock()
	if o.access != "" && o.c.now().Before(o.expiry) {
		t := o.access
		o.mu.Unlock()
		return t, nil
	}
	f := o.inflight
	if f == nil {
		f = &tokenFetch{done: make(chan struct{})}
		o.inflight = f
		// The fetch outlives the caller that started it: the others are waiting for it too.
		go o.fetch(context.WithoutCancel(ctx), f)
	}
	o.mu.Unlock()
	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", ctxError(call{op: opToken, path: "/tokens"}, ctx, ctx.Err())
	}
}

// fetch gets a token by refresh grant if possible, else by password grant, and publishes it.
func (o *oauthSource) fetch(ctx context.Context, f *tokenFetch) {
	o.mu.Lock()
	refresh := o.refresh
	o.mu.Unlock()

	cfg := o.c.oauthConfig
	var (
		rep tokenReply
		err error
	)
	if refresh != "" {
		rep, err = o.request(ctx, tokenRequest{GrantType: "refresh_token", ClientID: cfg.ClientID,
			ClientSecret: cfg.ClientSecret, RefreshToken: Secret(refresh)})
		if err != nil {
			o.c.log.Info().Str("error", err.Error()).Msg("token refresh refused, using the password grant")
		}
	}
	if refresh == "" || err != nil {
		rep, err = o.request(ctx, tokenRequest{GrantType: "password", ClientID: cfg.ClientID,
			ClientSecret: cfg.ClientSecret, Username: cfg.Username, Password: cfg.Password})
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	o.inflight = nil
	if err != nil {
		f.err = err
		close(f.done)
		return
	}
	lifetime := time.Duration(rep.ExpiresIn) * time.Second
	margin := tokenMargin
	if lifetime <= 2*margin {
		margin = lifetime / 2 // a short-lived token is still used for half its life
	}
	o.access = rep.AccessToken.Reveal()
	o.refresh = rep.RefreshToken.Reveal()
	o.expiry = o.c.now().Add(lifetime - margin)
	f.token = o.access
	close(f.done)
}

// request makes one POST /tokens (with retries on transient errors: a token request creates
// nothing durable). A 200 without access_token is KindUnauthorized.
func (o *oauthSource) request(ctx context.Context, body tokenRequest) (tokenReply, error) {
	cl := call{op: opToken, path: "/tokens", body: body, secrets: []string{string(body.RefreshToken)}}
	rep, err := o.c.do(ctx, cl)
	if err != nil {
		return tokenReply{}, err
	}
	var tr tokenReply
	if err := decodeInto(cl, rep, &tr); err != nil {
		return tokenReply{}, err
	}
	if tr.AccessToken == "" {
		return tokenReply{}, &Error{Status: rep.status, Kind: KindUnauthorized, Message: "token reply has no access_token",
			Method: cl.method(), Path: cl.path}
	}
	return tr, nil
}

// invalidate drops the cached access token after a 401 with it, keeping the refresh token.
// A token already replaced by another caller's fetch is left alone.
func (o *oauthSource) invalidate(used string) {
	o.mu.Lock()
	if o.access == used {
		o.access = ""
	}
	o.mu.Unlock()
}

// current returns the tokens held, for scrubbing.
func (o *oauthSource) current() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return []string{o.access, o.refresh}
}
