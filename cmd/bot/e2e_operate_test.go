package main

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
)

// TestServeMetricsAndLogs: a restore request pages the approvers (a new message, shown in the
// channel with APPROVAL_BROADCAST, not addressed to the requester); /metrics tells the truth
// about a failed step (counted as failed, with its error kind as its own label), containment,
// the open incidents and the build; every alert rule in deploy/ names series the bot exports;
// log lines carry milliseconds, the start-up line the version, and the lines of a job its
// incident, step and actor.
func TestServeMetricsAndLogs(t *testing.T) {
	w := newWorld(t)
	w.env["APPROVERS"] = alice + "," + bob + ",S0ONCALL"
	w.env["APPROVAL_BROADCAST"] = "true"
	b := w.start()
	ts, inc := w.openAndDeny("")

	// The live policy drifts, so the approved restore fails (kind drift).
	w.pbx.SetUserField("acme.example", "1001", "dial-policy", "International")
	w.click(alice, ts, "step:restore")
	w.cardShows(ts, "approve:restore")
	var page slackfake.Message
	w.waitFor("the approvers' page", func() bool {
		for _, m := range w.slack.Thread(incChan, ts) {
			if strings.HasPrefix(m.Text, "🙋") {
				page = m
				return true
			}
		}
		return false
	})
	who, _, _ := strings.Cut(page.Text, ": ")
	if got := strings.Fields(strings.TrimPrefix(who, "🙋 ")); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"<!subteam^S0ONCALL>", "<@" + bob + ">"}) {
		t.Errorf("the page is addressed to %q, want bob and the on-call group, not the requester", who)
	}
	if !strings.Contains(page.Text, "approval requested by <@"+alice+"> to set 1001@acme.example's dial permission") {
		t.Errorf("the page does not say who asks for what: %q", page.Text)
	}
	if page.Method != "chat.postMessage" || page.TS == ts || !page.Broadcast {
		t.Errorf("the page came by %s (ts %s, broadcast %v), want a new thread reply broadcast to the channel", page.Method, page.TS, page.Broadcast)
	}
	for _, c := range w.slack.Calls("chat.update") {
		if c.Form.Get("ts") == page.TS {
			t.Errorf("the page was edited: Slack would not notify a mention added by chat.update")
		}
	}
	w.click(bob, ts, "approve:restore")
	w.waitFor("restore failed", func() bool { return w.step(inc.ID, session.StepRestore).Status == session.StatusFailed })

	for series, want := range map[string]float64{
		`compromised_steps_total{kind="drift",result="failed",step="restore"}`: 1,
		`compromised_steps_total{kind="",result="done",step="deny"}`:           1,
		`compromised_time_to_containment_seconds_count`:                        1,
		`compromised_incidents_open`:                                           1,
		`compromised_incidents_in_deny_all`:                                    1,
		`compromised_build_info{version="` + version + `"}`:                    1,
	} {
		// The failure is counted when the engine records it, a moment before the card shows it.
		w.waitFor(series, func() bool { return metric(t, b.url, series) == want })
	}
	w.scrape(b.url)
	rules, err := os.ReadFile("../../deploy/prometheus-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`compromised_[a-z_]+`).FindAllString(string(rules), -1)
	if len(names) < 5 {
		t.Fatalf("the alert rules name %d series", len(names))
	}
	for _, n := range names {
		if !strings.Contains(w.scraped[0], "\n"+n) {
			t.Errorf("deploy/prometheus-alerts.yaml names %s, which /metrics does not export", n)
		}
	}
	b.stop(t)

	lines := w.logLines(1)
	ms := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	var started, stepFailed bool
	for _, l := range lines {
		if tm, _ := l["time"].(string); !ms.MatchString(tm) {
			t.Errorf("log time %q is not UTC with milliseconds: %v", tm, l)
		}
		if l["message"] == "starting bot serve" {
			started = l["version"] == version
		}
		_, inJob := l["envelope"]
		if inJob || l["component"] == "remediate" && l["step"] != nil {
			for _, k := range []string{"incident", "step", "actor"} {
				if _, ok := l[k]; !ok {
					t.Errorf("a job's log line lacks %s: %v", k, l)
				}
			}
		}
		if l["message"] == "step failed" {
			stepFailed = l["incident"] == inc.ID && l["step"] == "restore" && l["actor"] == alice
		}
	}
	if !started {
		t.Error("no start-up line with the version")
	}
	if !stepFailed {
		t.Error(`no "step failed" line naming the incident, restore and its requester`)
	}
}

// logLines parses the JSON log lines of the run whose stderr is w.logs[i].
func (w *world) logLines(i int) []map[string]any {
	w.t.Helper()
	w.mu.Lock()
	text := w.logs[i].String()
	w.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			w.t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}
