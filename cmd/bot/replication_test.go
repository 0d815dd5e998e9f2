package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/session"
)

// REDIS_MIN_REPLICAS: auto by default, a number from 0 to 16, anything else a clear error.
func TestSeq2MinReplicasConfig(t *testing.T) {
	for _, tc := range []struct {
		val  string
		want int
		bad  bool
	}{{"", session.MinReplicasAuto, false}, {"auto", session.MinReplicasAuto, false}, {"0", 0, false},
		{"2", 2, false}, {"17", 0, true}, {"-1", 0, true}, {"two", 0, true}} {
		env := goodEnv()
		env["REDIS_MIN_REPLICAS"] = tc.val
		c, err := loadConfig("serve", nil, envMap(env), noFiles, needs{slack: true, pbx: true})
		switch {
		case tc.bad && (err == nil || !strings.Contains(err.Error(), "REDIS_MIN_REPLICAS must be auto or a whole number")):
			t.Errorf("REDIS_MIN_REPLICAS=%q: %v, want a clear error", tc.val, err)
		case !tc.bad && (err != nil || c.RedisMinReplicas != tc.want):
			t.Errorf("REDIS_MIN_REPLICAS=%q = %d, %v; want %d", tc.val, c.RedisMinReplicas, err, tc.want)
		}
	}
	if _, err := loadConfig("serve", []string{"-h"}, envMap(goodEnv()), noFiles, needs{}); err == nil ||
		!strings.Contains(err.Error(), "REDIS_MIN_REPLICAS") {
		t.Errorf("-h does not list REDIS_MIN_REPLICAS: %v", err)
	}
}

// /readyz shows the replication start-up found and names an open incident that does not decode.
func TestSeq10ReadyzNamesUndecodableIncidents(t *testing.T) {
	h := &health{link: func() (bool, string) { return true, "" }, redis: []string{"redis: role master, 1 connected replica(s)"},
		undecodable: func() []string { return []string{"INC-BAD123"} }}
	srv := httptest.NewServer(routes(h, prometheus.NewRegistry(), zerolog.Nop()))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r readiness
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if len(r.Redis) != 1 || !strings.Contains(r.Redis[0], "1 connected replica") {
		t.Errorf("readyz redis = %q", r.Redis)
	}
	if !strings.Contains(strings.Join(r.Warnings, "\n"), "INC-BAD123 does not decode") {
		t.Errorf("readyz warnings = %q; want the undecodable incident", r.Warnings)
	}
}
