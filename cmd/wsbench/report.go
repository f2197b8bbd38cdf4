package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// metric is one row of the report: a figure taken from each result of a
// scenario.
type metric struct {
	name   string
	lower  bool // lower is better
	info   bool // neither better nor worse: no ratio
	proxy  bool // needs proxy measurement; "—" for an unmeasured target
	digits int
	value  func(*result) float64
}

// coreRows say which core saturates in a scenario whose rates are
// measured: the one near 100 % limits them.
var coreRows = []metric{
	{name: "proxy core busy %", info: true, proxy: true, digits: 0, value: func(r *result) float64 { return r.ProxyCorePct }},
	{name: "load core busy % (wsbench + backend)", info: true, digits: 0, value: func(r *result) float64 { return r.LoadCorePct }},
}

// scenarioMetrics lists the rows printed for each load mode.
var scenarioMetrics = map[string][]metric{
	"echo": {
		{name: "round trips/s", digits: 0, value: func(r *result) float64 { return r.OpsPerSec }},
		{name: "p50 latency µs", lower: true, digits: 0, value: func(r *result) float64 { return r.P50us }},
		{name: "p99 latency µs", lower: true, digits: 0, value: func(r *result) float64 { return r.P99us }},
		{name: "proxy CPU µs / round trip", lower: true, proxy: true, digits: 2, value: func(r *result) float64 { return r.CPUusPerOp }},
		coreRows[0], coreRows[1],
	},
	"idle": {
		{name: "proxy RSS bytes / held WebSocket", lower: true, proxy: true, digits: 0, value: func(r *result) float64 { return r.RSSPerConn }},
		{name: "proxy CPU µs / connection (open + hold)", lower: true, proxy: true, digits: 1, value: func(r *result) float64 { return r.CPUusPerOp }},
		{name: "proxy CPU µs / connection during the idle hold", lower: true, proxy: true, digits: 1, value: func(r *result) float64 {
			if r.Held == 0 {
				return 0
			}
			return r.HoldCPUus / float64(r.Held)
		}},
		{name: "connections echoing after hold", digits: 0, value: func(r *result) float64 { return float64(r.Echoed) }},
	},
	"handshake": {
		{name: "handshakes/s", digits: 0, value: func(r *result) float64 { return r.OpsPerSec }},
		{name: "p50 latency µs", lower: true, digits: 0, value: func(r *result) float64 { return r.P50us }},
		{name: "p99 latency µs", lower: true, digits: 0, value: func(r *result) float64 { return r.P99us }},
		{name: "proxy CPU µs / handshake", lower: true, proxy: true, digits: 1, value: func(r *result) float64 { return r.CPUusPerOp }},
		coreRows[0], coreRows[1],
	},
	"bulk": {
		{name: "MiB/s (both directions)", digits: 0, value: func(r *result) float64 { return r.MBPerSec }},
		{name: "proxy CPU µs / MiB", lower: true, proxy: true, digits: 0, value: func(r *result) float64 { return r.CPUusPerMB }},
		coreRows[0], coreRows[1],
	},
	"http": {
		{name: "requests/s", digits: 0, value: func(r *result) float64 { return r.OpsPerSec }},
		{name: "p50 latency µs", lower: true, digits: 0, value: func(r *result) float64 { return r.P50us }},
		{name: "p99 latency µs", lower: true, digits: 0, value: func(r *result) float64 { return r.P99us }},
		{name: "proxy CPU µs / request", lower: true, proxy: true, digits: 1, value: func(r *result) float64 { return r.CPUusPerOp }},
		coreRows[0], coreRows[1],
	},
}

// preferredTargets fixes the column order; other targets follow in the
// order they first appear.
var preferredTargets = []string{"direct", "wsgate", "nginx", "haproxy"}

// runReport is the report subcommand: it reads result lines and prints a
// markdown table of per-metric medians with wsgate's ratios to nginx and
// HAProxy.
func runReport(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("report: want one results file")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	results, err := readResults(f)
	if err != nil {
		return fmt.Errorf("report: %s: %w", fs.Arg(0), err)
	}
	writeReport(w, results)
	return nil
}

func readResults(r io.Reader) ([]*result, error) {
	var out []*result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] != '{' {
			continue
		}
		res := new(result)
		if err := json.Unmarshal([]byte(line), res); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, res)
	}
	return out, sc.Err()
}

// scenarioKey names the scenario a result belongs to: its tag, or its mode.
func scenarioKey(r *result) string {
	if r.Tag != "" {
		return r.Tag
	}
	return r.Mode
}

func writeReport(w io.Writer, results []*result) {
	var scenarios, targets []string
	groups := map[[2]string][]*result{}
	mode := map[string]*result{}
	for _, r := range results {
		s := scenarioKey(r)
		if !slices.Contains(scenarios, s) {
			scenarios = append(scenarios, s)
		}
		if !slices.Contains(targets, r.Target) {
			targets = append(targets, r.Target)
		}
		groups[[2]string{s, r.Target}] = append(groups[[2]string{s, r.Target}], r)
		if r.Error == "" && mode[s] == nil {
			mode[s] = r
		}
	}
	slices.SortStableFunc(targets, func(a, b string) int { return targetRank(a) - targetRank(b) })

	fmt.Fprintf(w, "| scenario | metric |")
	for _, t := range targets {
		fmt.Fprintf(w, " %s |", t)
	}
	fmt.Fprintf(w, " wsgate ÷ nginx | wsgate ÷ haproxy |\n|---|---|")
	for range targets {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprint(w, "---:|---:|\n")

	var notes []string
	for _, s := range scenarios {
		first := mode[s]
		if first == nil {
			first = groups[[2]string{s, targets[0]}][0]
		}
		label := scenarioLabel(s, first)
		for _, m := range scenarioMetrics[first.Mode] {
			switch {
			case m.info:
				fmt.Fprintf(w, "| %s | %s |", label, m.name)
			case m.lower:
				fmt.Fprintf(w, "| %s | %s (lower is better) |", label, m.name)
			default:
				fmt.Fprintf(w, "| %s | %s (higher is better) |", label, m.name)
			}
			medians := map[string]float64{}
			for _, t := range targets {
				v, ok, why := medianOf(groups[[2]string{s, t}], m)
				if ok {
					medians[t] = v
					fmt.Fprintf(w, " %s |", formatValue(v, m.digits))
				} else {
					fmt.Fprintf(w, " %s |", why)
				}
			}
			if m.info {
				fmt.Fprint(w, " | |\n")
				continue
			}
			fmt.Fprintf(w, " %s | %s |\n", ratio(medians, "wsgate", "nginx"), ratio(medians, "wsgate", "haproxy"))
		}
		for _, t := range targets {
			if n := notesFor(s, t, groups[[2]string{s, t}]); n != "" {
				notes = append(notes, n)
			}
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}

func targetRank(t string) int {
	if i := slices.Index(preferredTargets, t); i >= 0 {
		return i
	}
	return len(preferredTargets)
}

func scenarioLabel(key string, r *result) string {
	switch r.Mode {
	case "idle":
		return fmt.Sprintf("%s (%d held, %d B)", key, r.Conns, r.Size)
	case "bulk":
		return fmt.Sprintf("%s (%d conns, %d KiB msgs)", key, r.Conns, r.Size>>10)
	case "handshake":
		return fmt.Sprintf("%s (%d workers, %d B msg)", key, r.Conns, r.Size)
	case "http":
		return fmt.Sprintf("%s (%d conns)", key, r.Conns)
	}
	return fmt.Sprintf("%s (%d conns, %d B)", key, r.Conns, r.Size)
}

// medianOf returns the median of m over the runs that produced a result,
// or why there is none: "n/a" when the target did not run, "—" when the
// figure needs a proxy and none was measured.
func medianOf(runs []*result, m metric) (float64, bool, string) {
	var vs []float64
	for _, r := range runs {
		if r.Error != "" {
			continue
		}
		if m.proxy && !r.ProxyMeasured {
			return 0, false, "—"
		}
		vs = append(vs, m.value(r))
	}
	if len(vs) == 0 {
		return 0, false, "n/a"
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2], true, ""
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2, true, ""
}

func formatValue(v float64, digits int) string {
	if math.Abs(v) >= 100 && digits > 1 {
		digits = 1
	}
	return fmt.Sprintf("%.*f", digits, v)
}

// ratio formats a/b of two targets' medians, or "n/a".
func ratio(medians map[string]float64, a, b string) string {
	va, okA := medians[a]
	vb, okB := medians[b]
	if !okA || !okB || vb == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", va/vb)
}

// noisyPercent is the median share of a core that other processes may use
// during a run before the report flags the cell.
const noisyPercent = 10

// notesFor summarises failures, errors and noise of one scenario and target.
func notesFor(scenario, target string, runs []*result) string {
	var failed, errs int64
	var first string
	var noise []float64
	for _, r := range runs {
		if r.Error == "" {
			noise = append(noise, r.OtherCPUpct)
		}
		switch {
		case r.Error != "":
			failed++
			if first == "" {
				first = r.Error
			}
		case r.Errors > 0:
			errs += r.Errors
			if first == "" {
				first = r.FirstErr
			}
		}
	}
	var parts []string
	switch {
	case failed > 0:
		parts = append(parts, fmt.Sprintf("%d of %d runs did not run: %s", failed, len(runs), first))
	case errs > 0:
		parts = append(parts, fmt.Sprintf("%d errors over %d runs (first: %s)", errs, len(runs), first))
	}
	if len(noise) > 0 {
		slices.Sort(noise)
		if m := noise[len(noise)/2]; m > noisyPercent {
			parts = append(parts, fmt.Sprintf("noisy: other processes used a median %.0f%% of a core during the runs", m))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("%s, %s: %s", target, scenario, strings.Join(parts, "; "))
}
