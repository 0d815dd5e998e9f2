package main

import (
	"flag"
	"io"
	"slices"
	"testing"
)

// TestParseInterleaved: flags may stand before, between and after the arguments; "--" ends them.
func TestParseInterleaved(t *testing.T) {
	for _, tc := range []struct {
		args, pos []string
		actor     string
		reveal    bool
	}{
		{[]string{"run", "INC-7K2QXM", "deny"}, []string{"run", "INC-7K2QXM", "deny"}, "", false},
		{[]string{"--actor", "bob", "run", "x", "deny", "--reveal"}, []string{"run", "x", "deny"}, "bob", true},
		{[]string{"run", "-actor=bob", "x", "--reveal", "deny"}, []string{"run", "x", "deny"}, "bob", true},
		{[]string{"open", "--", "--actor", "x"}, []string{"open", "--actor", "x"}, "", false},
		{[]string{}, nil, "", false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		actor := fs.String("actor", "", "")
		reveal := fs.Bool("reveal", false, "")
		pos, err := parseInterleaved(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.pos) || *actor != tc.actor || *reveal != tc.reveal {
			t.Errorf("%q: pos %q actor %q reveal %v err %v; want %q %q %v", tc.args, pos, *actor, *reveal, err, tc.pos, tc.actor, tc.reveal)
		}
	}
}

// TestExitCode: an operator command's status survives wrapping; anything else is 1.
func TestExitCode(t *testing.T) {
	if got := exitCode(nil); got != exitOK {
		t.Errorf("nil: %d", got)
	}
	if got := exitCode(io.EOF); got != exitFailed {
		t.Errorf("plain error: %d", got)
	}
	if got := exitCode(exitf(exitAwaiting, "waits")); got != exitAwaiting {
		t.Errorf("exitError: %d", got)
	}
}
