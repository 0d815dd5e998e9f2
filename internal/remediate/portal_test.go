package remediate

import (
	"strings"
	"testing"
)

func TestNewPortalPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		p, err := newPortalPassword()
		if err != nil {
			t.Fatal(err)
		}
		s := p.Reveal()
		if len(s) != portalPasswordLength || strings.Trim(s, portalAlphabet) != "" || seen[s] {
			t.Fatalf("password %q: length %d, outside the alphabet or repeated", s, len(s))
		}
		seen[s] = true
	}
}
