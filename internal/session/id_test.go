package session_test

import (
	"regexp"
	"testing"

	"github.com/compromised-responder/bot/internal/session"
)

var idRE = regexp.MustCompile(`^INC-[0-9ABCDEFGHJKMNPQRSTVWXYZ]{6}$`)

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		id, err := session.NewID()
		if err != nil {
			t.Fatal(err)
		}
		if !idRE.MatchString(id) {
			t.Fatalf("NewID() = %q, not INC- + 6 Crockford characters", id)
		}
		if got, ok := session.NormalizeID(id); !ok || got != id {
			t.Fatalf("NormalizeID(%q) = %q, %v", id, got, ok)
		}
		seen[id] = true
	}
	if len(seen) < 190 {
		t.Errorf("200 IDs gave only %d distinct ones", len(seen))
	}
}

func TestNormalizeID(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"INC-7K2QXM", "INC-7K2QXM", true},
		{"inc-7k2qxm", "INC-7K2QXM", true},
		{"  Inc-7k2qxm ", "INC-7K2QXM", true},
		{"INC7K2QXM", "INC-7K2QXM", true},
		{"7k2qxm", "INC-7K2QXM", true},
		{"INC-OIL000", "INC-011000", true}, // Crockford: O→0, I/L→1
		{"INC-7K2QXU", "", false},          // U is not in the alphabet
		{"INC-7K2QX", "", false},
		{"INC-7K2QXMM", "", false},
		{"", "", false},
		{"INC-7K2-QX", "", false},
		{"1001@acme.example", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := session.NormalizeID(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("NormalizeID(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// FuzzNormalizeID: no input panics; every accepted input gives a canonical ID that normalizes to itself.
func FuzzNormalizeID(f *testing.F) {
	for _, s := range []string{"INC-7K2QXM", "inc-oil000", "7k2qxm", "", "INC-", "INC-ÄÖÜ123"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := session.NormalizeID(s)
		if !ok {
			if got != "" {
				t.Fatalf("NormalizeID(%q) = %q with ok=false", s, got)
			}
			return
		}
		if !idRE.MatchString(got) {
			t.Fatalf("NormalizeID(%q) = %q, not canonical", s, got)
		}
		if again, ok := session.NormalizeID(got); !ok || again != got {
			t.Fatalf("NormalizeID(%q) = %q, %v: not idempotent", got, again, ok)
		}
	})
}

func TestLockdownID(t *testing.T) {
	lckRE := regexp.MustCompile(`^LCK-[0-9ABCDEFGHJKMNPQRSTVWXYZ]{6}$`)
	id, err := session.NewLockdownID()
	if err != nil {
		t.Fatal(err)
	}
	if !lckRE.MatchString(id) {
		t.Fatalf("NewLockdownID() = %q, not LCK- + 6 Crockford characters", id)
	}
	for in, want := range map[string]string{id: id, "lck-7k2qxo": "LCK-7K2QX0", "LCK7K2QXM": "LCK-7K2QXM",
		"7K2QXM": "", "INC-7K2QXM": "", "LCK-7K2QXU": ""} {
		got, ok := session.NormalizeLockdownID(in)
		if got != want || ok != (want != "") {
			t.Errorf("NormalizeLockdownID(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if got, ok := session.NormalizeID(id); ok {
		t.Errorf("NormalizeID(%q) = %q: a lockdown ID is not an incident ID", id, got)
	}
}
