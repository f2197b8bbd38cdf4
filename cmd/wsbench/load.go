package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// loadOptions are the flags shared by the load modes.
type loadOptions struct {
	mode     string
	url      *url.URL
	conns    int           // connections (echo, bulk, http, idle) or concurrent workers (handshake)
	duration time.Duration // measured window; for idle, how long connections are held
	warmup   time.Duration // unmeasured run before the window; 0 means none
	size     int           // message size in bytes
	count    int64         // stop the window after this many operations; 0 means no limit
	timeout  time.Duration // bound on any single dial, handshake or I/O wait
	dialers  int           // concurrent dials when opening connections
	procs    procSet       // proxy processes to measure; empty measures nothing
	backend  procSet       // echo backend processes, subtracted from the noise gauge
	target   string        // label copied into the result
	tag      string        // label copied into the result
}

// parseLoadFlags parses the flags of a load mode. Defaults depend on the
// mode: bulk uses 4 connections of 1 MiB messages, the rest 50 of 64 bytes.
func parseLoadFlags(mode string, args []string) (*loadOptions, error) {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	defConns, defSize := 50, 64
	if mode == "bulk" {
		defConns, defSize = 4, 1<<20
	}
	rawURL := fs.String("url", "ws://127.0.0.1:9001/", "target URL (ws:// for WebSocket modes, http:// or ws:// for http)")
	conns := fs.Int("conns", defConns, "connections, or concurrent workers for handshake")
	duration := fs.Duration("duration", 10*time.Second, "measured duration; for idle, the hold time")
	warmup := fs.Duration("warmup", time.Second, "unmeasured warm-up before the measured window")
	size := fs.Int("size", defSize, "message size in bytes")
	count := fs.Int64("count", 0, "stop after this many operations (0: only -duration bounds the run)")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on each dial, handshake and I/O wait")
	dialers := fs.Int("dialers", 64, "concurrent dials while opening connections")
	pids := fs.String("pid", "", "comma-separated proxy PIDs to measure (children are included)")
	backendPIDs := fs.String("backend-pid", "", "comma-separated echo backend PIDs, left out of the noise gauge")
	target := fs.String("target", "", "label for the result line")
	tag := fs.String("tag", "", "label for the result line")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	u, err := url.Parse(*rawURL)
	if err != nil {
		return nil, fmt.Errorf("-url: %w", err)
	}
	switch {
	case mode == "http" && u.Scheme == "ws":
		u.Scheme = "http"
	case mode != "http" && u.Scheme == "http":
		u.Scheme = "ws"
	}
	if (mode == "http" && u.Scheme != "http") || (mode != "http" && u.Scheme != "ws") {
		return nil, fmt.Errorf("-url %s: unsupported scheme for %s", *rawURL, mode)
	}
	if *conns < 1 || *size < 0 || *size > maxFrameLen || *duration <= 0 || *timeout <= 0 || *dialers < 1 {
		return nil, errors.New("-conns, -dialers, -duration and -timeout must be positive and -size within 0..64MiB")
	}
	ps, err := parsePIDs(*pids)
	if err != nil {
		return nil, err
	}
	bs, err := parsePIDs(*backendPIDs)
	if err != nil {
		return nil, err
	}
	return &loadOptions{
		mode: mode, url: u, conns: *conns, duration: *duration, warmup: *warmup,
		size: *size, count: *count, timeout: *timeout, dialers: *dialers,
		procs: ps, backend: bs, target: *target, tag: *tag,
	}, nil
}

// meter returns the sampler for the proxy, the backend and this process.
func (o *loadOptions) meter() meter {
	return newMeter(o.procs, o.backend)
}

func (o *loadOptions) newResult() *result {
	return &result{Mode: o.mode, Target: o.target, Tag: o.tag, URL: o.url.String(), Conns: o.conns, Size: o.size}
}

// payload returns a message of o.size bytes with a recognisable pattern.
func (o *loadOptions) payload() []byte {
	p := make([]byte, o.size)
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	return p
}

// dialAll opens n WebSocket connections, o.dialers at a time. Failed dials
// are recorded in t and leave a nil slot.
func (o *loadOptions) dialAll(n int, t *tally) []*wsConn {
	conns := make([]*wsConn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(o.dialers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
				c, err := dialWS(ctx, o.url)
				cancel()
				if err != nil {
					t.fail(err)
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	return conns
}

// workerOp performs one operation for worker w. It reports whether the
// worker should go on; a worker whose connection broke stops.
type workerOp func(w int) (cont bool, err error)

// drive runs workers goroutines calling op in a loop: first for o.warmup,
// unmeasured, then for the measured window of o.duration (or until o.count
// operations), sampling proxy CPU at both ends of the window. Every worker
// exits within one operation after the window closes; op's own I/O
// deadlines bound that.
func (o *loadOptions) drive(workers int, t *tally, r *result, op workerOp) {
	var measuring, stop atomic.Bool
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1024)
			for !stop.Load() {
				start := time.Now()
				cont, err := op(w)
				in := measuring.Load()
				if err != nil {
					t.fail(err)
				} else if in {
					t.ops.Add(1)
					if len(lat) < maxSamples {
						lat = append(lat, time.Since(start))
					}
				}
				if !cont {
					break
				}
				if err != nil {
					time.Sleep(10 * time.Millisecond) // do not spin on a refusing target
				}
			}
			t.merge(lat)
		}()
	}
	time.Sleep(o.warmup)
	m := o.meter()
	before := m.sample()
	begin := time.Now()
	measuring.Store(true)
	end := begin.Add(o.duration)
	for time.Now().Before(end) && (o.count == 0 || t.ops.Load() < o.count) {
		time.Sleep(min(20*time.Millisecond, time.Until(end)))
	}
	measuring.Store(false)
	r.Seconds = time.Since(begin).Seconds()
	after := m.sample()
	stop.Store(true)
	wg.Wait()
	t.fill(r)
	measureCPU(r, o.procs, before.proxy, after.proxy)
	r.OtherCPUpct = otherCPUPercent(before, after)
	coreBusy(r, before, after)
}
