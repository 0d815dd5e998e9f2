package remediate

import (
	"unicode/utf8"

	"github.com/compromised-responder/bot/internal/plaintext"
)

// MaxReason is the most characters of a reason kept (DESIGN.md: at most 300, plain text); a
// longer one is cut and ends with "…".
const MaxReason = 300

// CleanReason makes a reason or note safe to store and show as plain text: one line
// (plaintext.OneLine), one pair of enclosing quotes (straight or smart) dropped, and at most
// MaxReason characters. The engine applies it to what it stores; the Slack side to what it
// parses and shows.
func CleanReason(s string) string {
	s = plaintext.OneLine(s)
	if r, n := utf8.DecodeRuneInString(s); n > 0 && n < len(s) && isQuote(r) {
		if l, m := utf8.DecodeLastRuneInString(s); isQuote(l) && len(s) >= n+m {
			s = plaintext.OneLine(s[n : len(s)-m])
		}
	}
	return plaintext.Truncate(s, MaxReason)
}

func isQuote(r rune) bool {
	switch r {
	case '"', '\'', '“', '”', '‘', '’', '„', '«', '»':
		return true
	}
	return false
}
