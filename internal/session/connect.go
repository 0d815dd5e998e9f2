package session

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ParseRedisURL turns a REDIS_URL into go-redis universal options, for redis.NewUniversalClient.
// It is the one parser of the bot's Redis URLs (serve, drill and the tests use it):
//
//	redis://[user:pass@]host:port[/db]                          one server
//	redis://host:port?master_name=NAME[&addr=host:port…]        Sentinel (more sentinels as addr=)
//	redis://host:port?addr=host:port[&addr=host:port…]          a Cluster's seed nodes
//
// rediss:// is the same with TLS. Errors never contain the URL's password.
func ParseRedisURL(raw string) (*redis.UniversalOptions, error) {
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
		if strings.Contains(raw, "@") {
			return "(unparseable URL with credentials)"
		}
		return raw
	}
	return u.Redacted()
}

// scrubPassword removes u's password from a go-redis parse error, which may quote the URL.
func scrubPassword(msg string, u *url.URL) string {
	if pw, ok := u.User.Password(); ok && pw != "" {
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
