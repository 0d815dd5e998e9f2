package session_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/compromised-responder/bot/internal/session"
)

// TestParseRedisURL: every REDIS_URL form the README documents (one server, Sentinel, Cluster),
// each with the bot's 8 KiB connection buffers (not go-redis's 32 KiB).
func TestParseRedisURL(t *testing.T) {
	tests := []struct {
		url     string
		addrs   []string
		master  string
		cluster bool
		db      int
	}{
		{"redis://localhost:6379/2", []string{"localhost:6379"}, "", false, 2},
		{"rediss://u:pw@localhost:6380", []string{"localhost:6380"}, "", false, 0},
		{"redis://s1:26379?master_name=mymaster&addr=s2:26379", []string{"s1:26379", "s2:26379"}, "mymaster", false, 0},
		{"redis://n1:7000?addr=n2:7001&addr=n3:7002", []string{"n1:7000", "n2:7001", "n3:7002"}, "", true, 0},
	}
	for _, tc := range tests {
		o, err := session.ParseRedisURL(tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if d := cmp.Diff([]any{o.Addrs, o.MasterName, o.IsClusterMode, o.DB, o.ReadBufferSize, o.WriteBufferSize,
			o.PipelineReadBufferSize, o.PipelineWriteBufferSize},
			[]any{tc.addrs, tc.master, tc.cluster, tc.db, 8 << 10, 8 << 10, 8 << 10, 8 << 10}); d != "" {
			t.Errorf("%s (-got +want):\n%s", tc.url, d)
		}
	}
}

func TestParseRedisURLRefusesWithoutLeakingThePassword(t *testing.T) {
	for _, u := range []string{
		"http://localhost:6379",
		"redis://:hunter2-SECRET@localhost:6379/notanumber",
		"redis://:hunter2-SECRET@n1:7000?addr=n2&addr=n3:7002",
		"redis://:hunter2-SECRET@s1:26379?master_name=m&db=x",
	} {
		_, err := session.ParseRedisURL(u)
		if err == nil {
			t.Errorf("%s: no error", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter2-SECRET") {
			t.Errorf("%s: the error shows the password: %v", u, err)
		}
	}
}

// TestRedactURLHidesQueryPasswords: a Sentinel URL takes the primary's password as ?password=
// (go-redis reads the userinfo as the sentinels' own) and may name sentinel_password=; neither
// may show in a refusal or in a redacted URL (the CLI's "redis at … does not answer").
func TestRedactURLHidesQueryPasswords(t *testing.T) {
	for _, u := range []string{
		"redis://s1:26379?master_name=m&password=hunter2-SECRET&db=x",
		"redis://s1:26379?master_name=m&sentinel_password=hunter2-SECRET&dial_timeout=zz",
		"redis://n1:7000?addr=n2:7001&password=hunter2-SECRET&dial_timeout=zz",
	} {
		_, err := session.ParseRedisURL(u)
		if err == nil {
			t.Errorf("%s: no error", u)
		} else if strings.Contains(err.Error(), "hunter2-SECRET") {
			t.Errorf("%s: the error shows the password: %v", u, err)
		}
		if r := session.RedactURL(u); strings.Contains(r, "hunter2-SECRET") || !strings.Contains(r, "s1:26379") && !strings.Contains(r, "n1:7000") {
			t.Errorf("RedactURL(%s) = %s", u, r)
		}
	}
	if o, err := session.ParseRedisURL("redis://s1:26379?master_name=m&password=pw1"); err != nil || o.Password != "pw1" {
		t.Errorf("the primary's password of a Sentinel URL: %v, %v", o, err)
	}
}

func TestCheckPrefix(t *testing.T) {
	for _, p := range []string{"cr", "t-0a1b2c3d4e5f", "team.bot_2"} {
		if err := session.CheckPrefix(p); err != nil {
			t.Errorf("CheckPrefix(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"", "a:b", "{cr}", "a b", strings.Repeat("x", 33)} {
		if err := session.CheckPrefix(p); !errors.Is(err, session.ErrInvalid) {
			t.Errorf("CheckPrefix(%q) = %v, want ErrInvalid", p, err)
		}
	}
}
