package slackui

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"
)

// maxRateLimitRetries bounds how often one call waits out a 429 before giving up.
const maxRateLimitRetries = 5

// slackAPI is the part of the Web API the app calls, with 429 handling (wait Retry-After under
// ctx, then try again: a 429 means Slack did nothing, so even chat.postMessage is safe to
// repeat) and an error metric per method. Other errors are returned as they are.
type slackAPI struct {
	c *slack.Client
	m *Metrics
}

// call runs fn, retrying it after a rate limit.
func (s slackAPI) call(ctx context.Context, method string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		s.m.SlackAPIErrors.WithLabelValues(method, slackCode(err)).Inc()
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) || attempt >= maxRateLimitRetries {
			return fmt.Errorf("slack %s: %w", method, err)
		}
		wait := max(rl.RetryAfter, 100*time.Millisecond)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("slack %s: waiting out a rate limit: %w", method, ctx.Err())
		case <-t.C:
		}
	}
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
	opts := msgOptions(text, blocks)
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	var ts string
	err := s.call(ctx, "chat.postMessage", func() error {
		var err error
		_, ts, err = s.c.PostMessageContext(ctx, channel, opts...)
		return err
	})
	return ts, err
}

func (s slackAPI) update(ctx context.Context, channel, ts, text string, blocks []slack.Block) error {
	return s.call(ctx, "chat.update", func() error {
		_, _, _, err := s.c.UpdateMessageContext(ctx, channel, ts, msgOptions(text, blocks)...)
		return err
	})
}

func (s slackAPI) ephemeral(ctx context.Context, channel, user, text string, blocks []slack.Block) error {
	return s.call(ctx, "chat.postEphemeral", func() error {
		_, err := s.c.PostEphemeralContext(ctx, channel, user, msgOptions(text, blocks)...)
		return err
	})
}

// respond posts an ephemeral reply through a response_url (works where the bot is not a member).
func (s slackAPI) respond(ctx context.Context, responseURL, text string, blocks []slack.Block) error {
	opts := append(msgOptions(text, blocks), slack.MsgOptionResponseURL(responseURL, slack.ResponseTypeEphemeral))
	return s.call(ctx, "response_url", func() error {
		_, _, err := s.c.PostMessageContext(ctx, "", opts...)
		return err
	})
}

// permalink is the URL of a message (chat.getPermalink needs no scope).
func (s slackAPI) permalink(ctx context.Context, channel, ts string) (string, error) {
	var link string
	err := s.call(ctx, "chat.getPermalink", func() error {
		var err error
		link, err = s.c.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: channel, Ts: ts})
		return err
	})
	return link, err
}

func (s slackAPI) groupMembers(ctx context.Context, group string) ([]string, error) {
	var out []string
	err := s.call(ctx, "usergroups.users.list", func() error {
		var err error
		out, err = s.c.GetUserGroupMembersContext(ctx, group)
		return err
	})
	return out, err
}

func (s slackAPI) channelInfo(ctx context.Context, channel string) (*slack.Channel, error) {
	var ch *slack.Channel
	err := s.call(ctx, "conversations.info", func() error {
		var err error
		ch, err = s.c.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: channel})
		return err
	})
	return ch, err
}

func (s slackAPI) authTest(ctx context.Context) (*slack.AuthTestResponse, error) {
	var r *slack.AuthTestResponse
	err := s.call(ctx, "auth.test", func() error {
		var err error
		r, err = s.c.AuthTestContext(ctx)
		return err
	})
	return r, err
}
