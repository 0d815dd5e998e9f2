package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// logTimeFormat stamps every line in UTC with milliseconds: steps take milliseconds, and two
// replicas' lines must sort into the order they happened.
const logTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// zerolog's time format and clock are process-wide; this process has one format, set before any
// goroutine logs.
func init() {
	zerolog.TimeFieldFormat = logTimeFormat
	zerolog.TimestampFunc = func() time.Time { return time.Now().UTC() }
}

// newLogger builds the process logger: JSON lines (the default, for log shippers) or a console
// format for people. Every library that logs is pointed at it (slack-go through slackui's
// adapter, go-redis and net/http here), so with LOG_FORMAT=json every line is JSON.
func newLogger(format, level string, w io.Writer) zerolog.Logger {
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: logTimeFormat}
	}
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || lvl == zerolog.NoLevel {
		lvl = zerolog.InfoLevel
	}
	l := zerolog.New(w).Level(lvl).With().Timestamp().Logger()
	setRedisLogger(l)
	return l
}

// stdLogger adapts a zerolog.Logger to a *log.Logger (http.Server.ErrorLog and friends).
func stdLogger(l zerolog.Logger, component string) *log.Logger {
	return log.New(lineWriter{l: l.With().Str("component", component).Logger()}, "", 0)
}

// lineWriter logs each Write as one warning line.
type lineWriter struct{ l zerolog.Logger }

func (w lineWriter) Write(p []byte) (int, error) {
	w.l.Warn().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// go-redis has one process-wide logger; it forwards to the logger of the newest run (tests
// start several runs in one process, one after another or side by side).
var (
	redisLogOnce sync.Once
	redisLogSink atomic.Pointer[zerolog.Logger]
)

type redisLogger struct{}

func (redisLogger) Printf(_ context.Context, format string, v ...any) {
	if l := redisLogSink.Load(); l != nil {
		l.Warn().Str("component", "go-redis").Msg(strings.TrimSpace(fmt.Sprintf(format, v...)))
	}
}

func setRedisLogger(l zerolog.Logger) {
	redisLogSink.Store(&l)
	redisLogOnce.Do(func() { redis.SetLogger(redisLogger{}) })
}
