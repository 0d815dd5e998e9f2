package session

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ParseRedisURL turns a REDIS_URL into go-redis universal options, for redis.NewUniversalClient.
// It is the one parser of the bot's Redis URLs (serve, drill and the tests use it):
//
//	redis://[user:pass@]host:port[/db]                          one server
//	redis://host:port?master_name=NAME[&addr=host:port…]        Sentinel (more sentinels as addr=)
//	redis://host:port?addr=host:port[&addr=host:port…]          a Cluster's seed nodes
//
// rediss:// is the same with TLS. Errors never contain the URL's passwords (userinfo, password=,
// sentinel_password=). Every form gets the bot's connection buffers (connBuffer).
func ParseRedisURL(raw string) (*redis.UniversalOptions, error) {
	o, err := parseRedisURL(raw)
	if err != nil {
		return nil, err
	}
	o.ReadBufferSize, o.WriteBufferSize = connBuffer, connBuffer
	o.PipelineReadBufferSize, o.PipelineWriteBufferSize = connBuffer, connBuffer
	return o, nil
}

// connBuffer sizes each Redis connection's read and write buffers. go-redis keeps 32 KiB of each
// per pooled connection (its default, sized for large replies and pipelines), and a burst fills
// the pool: 20 connections held 1.25 MiB of buffers, most of the bot's live heap besides the
// incidents. The bot's commands and replies are a few KiB (an incident's JSON, a page of audit
// entries); a larger reply is still read whole, in more reads. Measured on the 100-incident burst
// (BENCHMARKS.md): peak heap in use 8.8–9.7 MiB with 32 KiB, 7.0–7.8 MiB with 8 KiB. The same
// goes for go-redis's own pool of pipeline connections (the bot's pipelines and MULTI/EXEC
// blocks are a few commands each), whose buffers default to 128 KiB each way: its 10
// connections held 2.5 MiB, a third of the live heap at the burst's peak (BENCHMARKS.md, "Peak
// RSS at inflight=8").
const connBuffer = 8 << 10

func parseRedisURL(raw string) (*redis.UniversalOptions, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return nil, fmt.Errorf("must be a redis:// or rediss:// URL, got %q", RedactURL(raw))
	}
	q := u.Query()
	switch {
	case q.Get("master_name") != "":
		fo, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return nil, fmt.Errorf("sentinel URL %q: %s", RedactURL(raw), scrubPassword(err.Error(), u))
		}
		return &redis.UniversalOptions{
			Addrs: fo.SentinelAddrs, MasterName: fo.MasterName, DB: fo.DB, Username: fo.Username,
			Password: fo.Password, SentinelUsername: fo.SentinelUsername, SentinelPassword: fo.SentinelPassword,
			TLSConfig: fo.TLSConfig,
		}, nil
	case len(q["addr"]) > 0:
		co, err := redis.ParseClusterURL(raw)
		if err != nil {
			return nil, fmt.Errorf("cluster URL %q: %s", RedactURL(raw), scrubPassword(err.Error(), u))
		}
		return &redis.UniversalOptions{Addrs: co.Addrs, Username: co.Username, Password: co.Password,
			TLSConfig: co.TLSConfig, IsClusterMode: true}, nil
	default:
		o, err := redis.ParseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("%q: %s", RedactURL(raw), scrubPassword(err.Error(), u))
		}
		return &redis.UniversalOptions{Addrs: []string{o.Addr}, DB: o.DB, Username: o.Username,
			Password: o.Password, TLSConfig: o.TLSConfig}, nil
	}
}

// RedactURL hides a URL's password so that the URL can be shown in an error or a log line.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") || strings.Contains(raw, "password=") {
			return "(unparseable URL with credentials)"
		}
		return raw
	}
	q, hidden := u.Query(), false
	for _, k := range queryPasswords {
		if q.Has(k) {
			q.Set(k, "xxxxx")
			hidden = true
		}
	}
	if hidden {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// queryPasswords are the query parameters of a Redis URL that hold a password: a Sentinel URL
// gives the primary's as password= (go-redis takes the userinfo as the sentinels' own).
var queryPasswords = []string{"password", "sentinel_password"}

// urlPasswords are the passwords u holds, in its userinfo or its query.
func urlPasswords(u *url.URL) []string {
	var out []string
	if pw, ok := u.User.Password(); ok && pw != "" {
		out = append(out, pw)
	}
	q := u.Query()
	for _, k := range queryPasswords {
		for _, pw := range q[k] {
			if pw != "" {
				out = append(out, pw, url.QueryEscape(pw))
			}
		}
	}
	return out
}

// scrubPassword removes u's passwords from a go-redis parse error, which may quote the URL.
func scrubPassword(msg string, u *url.URL) string {
	for _, pw := range urlPasswords(u) {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	return msg
}

// DefaultPrefix is the key prefix of a Store whose Config.Prefix is empty.
const DefaultPrefix = "cr"

// CheckPrefix returns ErrInvalid (wrapped) unless p can prefix the store's keys: 1–32 characters of
// [A-Za-z0-9._-], so that it can neither hold a hash tag's braces nor the colon that separates the
// parts of a key. Every key is "<prefix>:…", the prefix outside any {hash tag}, so that a Cluster
// still places all of one user's keys in one slot whatever the prefix.
func CheckPrefix(p string) error {
	if !validName(p, 32) {
		return fmt.Errorf("key prefix %q must be 1–32 characters of A–Z a–z 0–9 . _ -: %w", p, ErrInvalid)
	}
	return nil
}

// Client is the go-redis client a Store runs on (single node, Sentinel or Cluster). It is an alias so
// that the test harness (internal/testenv) can hold one without importing go-redis: this package and
// cmd/bot are the only ones that do.
type Client = redis.UniversalClient

// NewClient parses a REDIS_URL (see ParseRedisURL) and returns a client on it; it does not dial.
func NewClient(raw string) (Client, error) {
	opt, err := ParseRedisURL(raw)
	if err != nil {
		return nil, err
	}
	return redis.NewUniversalClient(opt), nil
}

// ScanKeys lists the keys that match a SCAN pattern on every primary of a Cluster (or on the one
// server), in no particular order. Tests use it to find and drop the keys of their prefix.
func ScanKeys(ctx context.Context, c Client, match string) ([]string, error) {
	var (
		mu  sync.Mutex // ForEachMaster scans the primaries in parallel
		out []string
	)
	scan := func(ctx context.Context, c *redis.Client) error {
		var keys []string
		iter := c.Scan(ctx, 0, match, 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		mu.Lock()
		out = append(out, keys...)
		mu.Unlock()
		return iter.Err()
	}
	switch c := c.(type) {
	case *redis.ClusterClient:
		return out, c.ForEachMaster(ctx, scan)
	case *redis.Client:
		return out, scan(ctx, c)
	default:
		// A Sentinel URL gives a *redis.Client too; anything else is a new go-redis type.
		return nil, fmt.Errorf("scan keys: unexpected redis client type %T", c)
	}
}

// UnlinkKeys deletes keys with one UNLINK per key: in a Cluster they lie in many slots, and the
// pipeline routes each.
func UnlinkKeys(ctx context.Context, c Client, keys []string) error {
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Unlink(ctx, k)
		}
		return nil
	})
	return err
}
