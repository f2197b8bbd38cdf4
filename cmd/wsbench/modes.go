package main

import (
	"context"
	"errors"
	"sync"
	"time"
)

var errNoConnections = errors.New("no connection could be opened")

// runEcho measures round trips: each of o.conns connections sends a message
// of o.size bytes and waits for its echo, in a loop. Bulk mode is the same
// loop with large messages, reported per MiB as well.
func runEcho(o *loadOptions) (*result, error) {
	r := o.newResult()
	t := &tally{}
	conns := o.dialAll(o.conns, t)
	defer closeAll(conns)
	if countOpen(conns) == 0 {
		return nil, errNoConnections
	}
	// One deadline for the whole run keeps the hot path free of timer
	// updates while still bounding every read and write.
	deadline := time.Now().Add(o.warmup + o.duration + o.timeout)
	for _, c := range conns {
		if c != nil {
			c.nc.SetDeadline(deadline)
		}
	}
	msg := o.payload()
	o.drive(len(conns), t, r, func(w int) (bool, error) {
		c := conns[w]
		if c == nil {
			return false, nil
		}
		if err := c.echo(msg); err != nil {
			return false, err
		}
		return true, nil
	})
	if o.mode == "bulk" {
		const mib = 1 << 20
		r.Bytes = 2 * int64(o.size) * r.Ops
		if r.Seconds > 0 {
			r.MBPerSec = float64(r.Bytes) / mib / r.Seconds
		}
		if r.Bytes > 0 && r.ProxyMeasured {
			r.CPUusPerMB = r.ProxyCPUus / (float64(r.Bytes) / mib)
		}
	}
	return r, nil
}

// runHandshake measures whole WebSocket lifetimes: o.conns workers each
// connect, echo one message, run the close handshake and start over.
func runHandshake(o *loadOptions) (*result, error) {
	r := o.newResult()
	t := &tally{}
	msg := o.payload()
	o.drive(o.conns, t, r, func(int) (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
		defer cancel()
		c, err := dialWS(ctx, o.url)
		if err != nil {
			return true, err
		}
		dl, _ := ctx.Deadline()
		c.nc.SetDeadline(dl)
		if err := c.echo(msg); err != nil {
			c.nc.Close()
			return true, err
		}
		return true, c.closeHandshake(o.timeout)
	})
	return r, nil
}

// runIdle measures what held connections cost: it samples the proxy, opens
// o.conns connections (each echoes one message so the tunnel has carried
// data), holds them idle for o.duration, samples again, then checks that
// every connection still echoes.
func runIdle(o *loadOptions) (*result, error) {
	r := o.newResult()
	t := &tally{}
	msg := o.payload()
	m := o.meter()
	before := m.sample()
	begin := time.Now()
	conns := o.dialAll(o.conns, t)
	defer closeAll(conns)
	if countOpen(conns) == 0 {
		return nil, errNoConnections
	}
	o.forEach(conns, func(c *wsConn) error {
		c.nc.SetDeadline(time.Now().Add(o.timeout))
		return c.echo(msg)
	}, t)
	r.Held = countOpen(conns)
	opened := m.sample()
	time.Sleep(o.duration)
	held := m.sample()
	r.Seconds = time.Since(begin).Seconds()
	o.forEach(conns, func(c *wsConn) error {
		c.nc.SetDeadline(time.Now().Add(o.timeout))
		err := c.echo(msg)
		if err == nil {
			t.ops.Add(1)
		}
		return err
	}, t)
	r.Echoed = int(t.ops.Load())
	r.Ops = int64(r.Held)
	r.Errors = t.errors.Load()
	r.FirstErr = t.firstErr
	r.OtherCPUpct = otherCPUPercent(before, held)
	if o.procs.enabled() {
		measureCPU(r, o.procs, before.proxy, held.proxy)
		r.HoldCPUus = float64(held.proxy.cpu-opened.proxy.cpu) / float64(time.Microsecond)
		r.RSSBaseline = before.proxy.rss
		r.RSSHeld = held.proxy.rss
		if r.Held > 0 {
			r.RSSPerConn = float64(held.proxy.rss-before.proxy.rss) / float64(r.Held)
		}
	}
	return r, nil
}

// forEach runs f on every open connection, o.dialers at a time. A
// connection whose f fails is closed, recorded in t and dropped.
func (o *loadOptions) forEach(conns []*wsConn, f func(*wsConn) error, t *tally) {
	sem := make(chan struct{}, o.dialers)
	var wg sync.WaitGroup
	for i, c := range conns {
		if c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(c); err != nil {
				t.fail(err)
				c.nc.Close()
				conns[i] = nil
			}
		}()
	}
	wg.Wait()
}

func countOpen(conns []*wsConn) int {
	n := 0
	for _, c := range conns {
		if c != nil {
			n++
		}
	}
	return n
}

// closeAll sends a close frame on every open connection and closes it
// without waiting for the peer's reply.
func closeAll(conns []*wsConn) {
	for i, c := range conns {
		if c == nil {
			continue
		}
		c.nc.SetDeadline(time.Now().Add(time.Second))
		c.writeFrame(opClose, []byte{0x03, 0xE8})
		c.nc.Close()
		conns[i] = nil
	}
}
