// Command benchtable reads `go test -bench` output on stdin and prints the table of issue 9's
// targets: each figure a benchmark reported in that run, its target, the result and whether it
// was met. scripts/test.sh bench (`make bench`) pipes its run through it, so the table is of
// figures measured in one run. A benchmark that did not run (selected out with -bench or -skip)
// has no rows; one that ran without reporting a figure shows it "not reported", missed. The exit
// status is 0 whatever the results: benchmarks never fail on speed.
//
//	go test -run '^$' -bench Burst ./cmd/bot | go run ./scripts/benchtable
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
)

// target is one figure's goal: the benchmark (its name without "Benchmark" and the -GOMAXPROCS
// suffix), the unit it is reported in (b.ReportMetric), and the bound.
type target struct {
	bench, unit string
	atMost      bool // true: result ≤ value; false: result ≥ value
	value       float64
}

// targets are issue 9's ("Benchmarks") and issue 13's lockdown benchmark, in the order the table prints them.
var targets = []target{
	{"BurstHelp", "answered/200", false, 200},
	{"BurstHelp", "ack-p99-ms", true, 2},
	{"BurstIncidents/inflight=8", "contained/100", false, 100},
	{"BurstIncidents/inflight=8", "total/floor", true, 1.2},
	{"BurstIncidents/inflight=8", "slack-calls/incident", true, 4},
	{"BurstIncidents/inflight=8", "peak-RSS-MiB", true, 32},
	{"BurstIncidents/inflight=32", "contained/100", false, 100},
	{"BurstIncidents/inflight=32", "total/floor", true, 1.2},
	{"BurstIncidents/inflight=32", "slack-calls/incident", true, 4},
	{"BurstIncidents/inflight=32", "peak-RSS-MiB", true, 32},
	{"BurstIncidents/rate-limited/inflight=8", "cards/100", false, 100},
	{"BurstIncidents/rate-limited/inflight=8", "contained/100", false, 100},
	// "Containment time within 10 % of the unlimited run": start → the last user shown contained to
	// the engineer who clicked (on the opener's notice or the card), over the same unlimited. The
	// last card's own time (card-deny-time-vs-unlimited, bound by Slack's one post per second per
	// channel) is in the benchmark's line, not a target.
	{"BurstIncidents/rate-limited/inflight=8", "contain-time-vs-unlimited", true, 1.1},
	// The "click → verified Deny All": the PBX's answer to the read-back after the PUT.
	// (click-to-deny/3RTT, the card showing it, comes one Redis write and one chat.update later.)
	{"BurstSingleDeny", "click-to-verify/3RTT", true, 1.2},
	{"BurstSingleDeny", "open-to-card/calls-RTT", true, 1.05},
	// Issue 13's lockdown of a 200-user domain (cmd/bot/lockdown_bench_test.go).
	{"Lockdown", "all-denied/op", false, 1},
	{"Lockdown", "deny/floor", true, 1.2},
	{"Lockdown", "slack-calls/lockdown", true, 20},
}

func (t target) String() string {
	op := "≥"
	if t.atMost {
		op = "≤"
	}
	return op + " " + strconv.FormatFloat(t.value, 'f', -1, 64)
}

func (t target) met(v float64) bool {
	if t.atMost {
		return v <= t.value
	}
	return v >= t.value
}

// result is one benchmark line: its name and its figures by unit, as printed.
type result struct {
	name    string
	figures map[string]string
}

// procsSuffix is the -GOMAXPROCS suffix go test adds to a benchmark's name.
var procsSuffix = regexp.MustCompile(`-\d+$`)

// parse reads the benchmark lines of go test -bench output: "BenchmarkName-P  N  v unit  v unit
// …" (the Go benchmark data format). Hand-written rather than golang.org/x/perf/benchfmt: these
// few lines of a stable format do not warrant a module and its dependencies in go.mod.
func parse(r io.Reader) ([]result, error) {
	var out []result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // "BenchmarkX" alone, before a sub-benchmark's results, or a log line
		}
		res := result{name: procsSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), ""), figures: map[string]string{}}
		for i := 2; i+1 < len(f); i += 2 {
			if _, err := strconv.ParseFloat(f[i], 64); err == nil {
				res.figures[f[i+1]] = f[i]
			}
		}
		out = append(out, res)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read benchmark output: %w", err)
	}
	return out, nil
}

// table writes the rows of every target whose benchmark ran, one per run of it, and the count
// met. It returns how many rows it wrote.
func table(w io.Writer, results []result) (int, error) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\ttarget\tresult\tmet/missed")
	rows, met := 0, 0
	for _, t := range targets {
		for _, r := range results {
			if r.name != t.bench {
				continue
			}
			rows++
			v, ok := r.figures[t.unit]
			verdict := "MISSED"
			if !ok {
				v = "not reported"
			} else if f, _ := strconv.ParseFloat(v, 64); t.met(f) {
				verdict = "met"
				met++
			}
			fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\n", t.bench, t.unit, t, v, verdict)
		}
	}
	if err := tw.Flush(); err != nil {
		return rows, err
	}
	if rows == 0 {
		_, err := fmt.Fprintln(w, "no benchmark with an issue 9 or 13 target ran")
		return 0, err
	}
	_, err := fmt.Fprintf(w, "%d of %d targets met\n", met, rows)
	return rows, err
}

func main() {
	results, err := parse(os.Stdin)
	if err == nil {
		_, err = table(os.Stdout, results)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}
