package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// Redis is one test's share of the shared test Redis.
type Redis struct {
	// Client talks to TEST_REDIS_URL: a *redis.Client, or a *redis.ClusterClient for a Cluster URL.
	Client session.Client
	// URL is TEST_REDIS_URL, for code that builds its own client (`bot serve`'s REDIS_URL).
	URL string
	// Prefix is this test's key prefix, for session.Config.Prefix (and REDIS_KEY_PREFIX): no other
	// test, in this or another test binary, uses it. All prefixes have the same length, so
	// "<Prefix>*" matches this test's keys only.
	Prefix string
}

// NewRedis returns a client on the shared test Redis and a fresh key prefix. When the test ends,
// every key that starts with the prefix is deleted (found by SCAN on every primary) and the
// client is closed. It skips the test (fails it under CI) when TEST_REDIS_URL is not set.
func NewRedis(tb TB) *Redis {
	tb.Helper()
	url := os.Getenv("TEST_REDIS_URL")
	if url == "" {
		skipOrFail(tb, "TEST_REDIS_URL is not set")
	}
	return newRedis(tb, url, true)
}

// Redis returns a client on the private server with a fresh key prefix, like NewRedis; the keys
// are not deleted at the end (the server and its directory go with the test).
func (s *TestServer) Redis() *Redis {
	s.tb.Helper()
	return newRedis(s.tb, s.URL(), false)
}

func newRedis(tb TB, url string, drop bool) *Redis {
	tb.Helper()
	c, err := session.NewClient(url)
	if err != nil {
		tb.Fatalf("TEST_REDIS_URL: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	r := &Redis{Client: c, URL: url, Prefix: "t-" + hex.EncodeToString(b[:])}
	tb.Cleanup(func() {
		defer r.Client.Close()
		if !drop {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Drop(ctx); err != nil {
			tb.Fatalf("delete the test's keys %s*: %v", r.Prefix, err)
		}
	})
	return r
}

// Key is Prefix + ":" + name: the name of one of the test's keys as a Store with this prefix
// spells it (e.g. Key("open") is the set of open incidents).
func (r *Redis) Key(name string) string { return r.Prefix + ":" + name }

// Keys lists the test's keys (on every primary of a Cluster), in no particular order.
func (r *Redis) Keys(ctx context.Context) ([]string, error) {
	return session.ScanKeys(ctx, r.Client, r.Prefix+"*")
}

// Dump returns each of the test's keys with its type and value as text ("hash map[f:v …]"), for
// tests that scan everything the store wrote (no secret in clear).
func (r *Redis) Dump(ctx context.Context) (map[string]string, error) {
	keys, err := r.Keys(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		typ, err := r.Client.Type(ctx, k).Result()
		if err != nil {
			return nil, err
		}
		var val any
		switch typ {
		case "string":
			val, err = r.Client.Get(ctx, k).Result()
		case "hash":
			val, err = r.Client.HGetAll(ctx, k).Result()
		case "list":
			val, err = r.Client.LRange(ctx, k, 0, -1).Result()
		case "set":
			val, err = r.Client.SMembers(ctx, k).Result()
		case "zset":
			val, err = r.Client.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "stream":
			val, err = r.Client.XRange(ctx, k, "-", "+").Result()
		case "none": // expired between SCAN and TYPE
			continue
		default:
			return nil, fmt.Errorf("key %s has type %s, which Dump cannot read", k, typ)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		out[k] = fmt.Sprintf("%s %v", typ, val)
	}
	return out, nil
}

// Drop deletes the test's keys.
func (r *Redis) Drop(ctx context.Context) error {
	keys, err := r.Keys(ctx)
	if err != nil {
		return err
	}
	return session.UnlinkKeys(ctx, r.Client, keys)
}
