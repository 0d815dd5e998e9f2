package main

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func healthcheck(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"bot", "healthcheck"}, args...), envMap(env), nil, &stdout, &stderr)
	return stdout.String() + stderr.String(), err
}

// A ready `bot serve` passes the image's HEALTHCHECK, found through HTTP_ADDR as serve reads it.
func TestHealthcheckPassesOnAReadyBot(t *testing.T) {
	w := newWorld(t)
	b := w.start()
	addr := strings.TrimPrefix(b.url, "http://")
	if out, err := healthcheck(t, map[string]string{"HTTP_ADDR": addr}); err != nil || !strings.Contains(out, `"ready":true`) {
		t.Fatalf("healthcheck of a ready bot: %v\n%s", err, out)
	}
	_, port, _ := net.SplitHostPort(addr)
	if out, err := healthcheck(t, nil, "-http-addr", ":"+port); err != nil { // a wildcard host means this machine
		t.Fatalf("healthcheck -http-addr :%s: %v\n%s", port, err, out)
	}
	b.stop(t)
	if _, err := healthcheck(t, map[string]string{"HTTP_ADDR": addr}); err == nil {
		t.Fatal("healthcheck passed with the bot stopped")
	}
}

// /readyz answering 503 (Redis not answering yet, Socket Mode down) fails the check, naming why.
func TestHealthcheckFailsWhenNotReady(t *testing.T) {
	h := &health{link: func() (bool, string) { return false, "socket mode link closed" }}
	srv := httptest.NewServer(routes(h, prometheus.NewRegistry(), zerolog.Nop()))
	defer srv.Close()
	_, err := healthcheck(t, map[string]string{"HTTP_ADDR": strings.TrimPrefix(srv.URL, "http://")})
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "socket mode link closed") {
		t.Fatalf("healthcheck of a bot that is not ready: %v", err)
	}
	if _, err := healthcheck(t, map[string]string{"HTTP_ADDR": "nonsense"}); err == nil || !strings.Contains(err.Error(), "HTTP_ADDR") {
		t.Fatalf("bad HTTP_ADDR: %v", err)
	}
}
