package main

import (
	"strings"
	"testing"
)

// A piece of a real `make bench` run: package headers, a sub-benchmark's bare name line, log
// lines, and results with and without the figures the targets name.
const sample = `goos: linux
pkg: github.com/compromised-responder/bot/cmd/bot
BenchmarkBurstHelp-2         	       1	  30828099 ns/op	        15.71 ack-max-ms	        14.35 ack-p99-ms	       200.0 answered/200	 3365608 B/op	   22187 allocs/op
BenchmarkBurstIncidents
BenchmarkBurstIncidents/inflight=8-2         	       1	5231601791 ns/op	       100.0 contained/100	        28.25 peak-RSS-MiB	         3.210 slack-calls/incident	         4.990 total/floor
    burst_bench_test.go:40: a log line
BenchmarkBurstSingleDeny-2                   	       1	 221369087 ns/op	         1.1 click-to-verify/3RTT
BenchmarkLockdown-2                          	       1	8274448854 ns/op	         1.000 all-denied/op	      2281 deny-ms	         1.521 deny/floor	         8.000 slack-calls/lockdown
PASS
ok  	github.com/compromised-responder/bot/cmd/bot	40.1s
`

func TestParse(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 {
		t.Fatalf("%d results, want 4: %+v", len(res), res)
	}
	if res[1].name != "BurstIncidents/inflight=8" || res[1].figures["total/floor"] != "4.990" || res[1].figures["ns/op"] != "5231601791" {
		t.Errorf("second result %+v", res[1])
	}
}

func TestTable(t *testing.T) {
	res, _ := parse(strings.NewReader(sample))
	var b strings.Builder
	rows, err := table(&b, res)
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	// BurstHelp 2, inflight=8 4, SingleDeny 2, Lockdown 3; inflight=32 and rate-limited did not run.
	if rows != 11 {
		t.Errorf("%d rows, want 11:\n%s", rows, out)
	}
	for _, want := range []string{
		"BurstHelp answered/200", "≥ 200", "BurstHelp ack-p99-ms", "≤ 2", "14.35",
		"inflight=8 peak-RSS-MiB", "≤ 32", "28.25",
		"BurstSingleDeny open-to-card/calls-RTT", "not reported",
		"Lockdown deny/floor", "≤ 1.2", "1.521", "Lockdown slack-calls/lockdown", "≤ 20",
		"7 of 11 targets met",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		for fig, verdict := range map[string]string{
			"answered/200": "met", "ack-p99-ms": "MISSED", "contained/100": "met", "total/floor": "MISSED",
			"slack-calls/incident": "met", "peak-RSS-MiB": "met", "click-to-verify/3RTT": "met", "calls-RTT": "MISSED",
			"all-denied/op": "met", "deny/floor": "MISSED", "slack-calls/lockdown": "met",
		} {
			if strings.Contains(line, " "+fig) && !strings.HasSuffix(strings.TrimSpace(line), verdict) {
				t.Errorf("row %q: want %s", line, verdict)
			}
		}
	}
	if strings.Contains(out, "inflight=32") || strings.Contains(out, "rate-limited") {
		t.Errorf("rows for benchmarks that did not run:\n%s", out)
	}
}

func TestTableNothingRan(t *testing.T) {
	var b strings.Builder
	if rows, err := table(&b, nil); err != nil || rows != 0 || !strings.Contains(b.String(), "no benchmark") {
		t.Errorf("rows %d, err %v, out %q", rows, err, b.String())
	}
}
