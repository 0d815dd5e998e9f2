package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/session"
)

// The lockdown tests' and benchmark's world: the demo tenant plus lockdownDomain with n users
// (seeded by nstest's AddDomain; the first `denied` already in Deny All), a PBX round trip of
// rtt on every request.
const lockdownDomain = "bulk.example"

type lockdownWorld struct {
	*world
	users []string // user@domain, in order
}

func newLockdownWorld(tb testing.TB, n, denied int, rtt time.Duration) *lockdownWorld {
	tb.Helper()
	w := newWorld(tb)
	seed := nstest.DemoSeed()
	users := seed.AddDomain(lockdownDomain, n, 3000, "US and Canada")
	for i := range denied {
		seed.Users[len(seed.Users)-n+i]["dial-policy"] = "Deny All"
	}
	sim, base := nstest.Start(tb, nstest.Options{Seed: seed})
	if rtt > 0 {
		sim.SetFaults(nstest.Faults{Latency: rtt})
	}
	w.pbx = sim
	w.env["NS_API_URL"] = base
	w.env["NS_API_KEY"] = sim.APIKey()
	return &lockdownWorld{world: w, users: users}
}

// lockdown waits for the one open lockdown and its card, and returns it.
func (w *lockdownWorld) lockdown() session.Lockdown {
	w.t.Helper()
	var l session.Lockdown
	(&lockdownWorld{world: w.world}).waitLong("the lockdown card", func() bool {
		open, err := w.store.ListOpenLockdowns(context.Background())
		if err != nil || len(open) != 1 || open[0].MessageTS == "" {
			return false
		}
		l = open[0]
		_, ok := w.slack.Message(l.Channel, l.MessageTS)
		return ok
	})
	return l
}

func (w *lockdownWorld) getLockdown(id string) session.Lockdown {
	w.t.Helper()
	l, err := w.store.GetLockdown(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return l
}

// members returns the members' incidents as stored now.
func (w *lockdownWorld) members(l session.Lockdown) []session.Incident {
	w.t.Helper()
	out := make([]session.Incident, 0, len(l.Members))
	for _, m := range l.Members {
		if m.IncidentID == "" {
			w.t.Fatalf("member %s has no incident", m.Key())
		}
		out = append(out, w.incident(m.IncidentID))
	}
	return out
}

// every reports whether each member's incident satisfies ok.
func (w *lockdownWorld) every(l session.Lockdown, ok func(session.Incident) bool) bool {
	for _, m := range l.Members {
		inc, err := w.store.Get(context.Background(), m.IncidentID)
		if err != nil || !ok(inc) {
			return false
		}
	}
	return true
}

// pbxPolicy is the user's dial policy on the simulator.
func (w *lockdownWorld) pbxPolicy(key string) string {
	w.t.Helper()
	user, domain, _ := strings.Cut(key, "@")
	u, ok := w.pbx.User(domain, user)
	if !ok {
		w.t.Fatalf("no user %s on the PBX", key)
	}
	p, _ := u["dial-policy"].(string)
	return p
}

// pbxWrites counts the simulator's PBX writes so far.
func (w *lockdownWorld) pbxWrites() int {
	n := 0
	for _, c := range w.pbx.Calls() {
		if c.Method != "GET" {
			n++
		}
	}
	return n
}

// usersCommand is `users` with n addresses of lockdownDomain starting at 3000.
func usersCommand(n int) string {
	parts := []string{"users"}
	for i := range n {
		parts = append(parts, strconv.Itoa(3000+i)+"@"+lockdownDomain)
	}
	return strings.Join(parts, " ")
}

// waitLong is waitFor with a deadline fit for a fan-out over hundreds of users on a loaded
// machine (a deadline, not a speed: speed is the benchmark's).
func (w *lockdownWorld) waitLong(what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond) // polling Redis from the test, not in a request path
	}
}
