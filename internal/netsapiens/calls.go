package netsapiens

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// ListCalls lists a user's active calls (GET …/users/{u}/calls). Errors: as GetUser.
func (c *Client) ListCalls(ctx context.Context, domain, user string) ([]ActiveCall, error) {
	p, err := userPath(domain, user)
	if err != nil {
		return nil, err
	}
	return getList[ActiveCall](ctx, c, opListCalls, p+"/calls", nil)
}

// EndCall disconnects one of a user's active calls (DELETE …/users/{u}/calls/{id}, id from
// ActiveCall.ID). A retried delete that finds the call gone is a success. Errors: KindInvalid
// (bad path segment, no request made), KindNotFound (no such call), KindUnauthorized,
// KindForbidden, KindTransient, KindInternal, or the context's error.
func (c *Client) EndCall(ctx context.Context, domain, user, callID string) error {
	p, err := userPath(domain, user)
	if err != nil {
		return err
	}
	if err := ValidateCallID(callID); err != nil {
		return err
	}
	_, err = c.do(ctx, call{op: opEndCall, path: p + "/calls/" + url.PathEscape(callID)})
	return err
}

// maxPage is the spec's largest limit.
const maxPage = 1000

// ListCDRs reads up to limit of a user's call detail records between from and to
// (GET …/users/{u}/cdrs?datetime-start&datetime-end&start&limit), paging by 1000.
// Errors: KindInvalid (bad path segment, limit < 1 or to before from: no request made),
// KindNotFound, KindUnauthorized, KindForbidden, KindTransient, KindInternal, or the
// context's error.
func (c *Client) ListCDRs(ctx context.Context, domain, user string, from, to time.Time, limit int) ([]CDR, error) {
	p, err := userPath(domain, user)
	if err != nil {
		return nil, err
	}
	if limit < 1 {
		return nil, invalidf("CDR limit must be at least 1")
	}
	if to.Before(from) {
		return nil, invalidf("CDR time range ends before it starts")
	}
	all := []CDR{}
	for len(all) < limit {
		page := min(limit-len(all), maxPage)
		q := url.Values{}
		q.Set("datetime-start", from.UTC().Format(time.RFC3339))
		q.Set("datetime-end", to.UTC().Format(time.RFC3339))
		q.Set("start", strconv.Itoa(len(all)))
		q.Set("limit", strconv.Itoa(page))
		got, err := getList[CDR](ctx, c, opListCDRs, p+"/cdrs", q)
		if err != nil {
			return nil, err
		}
		all = append(all, got...)
		if len(got) < page {
			break
		}
	}
	if len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}
