package main

import "testing"

// TestLockdownRef: `bot respond status` reads LCK-… as a lockdown, a malformed LCK… as a usage
// error, and anything else (an incident, a user@domain, even one whose user starts with "lck")
// as an incident reference, as /compromised status does.
func TestLockdownRef(t *testing.T) {
	for _, c := range []struct {
		ref, id    string
		ok, hasErr bool
	}{
		{"lck-7k2qxm", "LCK-7K2QXM", true, false},
		{"LCK-12", "", true, true},
		{"lck100@acme.example", "", false, false},
		{"INC-7K2QXM", "", false, false},
		{"1001@acme.example", "", false, false},
	} {
		id, ok, err := lockdownRef(c.ref)
		if id != c.id || ok != c.ok || (err != nil) != c.hasErr {
			t.Errorf("lockdownRef(%q) = %q, %v, %v; want %q, %v, error %v", c.ref, id, ok, err, c.id, c.ok, c.hasErr)
		}
	}
}
