package slackui

import "testing"

func TestFirstAddress(t *testing.T) {
	for _, c := range []struct{ text, user, domain string }{
		{"Fraud alert: <mailto:1001@acme.example|1001@acme.example> dialled +882 40 times", "1001", "acme.example"},
		{"user 1001@ACME.example.", "1001", "acme.example"},
		{"high spend on 2002@globex.example and 1001@acme.example", "2002", "globex.example"},
		{"&lt;1003@acme.example&gt; flagged", "1003", "acme.example"},
		{"first a-very-long-user-name-here@acme.example then 1004@acme.example", "1004", "acme.example"},
	} {
		u, d, ok := FirstAddress(c.text)
		if !ok || u != c.user || d != c.domain {
			t.Errorf("FirstAddress(%q) = %q, %q, %v; want %s@%s", c.text, u, d, ok, c.user, c.domain)
		}
	}
	for _, text := range []string{"", "no address here", "@acme.example", "1001@", "1001@...", "<@U0ALICE> look"} {
		if u, d, ok := FirstAddress(text); ok {
			t.Errorf("FirstAddress(%q) = %s@%s", text, u, d)
		}
	}
}
