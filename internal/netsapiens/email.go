package netsapiens

import (
	"context"
)

// SendEmail sends a templated email to the user's address (POST …/users/{u}/email
// {template, subject}). It is not retried (a retry could send it twice): on KindTransient the
// caller decides. Errors: KindInvalid (bad path segment, empty template or subject: no
// request made), KindNotFound, KindUnauthorized, KindForbidden, KindTransient, KindInternal,
// or the context's error.
func (c *Client) SendEmail(ctx context.Context, domain, user, template, subject string) error {
	p, err := userPath(domain, user)
	if err != nil {
		return err
	}
	if template == "" || subject == "" {
		return invalidf("email template and subject are required")
	}
	body := struct {
		Template string `json:"template"`
		Subject  string `json:"subject"`
	}{template, subject}
	_, err = c.do(ctx, call{op: opSendEmail, path: p + "/email", body: body})
	return err
}
