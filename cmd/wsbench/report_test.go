package main

import (
	"strings"
	"testing"
)

func TestReportMediansAndRatios(t *testing.T) {
	t.Parallel()
	in := `{"mode":"echo","target":"nginx","tag":"echo","conns":50,"size":64,"ops_per_sec":100,"proxy_measured":true,"cpu_us_per_op":10,"proxy_core_pct":50,"load_core_pct":98}
{"mode":"echo","target":"nginx","tag":"echo","conns":50,"size":64,"ops_per_sec":300,"proxy_measured":true,"cpu_us_per_op":30,"proxy_core_pct":70,"load_core_pct":100}
{"mode":"echo","target":"nginx","tag":"echo","conns":50,"size":64,"ops_per_sec":200,"proxy_measured":true,"cpu_us_per_op":20,"proxy_core_pct":60,"load_core_pct":99}
{"mode":"echo","target":"haproxy","tag":"echo","conns":50,"size":64,"ops_per_sec":400,"proxy_measured":true,"cpu_us_per_op":5,"other_cpu_pct":50}
{"mode":"echo","target":"direct","tag":"echo","conns":50,"size":64,"ops_per_sec":1000,"errors":2,"first_error":"boom"}
{"mode":"echo","target":"wsgate","tag":"echo","error":"go build failed"}
`
	results, err := readResults(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	writeReport(&b, results)
	out := b.String()
	for _, want := range []string{
		"| direct | wsgate | nginx | haproxy |",
		"| round trips/s (higher is better) | 1000 | n/a | 200 | 400 | n/a | n/a |",
		"| proxy CPU µs / round trip (lower is better) | — | n/a | 20.00 | 5.00 | n/a | n/a |",
		"| proxy core busy % | — | n/a | 60 | 0 | | |",
		"| load core busy % (wsbench + backend) | 0 | n/a | 99 | 0 | | |",
		"wsgate, echo: 1 of 1 runs did not run: go build failed",
		"direct, echo: 2 errors over 1 runs (first: boom)",
		"haproxy, echo: noisy: other processes used a median 50% of a core",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	results = append(results, &result{Mode: "echo", Target: "wsgate", Tag: "echo", OpsPerSec: 300, ProxyMeasured: true, CPUusPerOp: 10})
	b.Reset()
	writeReport(&b, results)
	if want := "| 300 | 200 | 400 | 1.50× | 0.75× |"; !strings.Contains(b.String(), want) {
		t.Errorf("report lacks %q:\n%s", want, b.String())
	}
}
