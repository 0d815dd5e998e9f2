package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunServesTheDemoTenant(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"pbxsim", "-addr", "127.0.0.1:0", "-log-format", "json"}, func(string) string { return "" },
			strings.NewReader(""), pw, io.Discard)
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("run did not return after cancel")
		}
	})

	var base, key string
	sc := bufio.NewScanner(pr)
	for sc.Scan() && (base == "" || key == "") {
		line := sc.Text()
		if _, after, ok := strings.Cut(line, "simulator at "); ok {
			base = after
		}
		if _, after, ok := strings.Cut(line, "API key (demo, Bearer): "); ok {
			key = after
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if base == "" || key == "" {
		t.Fatalf("run printed no base URL or key (base %q)", base)
	}

	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/domains/acme.example/users/1001", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var u map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&u); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, err %v", resp.StatusCode, err)
	}
	if u["name-first-name"] != "Jane" || u["dial-policy"] != "US and Canada" {
		t.Errorf("user 1001 = %v", u)
	}
}

func TestRunRefuses(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"users":[{"user":"1"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"remote bind", []string{"-addr", "0.0.0.0:0"}, "not a loopback address"},
		{"remote host", []string{"-addr", "pbx.example.com:8085"}, "not a loopback address"},
		{"bad seed", []string{"-addr", "127.0.0.1:0", "-seed", bad}, "seed"},
		{"missing seed", []string{"-addr", "127.0.0.1:0", "-seed", filepath.Join(t.TempDir(), "none.json")}, "open seed"},
		{"bad log format", []string{"-log-format", "xml"}, "log-format"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), append([]string{"pbxsim"}, tc.args...), func(string) string { return "" },
				strings.NewReader(""), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run(%v) = %v, want an error mentioning %q", tc.args, err, tc.want)
			}
		})
	}
}
