package main

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// redisProbeEvery keeps /readyz within 5 s of Redis going away (probe period + probe timeout).
const redisProbeEvery = time.Second

// health tracks what /readyz reports: Redis answering (probed in the background, so the
// endpoint never blocks on Redis) and the Socket Mode link, plus start-up warnings.
type health struct {
	ping     func(ctx context.Context) error
	link     func() (bool, string)
	warnings []string
	// redis is what start-up found of the Redis replication (one line per primary).
	redis []string
	// undecodable lists open incidents the store skips because they no longer decode; may be nil.
	undecodable func() []string

	mu       sync.Mutex
	redisErr string // "" = Redis answered the last probe
	probed   bool
}

func (h *health) probe(ctx context.Context) {
	t := time.NewTicker(redisProbeEvery)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, redisProbeEvery)
		err := h.ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		h.mu.Lock()
		h.probed = true
		h.redisErr = ""
		if err != nil {
			h.redisErr = "redis does not answer"
		}
		h.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readiness is the /readyz body.
type readiness struct {
	Ready    bool     `json:"ready"`
	Problems []string `json:"problems"`
	Warnings []string `json:"warnings"`
	// Redis is the replication found at start-up, one line per primary.
	Redis []string `json:"redis"`
}

func (h *health) state() readiness {
	r := readiness{Problems: []string{}, Warnings: append([]string{}, h.warnings...), Redis: append([]string{}, h.redis...)}
	if h.undecodable != nil {
		for _, id := range h.undecodable() {
			r.Warnings = append(r.Warnings, "incident "+id+" does not decode: resume, list and reminders skip it; repair or discard it by hand")
		}
	}
	h.mu.Lock()
	switch {
	case !h.probed:
		r.Problems = append(r.Problems, "redis not probed yet")
	case h.redisErr != "":
		r.Problems = append(r.Problems, h.redisErr)
	}
	h.mu.Unlock()
	if up, why := h.link(); !up {
		if why == "" {
			why = "socket mode link down"
		}
		r.Problems = append(r.Problems, why)
	}
	r.Ready = len(r.Problems) == 0
	return r
}

// routes is the one place the HTTP endpoints are listed.
func routes(h *health, reg *prometheus.Registry, log zerolog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		r := h.state()
		w.Header().Set("Content-Type", "application/json")
		if !r.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(r)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: stdLogger(log, "metrics"), Registry: reg}))
	return mux
}
