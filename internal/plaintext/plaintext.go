// Package plaintext turns text people typed (a reason, a note, a display name) into one line of
// plain text that is safe to store, log and show: valid UTF-8, no control, zero-width or
// bidi-control characters (which can hide or reorder what a reader sees), white space
// collapsed, and cut to a length. The engine cleans what it stores with it and the Slack side
// what it shows, so both apply the same rule.
package plaintext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// OneLine replaces invalid UTF-8, drops invisible characters and collapses every run of white
// space and control characters into one space, trimming both ends.
func OneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if IsInvisible(r) {
			return -1
		}
		return r
	}, s)
	return strings.Join(strings.FieldsFunc(s, IsSpace), " ")
}

// IsSpace splits words: Unicode white space (including no-break spaces) and control characters.
func IsSpace(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

// IsInvisible reports zero-width and bidi-control characters, which can hide or reorder text.
func IsInvisible(r rune) bool {
	switch {
	case r == '\u200B', r == '\u200C', r == '\u200D', r == '\u2060', r == '\uFEFF', r == '\u00AD':
		return true
	case r >= '\u202A' && r <= '\u202E', r >= '\u2066' && r <= '\u2069', r == '\u200E', r == '\u200F':
		return true
	}
	return false
}

// Truncate cuts s to at most max characters (runes), ending a cut text with "…".
func Truncate(s string, max int) string {
	if max <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return strings.TrimRightFunc(string(r[:max-1]), unicode.IsSpace) + "…"
}
