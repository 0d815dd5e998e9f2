package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// BenchmarkLockdown (issue 13 item 1): `/compromised domain` for a 200-user domain at 20 ms of
// PBX round trip and NS_MAX_INFLIGHT 8, through the real `bot serve`, slackfake and the redis of
// TEST_REDIS_URL. One op = open the lockdown → its card → click Deny → every user in verified
// Deny All → click Restore → every user's original back and the lockdown closed.
//
// Reported per op: deny/floor = click → the last user's verify read answered by the PBX, over
// the floor of 3 calls (read user, PUT, verify read) × RTT × 200 ÷ 8; the Slack Web API calls of
// the whole lockdown (command to closed card); the open and restore times. Recorded in
// BENCHMARKS.md ("Lockdown"). Like the burst benchmarks it never fails on speed.
func BenchmarkLockdown(b *testing.B) {
	const n, inflight = 200, 8
	const rtt = burstRTT
	w := newLockdownWorld(b, n, 0, rtt)
	w.env["NS_MAX_INFLIGHT"] = fmt.Sprint(inflight)
	w.env["APPROVAL_STEPS"] = "none"
	w.env["LOG_LEVEL"] = "warn"
	delete(w.env, "WORKERS")
	w.start()
	floor := time.Duration(3*n/inflight) * rtt
	var denies, opens, restores []time.Duration
	var slackCalls, pbxCalls int
	for b.Loop() {
		slackBefore, pbxBefore := len(w.slack.Calls("")), len(w.pbx.Calls())
		sent := time.Now()
		w.command(alice, incChan, "domain "+lockdownDomain+" benchmark")
		l := w.lockdown()
		opens = append(opens, time.Since(sent))

		click := time.Now()
		w.click(alice, l.MessageTS, "lockdown:deny")
		w.waitLong("the deny fan-out", func() bool { r := w.getLockdown(l.ID).LastRun(); return r != nil && r.Done() })
		if last, ok := w.lastVerify(click, n); ok {
			denies = append(denies, last.Add(rtt).Sub(click))
		}

		click = time.Now()
		w.click(alice, l.MessageTS, "lockdown:restore")
		w.waitLong("the lockdown closed", func() bool { return !w.getLockdown(l.ID).Open() })
		restores = append(restores, time.Since(click))
		w.cardShows(l.MessageTS, "Closed lockdown")
		b.StopTimer()
		w.waitLong("the card and thread synced", func() bool { return w.slack.Thread(incChan, l.MessageTS) != nil && w.threadSettled(l) })
		slackCalls += len(w.slack.Calls("")) - slackBefore
		pbxCalls += len(w.pbx.Calls()) - pbxBefore
		b.StartTimer()
	}
	ops := float64(len(opens))
	if len(denies) > 0 {
		b.ReportMetric(mean(denies).Seconds()/floor.Seconds(), "deny/floor")
		b.ReportMetric(ms(mean(denies)), "deny-ms")
	}
	b.ReportMetric(float64(len(denies))/ops, "all-denied/op")
	b.ReportMetric(ms(mean(opens)), "open-to-card-ms")
	b.ReportMetric(ms(mean(restores)), "restore-ms")
	b.ReportMetric(float64(slackCalls)/ops, "slack-calls/lockdown")
	b.ReportMetric(float64(pbxCalls)/ops/n, "pbx-calls/user")
}

// lastVerify is when the PBX received the last of the n users' verify reads after click: for
// each user of lockdownDomain the first GET of the user after its PUT of the deny policy. ok is
// false unless all n were verified.
func (w *lockdownWorld) lastVerify(click time.Time, n int) (time.Time, bool) {
	put := map[string]bool{}
	verified := map[string]bool{}
	var last time.Time
	prefix := "/domains/" + lockdownDomain + "/users/"
	for _, c := range w.pbx.Calls() {
		user, ok := strings.CutPrefix(c.Path, prefix)
		if !ok || c.At.Before(click) || strings.Contains(user, "/") || verified[user] {
			continue
		}
		switch {
		case c.Method == "PUT" && c.Status/100 == 2:
			put[user] = true
		case put[user] && c.Method == "GET" && c.Status == 200:
			verified[user] = true
			if c.At.After(last) {
				last = c.At
			}
		}
	}
	return last, len(verified) == n
}

// threadSettled reports whether every line of the lockdown is in its thread.
func (w *lockdownWorld) threadSettled(l session.Lockdown) bool {
	l = w.getLockdown(l.ID)
	posted := 0
	for _, m := range w.slack.Thread(incChan, l.MessageTS) {
		posted += strings.Count(m.Text, "\n") + 1
	}
	return posted >= len(l.Lines)
}
