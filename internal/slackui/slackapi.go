package slackui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// rateLimitRetries bounds how often one call waits out a 429 before giving up.
const rateLimitRetries = 5

// slackAPI is the part of the Web API the app calls, with an error metric per method. Its calls
// wait for the pacer (pacer.go) so they stay under Slack's limits; its client waits out a 429
// itself (retryOption); other errors are returned as they are.
type slackAPI struct {
	c *slack.Client
	m *Metrics
	p *pacer // nil = unpaced
}

// retryOption is slack-go's retry on 429 only: it waits Retry-After under the call's context and
// sends the call again, at most rateLimitRetries times. A 429 means Slack did nothing, so even
// chat.postMessage is safe to repeat; a connection error or a 5xx may have posted, so those are
// never retried. Each 429 waited out is counted like any other Slack error. apiURL is the Web API
// base the client calls (to name the method of a request).
func retryOption(apiURL string, m *Metrics, p *pacer) slack.Option {
	cfg := slack.RetryConfig{MaxRetries: rateLimitRetries, RetryAfterDuration: time.Second}
	cfg.Handlers = []slack.RetryHandler{countedRetry{next: slack.NewRateLimitErrorRetryHandler(cfg), apiURL: apiURL, m: m, p: p}}
	return slack.OptionRetryConfig(cfg)
}

// countedRetry counts each retry its handler grants in SlackAPIErrors{method, "ratelimited"},
// and tells the pacer of each 429 (it then paces that method at Slack's rate).
type countedRetry struct {
	next   slack.RetryHandler
	apiURL string
	m      *Metrics
	p      *pacer // nil = none
}

// ShouldRetry implements slack.RetryHandler.
func (h countedRetry) ShouldRetry(state *slack.RetryState, req *http.Request, resp *http.Response, err error) (bool, time.Duration) {
	retry, wait := h.next.ShouldRetry(state, req, resp, err)
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
		h.p.saw429(h.method(req))
		if watched(req.Context(), wait, true) {
			retry = false // a watched post is sent again by its caller, rendered anew (postWatch)
		}
	}
	if retry {
		h.m.SlackAPIErrors.WithLabelValues(h.method(req), "ratelimited").Inc()
	}
	return retry, wait
}

// method names a request as the app's metrics do: the Web API method, or "response_url".
func (h countedRetry) method(req *http.Request) string { return apiMethod(h.apiURL, req) }

// apiMethod names a request to the Web API at apiURL by its method (chat.update), and any other
// request (a response_url post) "response_url".
func apiMethod(apiURL string, req *http.Request) string {
	u := *req.URL
	u.RawQuery, u.Fragment = "", ""
	if m, ok := strings.CutPrefix(u.String(), apiURL); ok && m != "" && !strings.Contains(m, "/") {
		return m
	}
	return "response_url"
}

// fail counts a failed call and names its method in the error.
func (s slackAPI) fail(method string, err error) error {
	if err == nil {
		return nil
	}
	s.m.SlackAPIErrors.WithLabelValues(method, slackCode(err)).Inc()
	return fmt.Errorf("slack %s: %w", method, err)
}

// slackCode is a short, fixed-vocabulary name of a Slack error for metrics and decisions.
func slackCode(err error) string {
	var se slack.SlackErrorResponse
	var sep *slack.SlackErrorResponse
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	switch {
	case errors.As(err, &se):
		return se.Err
	case errors.As(err, &sep):
		return sep.Err
	case errors.As(err, &rl):
		return "ratelimited"
	case errors.As(err, &sc):
		return fmt.Sprintf("http_%d", sc.Code)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "transport"
}

func msgOptions(text string, blocks []slack.Block) []slack.MsgOption {
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if blocks != nil {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	return opts
}

func (s slackAPI) post(ctx context.Context, channel, threadTS, text string, blocks []slack.Block) (string, error) {
	done, err := s.p.post(ctx, channel)
	if err != nil {
		return "", s.fail("chat.postMessage", err)
	}
	defer done()
	return s.send(ctx, channel, threadTS, text, blocks)
}

// send is chat.postMessage once the pacer allowed it.
func (s slackAPI) send(ctx context.Context, channel, threadTS, text string, blocks []slack.Block) (string, error) {
	opts := msgOptions(text, blocks)
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	_, ts, err := s.c.PostMessageContext(ctx, channel, opts...)
	return ts, s.fail("chat.postMessage", err)
}

// threadLine posts audit lines as one thread reply if the channel has a slot for it now (no
// card waiting), else returns errPaced without calling Slack.
func (s slackAPI) threadLine(ctx context.Context, channel, threadTS, text string) (string, error) {
	if err := s.p.tryReply(channel); err != nil {
		return "", err
	}
	return s.send(ctx, channel, threadTS, text, nil)
}

// reply posts a thread reply that is also shown in the channel when broadcast is set
// (reply_broadcast).
func (s slackAPI) reply(ctx context.Context, channel, threadTS, text string, broadcast bool) (string, error) {
	done, err := s.p.post(ctx, channel)
	if err != nil {
		return "", s.fail("chat.postMessage", err)
	}
	defer done()
	opts := append(msgOptions(text, nil), slack.MsgOptionTS(threadTS))
	if broadcast {
		opts = append(opts, slack.MsgOptionBroadcast())
	}
	_, ts, err := s.c.PostMessageContext(ctx, channel, opts...)
	return ts, s.fail("chat.postMessage", err)
}

// update replaces a message once the pacer allows a chat.update. render is called after the
// wait, so the message gets what is newest when it is sent (not when the update was asked for);
// render's error ends the update unsent.
func (s slackAPI) update(ctx context.Context, channel, ts string, render func(context.Context) (string, []slack.Block, error)) error {
	if err := s.p.waitUpdate(ctx); err != nil {
		return s.fail("chat.update", err)
	}
	text, blocks, err := render(ctx)
	if err != nil {
		return err
	}
	_, _, _, err = s.c.UpdateMessageContext(ctx, channel, ts, msgOptions(text, blocks)...)
	return s.fail("chat.update", err)
}

func (s slackAPI) ephemeral(ctx context.Context, channel, user, text string, blocks []slack.Block) error {
	if err := s.p.waitEphemeral(ctx); err != nil {
		return s.fail("chat.postEphemeral", err)
	}
	_, err := s.c.PostEphemeralContext(ctx, channel, user, msgOptions(text, blocks)...)
	return s.fail("chat.postEphemeral", err)
}

// openView opens a modal (views.open, Tier 4) within the trigger of the click that asked for it.
func (s slackAPI) openView(ctx context.Context, triggerID string, view slack.ModalViewRequest) error {
	_, err := s.c.OpenViewContext(ctx, triggerID, view)
	return s.fail("views.open", err)
}

// respond posts an ephemeral reply through a response_url (works where the bot is not a member).
func (s slackAPI) respond(ctx context.Context, responseURL, text string, blocks []slack.Block) error {
	opts := append(msgOptions(text, blocks), slack.MsgOptionResponseURL(responseURL, slack.ResponseTypeEphemeral))
	_, _, err := s.c.PostMessageContext(ctx, "", opts...)
	return s.fail("response_url", err)
}

// replaceEphemeral replaces the ephemeral message a click came from, through the click's
// response_url.
func (s slackAPI) replaceEphemeral(ctx context.Context, responseURL, text string, blocks []slack.Block) error {
	opts := append(msgOptions(text, blocks), slack.MsgOptionReplaceOriginal(responseURL))
	_, _, err := s.c.PostMessageContext(ctx, "", opts...)
	return s.fail("response_url", err)
}

// permalink is the URL of a message (chat.getPermalink needs no scope).
func (s slackAPI) permalink(ctx context.Context, channel, ts string) (string, error) {
	link, err := s.c.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: channel, Ts: ts})
	return link, s.fail("chat.getPermalink", err)
}

func (s slackAPI) groupMembers(ctx context.Context, group string) ([]string, error) {
	out, err := s.c.GetUserGroupMembersContext(ctx, group)
	return out, s.fail("usergroups.users.list", err)
}

func (s slackAPI) channelInfo(ctx context.Context, channel string) (*slack.Channel, error) {
	ch, err := s.c.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: channel})
	return ch, s.fail("conversations.info", err)
}

func (s slackAPI) authTest(ctx context.Context) (*slack.AuthTestResponse, error) {
	r, err := s.c.AuthTestContext(ctx)
	return r, s.fail("auth.test", err)
}
