package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/lockdown"
	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackui"
)

// runServe validates the configuration and runs the Slack bot until ctx ends.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("serve", args, getenv, os.ReadFile, needs{slack: true, pbx: true})
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	owner := replicaID()
	log = log.With().Str("replica", owner).Logger()
	log.Info().Str("version", version).Msg("starting bot serve")
	defer startProfiles(getenv(profileDirEnv), log)()
	warnings := cfg.warnings()

	ropts, err := session.ParseRedisURL(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err) // validated already; kept for safety
	}
	rdb := redis.NewUniversalClient(ropts)
	defer rdb.Close()
	store, err := session.New(session.Config{Client: rdb, AuditKey: cfg.AuditKey,
		Retention: cfg.Retention, Prefix: cfg.RedisKeyPrefix, MinReplicas: cfg.RedisMinReplicas,
		Logger: log.With().Str("component", "session").Logger()})
	if err != nil {
		return fmt.Errorf("incident store: %w", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	dw, err := store.CheckDurability(dctx)
	cancel()
	if err != nil {
		// Not fatal: /readyz stays red until Redis answers, and the process keeps trying.
		log.Error().Err(err).Msg("redis does not answer at start-up")
		warnings = append(warnings, "Redis durability could not be checked at start-up (Redis did not answer)")
	}
	warnings = append(warnings, dw...)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	replication, rw, err := store.CheckReplication(rctx) // logs what it found
	cancel()
	if err != nil {
		log.Error().Err(err).Msg("redis replication could not be read at start-up")
		warnings = append(warnings, "Redis replication could not be checked at start-up (Redis did not answer)")
	}
	warnings = append(warnings, rw...)
	for _, w := range warnings {
		log.Warn().Msg(w)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newIncidentGauges(store.ListOpen, log.With().Str("component", "metrics").Logger()),
		newUndecodableGauge(store.Undecodable))
	registerBuildInfo(reg)
	runbook := newRunbookMetrics(reg)
	nsCfg := netsapiensConfig(cfg, log)
	nsCfg.Observe = pbxCallCounter(reg)
	pbx, err := netsapiens.New(nsCfg)
	if err != nil {
		return fmt.Errorf("netsapiens client: %w", err)
	}
	changes := slackui.NewChanges()
	ecfg, err := engineConfig(cfg, owner, log, changes)
	if err != nil {
		return err
	}
	ecfg.Observer = runbook
	eng, err := remediate.New(pbx, store, ecfg)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}

	lockdowns, err := lockdown.New(pbx, eng, store, lockdown.Config{Parallel: 2 * cfg.NSMaxInflight, DenyPolicy: cfg.NSDenyPolicy,
		Owner: owner, Notifier: changes, Logger: log.With().Str("component", "lockdown").Logger()})
	if err != nil {
		return fmt.Errorf("lockdowns: %w", err)
	}

	metrics := slackui.NewMetrics(reg)
	app, err := slackui.New(slackui.Config{
		BotToken: cfg.SlackBotToken, AppToken: cfg.SlackAppToken, APIURL: cfg.SlackAPIURL,
		Responders: cfg.Responders, Approvers: cfg.Approvers, ApprovalBroadcast: cfg.ApprovalBroadcast, ApprovalSteps: ecfg.ApprovalSteps, AuditChannel: cfg.AuditChannel,
		DenyPolicy: cfg.NSDenyPolicy, ResetEmail: cfg.NSResetTemplate != "", PortalPassword: cfg.NSV1PortalPassword,
		RemindAfter: cfg.RemindAfter, RemindEvery: cfg.RemindEvery, Workers: cfg.Workers, QueueSize: cfg.QueueSize,
		SocketConnections: cfg.SocketConnections,
		Logger:            log.With().Str("component", "slackui").Logger(), Observer: runbook, Lockdowns: lockdowns,
	}, eng, store, changes, metrics)
	if err != nil {
		return fmt.Errorf("slack app: %w", err)
	}

	h := &health{ping: store.Ping, link: app.Link, warnings: warnings, redis: replication, undecodable: store.Undecodable}
	srv, addr, err := listen(cfg.HTTPAddr, routes(h, reg, log), log)
	if err != nil {
		return err
	}
	announce(stdout, cfg.LogFormat, addr)
	log.Info().Str("addr", addr).Msg("http listening")

	hctx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	go h.probe(hctx)
	// The lockdowns' fan-outs are resumed by every replica (each run once, under its lease).
	go lockdowns.RunReconciler(hctx, 0)

	runErr := app.Run(ctx)
	stopProbe()
	lctx, lcancel := context.WithTimeout(context.Background(), 5*time.Second)
	lockdowns.Shutdown(lctx) // what is left is resumed by another replica's reconciler
	lcancel()
	eng.Wait() // the evidence reads still in flight (bounded) land before Redis closes
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = srv.Shutdown(sctx)
	cancel()
	if runErr != nil {
		log.Error().Err(runErr).Msg("stopped")
		if errors.Is(runErr, slackui.ErrInvalidAuth) {
			return fmt.Errorf("slack: %w", runErr)
		}
		return runErr
	}
	log.Info().Msg("stopped cleanly")
	return nil
}

// pbxCallCounter counts the PBX requests by operation and result (the netsapiens error kind, or
// "ok"), for /metrics: the client's Observe hook. Labels are fixed vocabularies: never a user, a
// domain or a value.
func pbxCallCounter(reg prometheus.Registerer) func(op string, took time.Duration, err error) {
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "compromised_pbx_calls_total",
		Help: "NetSapiens API calls made by the engine, by operation and result."}, []string{"op", "result"})
	// Buckets from 5 ms to ~10 s: a healthy PBX answers in tens of milliseconds, a retried one
	// in seconds; the alert on a slow PBX reads the upper buckets.
	took := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "compromised_pbx_request_duration_seconds",
		Help:    "NetSapiens API request duration (with retries and their waits), by operation.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"op"})
	reg.MustRegister(calls, took)
	return func(op string, d time.Duration, err error) {
		result := "ok"
		if err != nil {
			result = string(netsapiens.KindOf(err))
		}
		calls.WithLabelValues(op, result).Inc()
		took.WithLabelValues(op).Observe(d.Seconds())
	}
}

// listen binds addr (":0" and "127.0.0.1:0" pick a free port) and serves h on it.
func listen(addr string, h http.Handler, log zerolog.Logger) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("HTTP_ADDR %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: stdLogger(log, "http")}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("http server")
		}
	}()
	return srv, ln.Addr().String(), nil
}

// announce prints the bound address on stdout ("listening on http://…"), as a JSON line when
// LOG_FORMAT=json, so scripts and tests can find a port picked with :0.
func announce(w io.Writer, format, addr string) {
	url := "http://" + addr
	if format == "json" {
		fmt.Fprintf(w, "{\"level\":\"info\",\"http\":%q,\"message\":\"listening on %s\"}\n", url, url)
		return
	}
	fmt.Fprintf(w, "listening on %s\n", url)
}

// replicaID names this process in leases: hostname, pid and a random suffix (two processes with
// the same pid in different containers must still differ).
func replicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "bot"
	}
	host = strings.ReplaceAll(host, ":", "-")
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}
