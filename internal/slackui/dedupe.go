package slackui

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// dedupeTTL is how long a delivery is remembered. Slack redelivers within minutes at most, and a
// double click arrives within seconds; a day is generous and still bounded.
const dedupeTTL = 24 * time.Hour

// seenSet recognises the same delivery arriving twice (a redelivered envelope, a second replica,
// a replayed click) with SET NX + TTL in Redis, so only the first one does anything. The engine's
// atomic step transitions are the real guarantee; this keeps the edge quiet too (no second
// "already done" message for one click).
type seenSet struct {
	rdb    redis.UniversalClient
	prefix string
}

// first reports whether key is seen for the first time. On a Redis error it answers true with
// the error: the engine still refuses a second run, so it is safer to go on than to drop a click.
func (s seenSet) first(ctx context.Context, key string) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.prefix+key, 1, dedupeTTL).Result()
	if err != nil {
		return true, fmt.Errorf("dedupe %s: %w", key, err)
	}
	return ok, nil
}
