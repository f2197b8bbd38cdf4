package main

import (
	"encoding/json"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// result is the one JSON line a load mode prints. Fields that a mode does
// not measure are zero and omitted; proxy_measured says whether -pid was
// given, so a zero CPU figure is told apart from an unmeasured one.
type result struct {
	Mode   string `json:"mode"`
	Target string `json:"target,omitempty"`
	Tag    string `json:"tag,omitempty"`
	URL    string `json:"url"`
	Conns  int    `json:"conns"`
	Size   int    `json:"size"`

	Seconds   float64 `json:"seconds"`
	Ops       int64   `json:"ops"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
	Errors    int64   `json:"errors"`
	FirstErr  string  `json:"first_error,omitempty"`

	// Bytes is payload proxied in both directions (bulk mode).
	Bytes    int64   `json:"bytes,omitempty"`
	MBPerSec float64 `json:"mb_per_sec,omitempty"`

	// Idle mode.
	Held   int `json:"held,omitempty"`
	Echoed int `json:"echoed,omitempty"`

	ProxyMeasured bool    `json:"proxy_measured"`
	ProxyPIDs     []int   `json:"proxy_pids,omitempty"`
	ProxyCPUus    float64 `json:"proxy_cpu_us,omitempty"`
	CPUusPerOp    float64 `json:"cpu_us_per_op,omitempty"`
	CPUusPerMB    float64 `json:"cpu_us_per_mb,omitempty"`
	HoldCPUus     float64 `json:"hold_cpu_us,omitempty"`
	RSSBaseline   int64   `json:"rss_baseline,omitempty"`
	RSSHeld       int64   `json:"rss_held,omitempty"`
	RSSPerConn    float64 `json:"rss_per_conn,omitempty"`

	// ProxyCorePct and LoadCorePct say which core saturates: the proxy's
	// CPU, and the CPU of the load side (wsbench and the echo backend,
	// which share one core), over the window in percent of one core. A
	// side near 100 is the one that limits the rates. Not set for idle.
	ProxyCorePct float64 `json:"proxy_core_pct,omitempty"`
	LoadCorePct  float64 `json:"load_core_pct,omitempty"`

	// OtherCPUpct is CPU used during the window, on the CPUs the measured
	// processes may run on, by processes other than the proxy, the backend
	// and wsbench, in percent of one core.
	OtherCPUpct float64 `json:"other_cpu_pct"`

	// Error is set by the compare script for a target that did not run.
	Error string `json:"error,omitempty"`
}

func (r *result) write(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// tally collects operation counts, latencies and errors from many worker
// goroutines. Each worker records into its own latency slice and hands it
// over once at the end, so the hot path takes no lock.
type tally struct {
	ops    atomic.Int64
	errors atomic.Int64

	mu       sync.Mutex
	firstErr string
	lat      []time.Duration
}

// maxSamples bounds the latency samples one worker keeps; operations past
// it are still counted.
const maxSamples = 1 << 20

func (t *tally) fail(err error) {
	t.errors.Add(1)
	t.mu.Lock()
	if t.firstErr == "" {
		t.firstErr = err.Error()
	}
	t.mu.Unlock()
}

func (t *tally) merge(lat []time.Duration) {
	t.mu.Lock()
	t.lat = append(t.lat, lat...)
	t.mu.Unlock()
}

// fill copies counts, error and latency percentiles into r.
func (t *tally) fill(r *result) {
	r.Ops = t.ops.Load()
	r.Errors = t.errors.Load()
	r.FirstErr = t.firstErr
	if r.Seconds > 0 {
		r.OpsPerSec = float64(r.Ops) / r.Seconds
	}
	slices.Sort(t.lat)
	r.P50us = percentile(t.lat, 0.50)
	r.P99us = percentile(t.lat, 0.99)
}

// percentile returns the q-quantile of sorted samples in microseconds, by
// the nearest-rank method, or 0 for no samples.
func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i]) / float64(time.Microsecond)
}

// measureCPU records proxy CPU between two samples into r, divided by ops.
func measureCPU(r *result, ps procSet, before, after procSample) {
	if !ps.enabled() {
		return
	}
	r.ProxyMeasured = true
	r.ProxyPIDs = ps.pids()
	r.ProxyCPUus = float64(after.cpu-before.cpu) / float64(time.Microsecond)
	if r.Ops > 0 {
		r.CPUusPerOp = r.ProxyCPUus / float64(r.Ops)
	}
}
