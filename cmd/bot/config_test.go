package main

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func envMap(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func goodEnv() map[string]string {
	return map[string]string{
		"SLACK_APP_TOKEN": "xapp-1-secretapp",
		"SLACK_BOT_TOKEN": "xoxb-secretbot",
		"NS_API_URL":      "https://pbx.example.com/ns-api/v2",
		"NS_API_KEY":      "nsr_secretkey",
		"RESPONDERS":      "U111,U222,S0ONCALL",
	}
}

func noFiles(string) ([]byte, error) { return nil, os.ErrNotExist }

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadConfig("serve", nil, envMap(goodEnv()), noFiles, needs{slack: true, pbx: true})
	if err != nil {
		t.Fatal(err)
	}
	got := []any{c.SlackAPIURL, c.NSDenyPolicy, c.NSMaxInflight, c.RedisURL, c.Approvers, c.ApprovalSteps, c.ApprovalTTL,
		c.PINLength, c.RemindAfter, c.RemindEvery, c.Retention, c.Workers, c.QueueSize, c.SocketConnections, c.HTTPAddr, c.LogLevel, c.LogFormat}
	want := []any{"https://slack.com/api/", "Deny All", 8, "redis://localhost:6379/0", []string{"S0ONCALL", "U111", "U222"},
		[]string{"restore"}, time.Hour, 6, 30 * time.Minute, 2 * time.Hour, 2160 * time.Hour, 16, 1000, 2, ":8080", "info", "json"}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("defaults (-got +want):\n%s", d)
	}
}

func TestLoadConfigProblems(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		wants []string // each must appear in the error
	}{
		{"everything missing", map[string]string{}, nil, []string{"SLACK_APP_TOKEN is required", "SLACK_BOT_TOKEN is required", "RESPONDERS is required", "NS_API_URL is required", "NS_API_KEY is required"}},
		{"wrong token kinds", map[string]string{"SLACK_APP_TOKEN": "xoxb-a", "SLACK_BOT_TOKEN": "xapp-b"}, nil, []string{"SLACK_APP_TOKEN must start with xapp-", "SLACK_BOT_TOKEN must start with xoxb-"}},
		{"http pbx off loopback", map[string]string{"NS_API_URL": "http://pbx.example.com/ns-api/v2"}, nil, []string{"NS_API_URL must be an https:// URL"}},
		{"both auth kinds", map[string]string{"NS_CLIENT_ID": "id"}, nil, []string{"not both"}},
		{"bad ids", map[string]string{"RESPONDERS": "U1x,alice"}, nil, []string{`RESPONDERS: "U1x"`, `RESPONDERS: "alice"`}},
		{"bad steps", map[string]string{"APPROVAL_STEPS": "restore,reboot"}, nil, []string{`unknown step "reboot"`}},
		{"bad numbers", map[string]string{"PIN_LENGTH": "3", "WORKERS": "x", "QUEUE_SIZE": "0", "APPROVAL_TTL": "soon"}, nil, []string{"PIN_LENGTH must be", "WORKERS must be", "QUEUE_SIZE must be", "APPROVAL_TTL must be"}},
		{"socket connections", map[string]string{"SOCKET_CONNECTIONS": "5"}, nil, []string{`SOCKET_CONNECTIONS must be a whole number from 1 to 4, got "5"`}},
		{"no socket connection", map[string]string{"SOCKET_CONNECTIONS": "0"}, nil, []string{`SOCKET_CONNECTIONS must be a whole number from 1 to 4, got "0"`}},
		{"bad keys", map[string]string{"AUDIT_KEY": "c2hvcnQ=", "SNAPSHOT_KEY": "!!"}, nil, []string{"AUDIT_KEY must be base64", "SNAPSHOT_KEY must be base64"}},
		{"bad redis", map[string]string{"REDIS_URL": "http://user:hunter2pass@x:1"}, nil, []string{"REDIS_URL: must be a redis://"}},
		{"bad key prefix", map[string]string{"REDIS_KEY_PREFIX": "cr:{x}"}, nil, []string{`REDIS_KEY_PREFIX: key prefix "cr:{x}" must be`}},
		{"slack url without slash", map[string]string{"SLACK_API_URL": "https://slack.com/api"}, nil, []string{"SLACK_API_URL must be"}},
		{"unknown flag", nil, []string{"-slack-bot-token", "xoxb-flag"}, []string{"flags:", "secrets are read only from the environment"}},
		{"log format", map[string]string{"LOG_FORMAT": "xml"}, nil, []string{"LOG_FORMAT must be json or console"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := goodEnv()
			if len(tc.env) == 0 && tc.name == "everything missing" {
				env = map[string]string{}
			}
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := loadConfig("serve", tc.args, envMap(env), noFiles, needs{slack: true, pbx: true})
			var ce *configError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a configError", err)
			}
			msg := err.Error()
			for _, w := range tc.wants {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			for _, s := range []string{"secretapp", "secretbot", "secretkey", "hunter2pass", "xoxb-flag"} {
				if strings.Contains(msg, s) {
					t.Errorf("error echoes a secret (%s):\n%s", s, msg)
				}
			}
		})
	}
}

func TestLoadConfigSecretFiles(t *testing.T) {
	env := goodEnv()
	delete(env, "NS_API_KEY")
	env["NS_API_KEY_FILE"] = "/run/secrets/ns"
	files := func(p string) ([]byte, error) {
		if p == "/run/secrets/ns" {
			return []byte("nsr_fromfile\n"), nil
		}
		return nil, os.ErrNotExist
	}
	c, err := loadConfig("serve", nil, envMap(env), files, needs{slack: true, pbx: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.NSAPIKey != "nsr_fromfile" {
		t.Errorf("NS_API_KEY from file = %q", c.NSAPIKey)
	}
	env["NS_API_KEY"] = "nsr_both"
	if _, err := loadConfig("serve", nil, envMap(env), files, needs{slack: true, pbx: true}); err == nil || !strings.Contains(err.Error(), "both set") {
		t.Errorf("both VAR and VAR_FILE: got %v", err)
	}
	env = goodEnv()
	env["SNAPSHOT_KEY_FILE"] = "/missing"
	if _, err := loadConfig("serve", nil, envMap(env), noFiles, needs{slack: true, pbx: true}); err == nil || !strings.Contains(err.Error(), "SNAPSHOT_KEY_FILE: cannot read /missing") {
		t.Errorf("missing file: got %v", err)
	}
}

func TestFlagsOverrideEnv(t *testing.T) {
	c, err := loadConfig("serve", []string{"-workers", "4", "-approval-steps", "none", "-http-addr", "127.0.0.1:0"}, envMap(goodEnv()), noFiles, needs{slack: true, pbx: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers != 4 || len(c.ApprovalSteps) != 0 || c.HTTPAddr != "127.0.0.1:0" {
		t.Errorf("flags not applied: workers=%d steps=%v addr=%s", c.Workers, c.ApprovalSteps, c.HTTPAddr)
	}
}

func TestWarnings(t *testing.T) {
	env := goodEnv()
	env["RESPONDERS"] = "U111"
	c, err := loadConfig("serve", nil, envMap(env), noFiles, needs{slack: true, pbx: true})
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(c.warnings(), "\n")
	for _, want := range []string{"fewer than two people", "AUDIT_KEY is not set", "SNAPSHOT_KEY is not set"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q: %s", want, w)
		}
	}
	// The v1 endpoint can be derived only from a NS_API_URL ending in /v2.
	for _, tc := range []struct {
		api, v1 string
		warn    bool
	}{
		{"https://pbx.example.com/ns-api/v2", "", false},
		{"https://pbx.example.com/api", "", true},
		{"https://pbx.example.com/api", "https://pbx.example.com/ns-api/", false},
	} {
		env := goodEnv()
		env["NS_V1_PORTAL_PASSWORD"], env["NS_API_URL"], env["NS_V1_API_URL"] = "true", tc.api, tc.v1
		c, err := loadConfig("serve", nil, envMap(env), noFiles, needs{slack: true, pbx: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(strings.Join(c.warnings(), "\n"), "NS_V1_PORTAL_PASSWORD is on but NS_API_URL does not end in /v2"); got != tc.warn {
			t.Errorf("NS_API_URL %s, NS_V1_API_URL %q: v1 warning %v, want %v", tc.api, tc.v1, got, tc.warn)
		}
	}
}
