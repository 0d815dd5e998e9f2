package remediate_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/compromised-responder/bot/internal/remediate"
)

func TestCleanReason(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"  hi  there ", "hi there"},
		{`"quoted"`, "quoted"},
		{`"`, `"`},
		{`""`, ""},
		{"it's fine", "it's fine"},
		{"a\u0000b\u001bc", "a b c"},
		{"\u2066x\u2069", "x"},
		{strings.Repeat("é", 301), strings.Repeat("é", 299) + "…"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if diff := cmp.Diff(remediate.CleanReason(tc.in), tc.want); diff != "" {
				t.Errorf("CleanReason(%q) (-got +want):\n%s", tc.in, diff)
			}
		})
	}
}
