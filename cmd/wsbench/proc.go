package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// procSet is the processes of one proxy: the PIDs given with -pid plus
// their direct children (nginx's worker under its master). The zero value
// measures nothing.
type procSet struct {
	roots []int
}

// parsePIDs parses a comma-separated PID list; an empty string gives an
// empty set.
func parsePIDs(s string) (procSet, error) {
	var ps procSet
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return ps, fmt.Errorf("bad -pid %q", f)
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return ps, fmt.Errorf("-pid %d: no such process", pid)
		}
		ps.roots = append(ps.roots, pid)
	}
	return ps, nil
}

func (ps procSet) enabled() bool { return len(ps.roots) > 0 }

// pids returns the roots and their direct children, found by scanning
// /proc for matching parent PIDs.
func (ps procSet) pids() []int {
	out := append([]int(nil), ps.roots...)
	if len(ps.roots) == 0 {
		return out
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		fields, err := statFields(d)
		if err != nil || len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		for _, r := range ps.roots {
			if ppid == r {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
				out = append(out, pid)
			}
		}
	}
	return out
}

// statFields returns the fields of a /proc/PID/stat file after the command
// name, so index 0 is field 3 (state) of proc(5).
func statFields(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("%s: malformed", path)
	}
	return strings.Fields(string(b[i+1:])), nil
}

// procSample is the summed CPU time and resident memory of a procSet at
// one moment.
type procSample struct {
	cpu time.Duration // utime+stime
	rss int64         // VmRSS, bytes
}

// sample reads CPU and RSS of every process in the set. A process that
// vanished is skipped.
func (ps procSet) sample() procSample {
	var s procSample
	for _, pid := range ps.pids() {
		fields, err := statFields(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || len(fields) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(fields[11], 10, 64)
		st, _ := strconv.ParseInt(fields[12], 10, 64)
		s.cpu += time.Duration(ut+st) * time.Second / clockTicks
		s.rss += vmRSS(pid)
	}
	return s
}

// vmRSS returns VmRSS of pid in bytes, or 0 if it cannot be read.
func vmRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		kb, _ := strconv.ParseInt(f[0], 10, 64)
		return kb * 1024
	}
	return 0
}

// cpuBusy returns the CPU time the given CPUs spent outside idle and
// iowait since boot, from /proc/stat; an empty set means all CPUs.
func cpuBusy(cpus map[int]bool) time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	var ticks int64
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if len(cpus) == 0 {
			if f[0] != "cpu" {
				continue
			}
		} else if n, err := strconv.Atoi(f[0][3:]); err != nil || !cpus[n] {
			continue
		}
		for i, v := range f[1:9] {
			if i == 3 || i == 4 { // idle, iowait
				continue
			}
			n, _ := strconv.ParseInt(v, 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// systemBusy is cpuBusy over all CPUs.
func systemBusy() time.Duration { return cpuBusy(nil) }

// allowedCPUs adds to cpus the CPUs pid may run on (Cpus_allowed_list in
// /proc/PID/status, e.g. "0-1,3").
func allowedCPUs(pid int, cpus map[int]bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "Cpus_allowed_list:")
		if !ok {
			continue
		}
		for _, r := range strings.Split(strings.TrimSpace(rest), ",") {
			lo, hi, found := strings.Cut(r, "-")
			a, err1 := strconv.Atoi(lo)
			z := a
			var err2 error
			if found {
				z, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil {
				continue
			}
			for c := a; c <= z; c++ {
				cpus[c] = true
			}
		}
	}
}

// meter samples everything a measured window needs: the proxy, the echo
// backend, this process and the whole machine, so that CPU used by
// processes outside the benchmark shows up as noise.
type meter struct {
	proxy   procSet
	backend procSet
	self    procSet
	cpus    map[int]bool // CPUs the measured processes may use; nil means all
}

// newMeter builds a meter whose noise gauge looks only at the CPUs that the
// proxy, the backend and this process are allowed on, so a core that no
// measured process uses (the proxy's core in a direct run) is not counted.
func newMeter(proxy, backend procSet) meter {
	m := meter{proxy: proxy, backend: backend, self: procSet{roots: []int{os.Getpid()}}, cpus: map[int]bool{}}
	for _, ps := range []procSet{proxy, backend, m.self} {
		for _, pid := range ps.roots {
			allowedCPUs(pid, m.cpus)
		}
	}
	if len(m.cpus) == 0 {
		m.cpus = nil
	}
	return m
}

type meterSample struct {
	at      time.Time
	proxy   procSample
	backend time.Duration
	self    time.Duration
	system  time.Duration
}

func (m meter) sample() meterSample {
	return meterSample{
		at:      time.Now(),
		proxy:   m.proxy.sample(),
		backend: m.backend.sample().cpu,
		self:    m.self.sample().cpu,
		system:  cpuBusy(m.cpus),
	}
}

// otherCPUPercent is the CPU that processes other than the proxy, the
// backend and wsbench used between two samples, in percent of one core.
// It is a noise gauge: a benchmark on a busy machine is not a benchmark.
func otherCPUPercent(a, b meterSample) float64 {
	wall := b.at.Sub(a.at)
	if wall <= 0 {
		return 0
	}
	other := (b.system - a.system) - (b.proxy.cpu - a.proxy.cpu) - (b.backend - a.backend) - (b.self - a.self)
	return max(0, 100*float64(other)/float64(wall))
}

// coreBusy records in r how busy the proxy and the load side kept their
// cores between two samples, in percent of one core.
func coreBusy(r *result, a, b meterSample) {
	wall := b.at.Sub(a.at)
	if wall <= 0 {
		return
	}
	pct := func(d time.Duration) float64 { return 100 * float64(d) / float64(wall) }
	if r.ProxyMeasured {
		r.ProxyCorePct = pct(b.proxy.cpu - a.proxy.cpu)
	}
	r.LoadCorePct = pct((b.backend - a.backend) + (b.self - a.self))
}
