package remediate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

func TestTrivialPIN(t *testing.T) {
	tests := []struct {
		pin, user string
		want      bool
	}{
		{"1111", "", true}, {"1234", "", true}, {"123456", "", true}, {"987654", "", true},
		{"7890", "", true}, {"121212", "", true}, {"100110", "1001", true}, {"1001", "1001", true},
		{"482913", "1001", false}, {"0734", "", false}, {"112358", "2001", false},
	}
	for _, tc := range tests {
		t.Run(tc.pin, func(t *testing.T) {
			if got := remediate.TrivialPIN(tc.pin, tc.user); got != tc.want {
				t.Errorf("TrivialPIN(%q, %q) = %v, want %v", tc.pin, tc.user, got, tc.want)
			}
		})
	}
}

func TestNewPIN(t *testing.T) {
	for _, n := range []int{4, 6, 12} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			seen := map[string]bool{}
			for range 200 {
				p, err := remediate.NewPIN(n, "4829", "1001")
				if err != nil {
					t.Fatal(err)
				}
				s := p.Reveal()
				if len(s) != n || strings.Trim(s, "0123456789") != "" || s == "4829" || remediate.TrivialPIN(s, "1001") {
					t.Fatalf("bad PIN of length %d", len(s))
				}
				seen[s] = true
			}
			if len(seen) < 150 {
				t.Errorf("only %d distinct PINs in 200", len(seen))
			}
		})
	}
}

func TestMaskEmail(t *testing.T) {
	tests := []struct{ in, want string }{
		{"jane.doe@acme.example", "j•••@acme.example"},
		{"frank@globex.example;it@globex.example", "f•••@globex.example; i•••@globex.example"},
		{"", ""}, {"not-an-address", "•••"}, {"@x", "•••"}, {"é@x.example", "é•••@x.example"},
	}
	for _, tc := range tests {
		if got := remediate.MaskEmail(tc.in); got != tc.want {
			t.Errorf("MaskEmail(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzMaskEmail(f *testing.F) {
	f.Add("jane.doe@acme.example")
	f.Add("a@b;c@d")
	f.Add("\xff\xfe@x")
	f.Fuzz(func(t *testing.T, in string) {
		out := remediate.MaskEmail(in)
		if strings.Contains(in, ";") {
			return
		}
		in = strings.TrimSpace(in)
		at := strings.LastIndexByte(in, '@')
		if at <= 0 || at == len(in)-1 {
			if in != "" && out != "•••" {
				t.Fatalf("MaskEmail(%q) = %q, want •••", in, out)
			}
			return
		}
		local := in[:at]
		if len([]rune(local)) > 1 && strings.HasPrefix(out, local) {
			t.Fatalf("MaskEmail(%q) = %q shows the local part", in, out)
		}
		if !strings.HasSuffix(out, in[at:]) || !strings.Contains(out, "•••") {
			t.Fatalf("MaskEmail(%q) = %q", in, out)
		}
	})
}

func TestKindAndUserMessage(t *testing.T) {
	at := time.Date(2026, 1, 2, 2, 15, 0, 0, time.UTC)
	tests := []struct {
		err      error
		kind     string
		contains string
	}{
		{nil, "", ""},
		{fmt.Errorf("wrap: %w", &session.StepError{Err: session.ErrAlreadyDone, Step: session.StepDeny, Status: session.StatusDone, By: "U1", At: at}),
			"already_done", "deny was already done by U1 at 02:15 UTC"},
		{&session.StepError{Err: session.ErrAlreadyRunning, Step: session.StepRecreate, Status: session.StatusRunning, By: "U2", At: at},
			"already_running", "recreate is already running"},
		{&remediate.DriftError{Live: "International", Original: "US and Canada", Deny: "Deny All"}, "drift", `now "International"`},
		{fmt.Errorf("x: %w", session.ErrFenced), "fenced", "another runner"},
		{&netsapiens.Error{Status: 404, Kind: netsapiens.KindNotFound, Message: "User 1000 does not exist", Method: "GET", Path: "/x"},
			"not_found", "PBX refused: User 1000 does not exist"},
		{&netsapiens.Error{Kind: netsapiens.KindTransient}, "transient", "did not answer"},
		{context.Canceled, "canceled", "interrupted"},
		{errors.New("redis: connection refused 10.0.0.1"), "internal", "internal error"},
		{session.ErrSelfApproval, "self_approval", "own request"},
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			got := []string{string(remediate.KindOf(tc.err)), fmt.Sprint(strings.Contains(remediate.UserMessage(tc.err), tc.contains))}
			if diff := cmp.Diff([]string{tc.kind, "true"}, got); diff != "" {
				t.Errorf("Kind/UserMessage(%v) (-want +got):\n%s\nmessage: %q", tc.err, diff, remediate.UserMessage(tc.err))
			}
		})
	}
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  remediate.Config
	}{
		{"short PIN", remediate.Config{PINLength: 3}},
		{"long PIN", remediate.Config{PINLength: 13}},
		{"bad deny policy", remediate.Config{DenyPolicy: "a/b"}},
		{"bad approval step", remediate.Config{ApprovalSteps: []session.Step{"nuke"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := remediate.New(&netsapiens.Client{}, &session.Store{}, tc.cfg); !errors.Is(err, remediate.ErrInvalid) {
				t.Errorf("New = %v, want ErrInvalid", err)
			}
		})
	}
}
