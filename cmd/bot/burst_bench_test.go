package main

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
)

// The burst benchmarks of issue 9: a NOC typing /compromised all at once. Each reports, with
// b.ReportMetric, figures measured in that run (counts out of the burst, latencies, ratios to a
// floor computed from the same run's PBX round trip and observed concurrency). A burst the bot does
// not finish is reported as far as it got by the deadline: the benchmarks never fail on speed.
// Recorded in BENCHMARKS.md ("Burst (issue 9)").

// BenchmarkBurstHelp: 200 /compromised help from 200 users at once. One op = one burst.
func BenchmarkBurstHelp(b *testing.B) {
	const n = 200
	r := newRig(b, 8, nil)
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("U0H%03d", i)
		r.slack.AddUser(users[i], strings.ToLower(users[i]))
	}
	p := r.serve()
	var all helpResult
	cpu0 := p.cpuTime()
	for b.Loop() {
		// The test process collects its garbage first, with the timer stopped (the acks are
		// timed by slackfake, not by it). Its own allocations (slackfake's and the rig's, most of
		// it reading and recording the acks) otherwise run its GC in the middle of one burst in a
		// few, and the GC's pause and its worker, on one of the two cores, hold up slackfake's ack
		// reader, which then times every ack behind it late: the bot's latency plus the fake's
		// pause. Slack's edge shares no heap with it. The testing package collects before each
		// benchmark for the same reason.
		b.StopTimer()
		runtime.GC()
		b.StartTimer()
		res := r.helpBurst(users)
		all.sent += res.sent
		all.acked += res.acked
		all.answered += res.answered
		all.acks = append(all.acks, res.acks...)
		all.answers = append(all.answers, res.answers...)
	}
	per := float64(all.sent / n) // bursts run
	b.ReportMetric(float64(all.answered)/per, fmt.Sprintf("answered/%d", n))
	b.ReportMetric(float64(all.acked)/per, fmt.Sprintf("acked/%d", n))
	b.ReportMetric(ms(pct(all.acks, 50)), "ack-p50-ms")
	b.ReportMetric(ms(pct(all.acks, 99)), "ack-p99-ms")
	b.ReportMetric(ms(pct(all.acks, 100)), "ack-max-ms")
	b.ReportMetric(ms(pct(all.answers, 99)), "answer-p99-ms")
	if cpu := p.cpuTime() - cpu0; cpu > 0 && all.sent > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(all.sent), "bot-cpu-us/command")
	}
	if rss := p.peakRSS(); rss > 0 {
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
	}
	p.stop(b)
}

// BenchmarkBurstIncidents: 100 incidents at once across 10 domains, each card's Deny clicked as
// soon as it shows, with NS_MAX_INFLIGHT 8 and 32. One op = one burst, on a fresh bot, PBX and
// Redis database.
func BenchmarkBurstIncidents(b *testing.B) {
	for _, inflight := range []int{8, 32} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			var res burstResult
			for b.Loop() {
				res = runBurst(b, inflight, nil, burstDeadline)
			}
			reportBurst(b, res)
		})
	}
	// The same burst in one channel under Slack's rate limits (slackfake.SlackLimits), against an
	// unlimited run measured just before it. At about one chat.postMessage per second per channel
	// 100 cards alone take ~100 s, so this burst gets a longer deadline. The engineer clicks each
	// incident's Deny as soon as one shows: the card's, or that of the notice the bot sends the
	// opener when the card waits for Slack (incidentBurst). contain-time-vs-unlimited is the
	// issue's figure: start → the last user shown contained to the engineer (on the notice or the
	// card), over the same in the unlimited run; card-deny-time-vs-unlimited is start → the last
	// card showing it, which Slack's post rate bounds.
	b.Run("rate-limited/inflight=8", func(b *testing.B) {
		var free, limited burstResult
		for b.Loop() {
			b.StopTimer()
			free = runBurst(b, 8, nil, burstDeadline)
			b.StartTimer()
			limited = runBurst(b, 8, slackfake.SlackLimits(), 150*time.Second)
		}
		reportBurst(b, limited)
		b.ReportMetric(float64(limited.slack429), "slack-429s")
		b.ReportMetric(float64(free.contained), fmt.Sprintf("unlimited-contained/%d", free.n))
		if free.pbxDenied > 0 && limited.pbxDenied > 0 {
			b.ReportMetric(limited.pbxTotal.Seconds()/free.pbxTotal.Seconds(), "pbx-deny-time-vs-unlimited")
		}
		if free.contained > 0 && limited.contained > 0 {
			b.ReportMetric(limited.total.Seconds()/free.total.Seconds(), "card-deny-time-vs-unlimited")
		}
		if free.shownTotal > 0 && limited.shownTotal > 0 {
			b.ReportMetric(limited.shownTotal.Seconds()/free.shownTotal.Seconds(), "contain-time-vs-unlimited")
		}
		n := limited.n
		b.ReportMetric(float64(limited.notices), fmt.Sprintf("notices/%d", n))
		b.ReportMetric(float64(limited.viaNotice), fmt.Sprintf("deny-via-notice/%d", n))
		b.ReportMetric(float64(limited.viaCard), fmt.Sprintf("deny-via-card/%d", n))
		b.ReportMetric(float64(limited.extraCards+free.extraCards), "extra-cards")
		b.ReportMetric(float64(free.notices), fmt.Sprintf("unlimited-notices/%d", free.n))
		// What the bot controls under the limits: from each delivered click to the PBX holding the
		// deny policy. The clicks come as the paced cards show, so this is the PBX work's own delay.
		if len(free.clickToPBX) > 0 && len(limited.clickToPBX) > 0 {
			b.ReportMetric(pct(limited.clickToPBX, 99).Seconds()/pct(free.clickToPBX, 99).Seconds(), "click-to-pbx-p99-vs-unlimited")
		}
	})
}

// runBurst runs one incident burst on a fresh rig and bot process (set-up and tear-down untimed);
// the bot's peak RSS is read just before it is stopped.
func runBurst(b *testing.B, inflight int, limits map[string]slackfake.Limit, deadline time.Duration) burstResult {
	b.StopTimer()
	r := newRig(b, inflight, limits)
	p := r.serve()
	cpu0 := p.cpuTime()
	b.StartTimer()
	res := r.incidentBurst(r.targets, deadline)
	b.StopTimer()
	res.botCPU = p.cpuTime() - cpu0
	res.rssPeak = p.peakRSS()
	p.stop(b)
	b.StartTimer()
	return res
}

func reportBurst(b *testing.B, res burstResult) {
	n := res.n
	b.ReportMetric(float64(res.opened), fmt.Sprintf("opened/%d", n))
	b.ReportMetric(float64(res.cards), fmt.Sprintf("cards/%d", n))
	b.ReportMetric(float64(res.contained), fmt.Sprintf("contained/%d", n))
	b.ReportMetric(float64(res.pbxDenied), fmt.Sprintf("pbx-denied/%d", n))
	if f := res.floor(); f > 0 {
		b.ReportMetric(res.total.Seconds()/f.Seconds(), "total/floor")
	}
	b.ReportMetric(float64(res.peak), "pbx-peak-inflight")
	b.ReportMetric(float64(res.pbxCalls)/float64(n), "pbx-calls/incident")
	b.ReportMetric(float64(res.slackCalls)/float64(n), "slack-calls/incident")
	if res.botCPU > 0 {
		b.ReportMetric(ms(res.botCPU)/float64(n), "bot-cpu-ms/incident")
	}
	if res.rssPeak > 0 {
		b.ReportMetric(float64(res.rssPeak)/(1<<20), "peak-RSS-MiB")
	}
	b.ReportMetric(ms(pct(res.openToCard, 99)), "open-to-card-p99-ms")
	b.ReportMetric(ms(pct(res.clickToDeny, 99)), "click-to-deny-p99-ms")
	b.ReportMetric(ms(pct(res.clickToPBX, 99)), "click-to-pbx-p99-ms")
}

// BenchmarkBurstSingleDeny: one incident at a time with 20 ms of PBX RTT. One op = open → card →
// click Deny → card shows the user contained; the restore that closes it between ops is untimed.
// click-to-verify/3RTT is the click → verified Deny All time (the PBX's answer to the read-back
// after the PUT: the target) over the critical path's 3 round trips; click-to-deny/3RTT
// is the click → the card showing the user contained, over the same;
// open-to-card/calls-RTT is the open → card time over the PBX calls the open made, one RTT each.
func BenchmarkBurstSingleDeny(b *testing.B) {
	r := newRig(b, 8, nil)
	p := r.serve()
	target := r.targets[0]
	user, domain, _ := strings.Cut(target, "@")
	var opens, clicks, pbx, verify []time.Duration
	var openCalls int64
	for b.Loop() {
		res := r.incidentBurst([]string{target}, burstDeadline)
		openCalls += r.openCalls(res)
		opens = append(opens, res.openToCard...)
		clicks = append(clicks, res.clickToDeny...)
		pbx = append(pbx, res.clickToPBX...)
		if v, ok := r.verifiedAt(res); ok {
			verify = append(verify, v.Sub(res.incidents[0].clickAt))
		}

		b.StopTimer()
		if inc, err := r.store.FindOpen(context.Background(), user, domain); err == nil && inc.MessageTS != "" {
			r.cardShows(inc.MessageTS, "deny done") // the live calls ended too: Restore is on the card
			r.click(alice, inc.MessageTS, "step:restore")
			r.waitFor("restore", func() bool { return r.incident(inc.ID).State == session.StateRestored })
		}
		b.StartTimer()
	}
	if len(clicks) > 0 {
		b.ReportMetric(mean(clicks).Seconds()/(3*burstRTT).Seconds(), "click-to-deny/3RTT")
		b.ReportMetric(ms(mean(clicks)), "click-to-deny-ms")
	}
	if len(verify) > 0 {
		b.ReportMetric(mean(verify).Seconds()/(3*burstRTT).Seconds(), "click-to-verify/3RTT")
	}
	if len(pbx) > 0 {
		b.ReportMetric(ms(mean(pbx)), "click-to-pbx-deny-ms")
	}
	if len(opens) > 0 && openCalls > 0 {
		perOpen := float64(openCalls) / float64(len(opens))
		b.ReportMetric(mean(opens).Seconds()/(perOpen*burstRTT.Seconds()), "open-to-card/calls-RTT")
		b.ReportMetric(perOpen, "open-pbx-calls")
		b.ReportMetric(ms(mean(opens)), "open-to-card-ms")
	}
	b.ReportMetric(float64(len(clicks))/float64(b.N), "contained/op")
	p.stop(b)
}

// verifiedAt is when the PBX answered the read-back of a single-incident burst's deny: the first
// GET of the user after its PUT, answered one RTT after it arrived.
func (r *rig) verifiedAt(res burstResult) (time.Time, bool) {
	if len(res.incidents) != 1 || res.incidents[0].clickAt.IsZero() {
		return time.Time{}, false
	}
	inc := res.incidents[0]
	path := "/domains/" + inc.domain + "/users/" + inc.user
	put := false
	for _, c := range r.sim.Calls() {
		if c.At.Before(inc.clickAt) || c.Path != path {
			continue
		}
		switch {
		case c.Method == "PUT" && c.Status/100 == 2:
			put = true
		case put && c.Method == "GET" && c.Status == 200:
			return c.At.Add(burstRTT), true
		}
	}
	return time.Time{}, false
}

// openCalls counts the PBX requests of a single-incident burst made between its command and its
// card (the simulator's call log has the times).
func (r *rig) openCalls(res burstResult) int64 {
	if len(res.incidents) != 1 || res.incidents[0].card.IsZero() {
		return 0
	}
	inc := res.incidents[0]
	var n int64
	for _, c := range r.sim.Calls() {
		if !c.At.Before(inc.sent) && !c.At.After(inc.card) {
			n++
		}
	}
	return n
}

// TestBurstRig checks the benchmarks' instruments on a small burst, with the bot in its own
// process as the benchmarks run it: every help is answered and counted, every card is found,
// clicked and seen contained, on Slack and on the PBX, the gauge saw the PBX work, and the bot
// process's peak RSS and CPU time are read.
func TestBurstRig(t *testing.T) {
	r := newRig(t, 8, nil)
	users := []string{"U0H000", "U0H001", "U0H002"}
	for _, u := range users {
		r.slack.AddUser(u, strings.ToLower(u))
	}
	p := r.serve()
	if h := r.helpBurst(users); h.answered != len(users) || h.acked != len(users) || len(h.answers) != len(users) {
		t.Errorf("help burst: %d acked, %d answered of %d", h.acked, h.answered, len(users))
	}
	res := r.incidentBurst(r.targets[:2], burstDeadline)
	if res.cards != 2 || res.contained != 2 || res.pbxDenied != 2 || len(res.clickToDeny) != 2 {
		t.Errorf("incident burst: %d cards, %d contained, %d denied on the PBX, %d clicks timed; want 2 each",
			res.cards, res.contained, res.pbxDenied, len(res.clickToDeny))
	}
	if res.peak < 1 || res.pbxCalls < 2*4 || res.slackCalls < 2 || res.floor() <= 0 {
		t.Errorf("gauges: peak %d, %d PBX calls, %d Slack calls, floor %s", res.peak, res.pbxCalls, res.slackCalls, res.floor())
	}
	if v, ok := r.verifiedAt(burstResult{incidents: res.incidents[:1]}); !ok || v.Before(res.incidents[0].clickAt) {
		t.Errorf("no verify read-back found after the click (%v, %v)", v, ok)
	}
	if rss, cpu := p.peakRSS(), p.cpuTime(); rss <= 0 || cpu <= 0 {
		t.Errorf("the bot process's peak RSS (%d) or CPU time (%s) was not read", rss, cpu)
	}
	p.stop(t)
}
