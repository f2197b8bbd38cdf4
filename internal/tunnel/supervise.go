package tunnel

import (
	"context"
	"time"
)

// supervise runs in Run's goroutine. It owns the idle and ping timers, turns
// Shutdown and ctx into close requests, and returns when the tunnel should end.
func (t *Tunnel) supervise(ctx context.Context) {
	var timer *time.Timer
	var timerc <-chan time.Time
	if t.opt.IdleTimeout > 0 || (t.opt.Frames && t.opt.PingInterval > 0) {
		timer = time.NewTimer(time.Hour)
		defer timer.Stop()
		timerc = timer.C
	}
	var linger *time.Timer
	var lingerc <-chan time.Time
	defer func() {
		if linger != nil {
			linger.Stop()
		}
	}()
	ctxDone := ctx.Done()
	t.mu.Lock()
	shutdownc := (<-chan struct{})(t.shutdownc) // made by newGoEngine
	t.mu.Unlock()
	for {
		if t.shouldFinish() {
			return
		}
		if timer != nil {
			timer.Reset(t.keepalive())
			if t.shouldFinish() {
				return
			}
		}
		if t.closing.Load() && linger == nil {
			linger = time.NewTimer(time.Duration(t.grace.Load()))
			lingerc = linger.C
		}
		select {
		case <-ctxDone:
			ctxDone = nil
			t.setErr(context.Cause(ctx))
			if !t.opt.Frames {
				return
			}
			t.closeBoth(CloseGoingAway, "", shutdownGrace)
		case <-shutdownc:
			shutdownc = nil
			if !t.opt.Frames {
				return
			}
			t.closeBoth(t.shutdownCode, t.shutdownReason, shutdownGrace)
		case <-t.kickc:
		case <-timerc:
		case <-lingerc:
			return
		}
	}
}

// shouldFinish reports whether the tunnel has nothing left to carry.
func (t *Tunnel) shouldFinish() bool {
	if !t.opt.Frames {
		return t.exited.Load() > 0 || t.client.flags.Load()&flagGone != 0 || t.backend.flags.Load()&flagGone != 0
	}
	if t.exited.Load() == 2 {
		return true
	}
	cf, bf := t.client.flags.Load(), t.backend.flags.Load()
	if t.closing.Load() {
		return cf&(flagClosedIn|flagGone) != 0 && bf&(flagClosedIn|flagGone) != 0
	}
	return cf&flagClosedIn != 0 && bf&flagClosedIn != 0
}

// keepalive enforces IdleTimeout, PingInterval and PingTimeout and returns
// how long until it needs to look again.
func (t *Tunnel) keepalive() time.Duration {
	now := t.clock()
	next := int64(time.Hour)
	if it := int64(t.opt.IdleTimeout); it > 0 && !t.closing.Load() {
		last := max(t.client.lastRead.Load(), t.backend.lastRead.Load())
		if now-last >= it {
			t.setErr(ErrIdleTimeout)
			if !t.opt.Frames {
				t.client.flags.Or(flagGone)
				return time.Duration(next)
			}
			t.closeBoth(CloseGoingAway, "", shutdownGrace)
		} else {
			next = min(next, last+it-now)
		}
	}
	if pi, pt := int64(t.opt.PingInterval), int64(t.opt.PingTimeout); t.opt.Frames && pi > 0 && !t.closing.Load() {
		for _, p := range [2]*peer{&t.client, &t.backend} {
			f := p.flags.Load()
			if f&(flagGone|flagClosedIn|flagClosedOut) != 0 {
				continue
			}
			if sent := p.pingSent.Load(); sent != 0 {
				if now-sent >= pt {
					t.setErr(ErrPingTimeout)
					t.lost(p, CloseGoingAway, shutdownGrace)
					p.conn.Close()
					return time.Duration(next)
				}
				next = min(next, sent+pt-now)
				continue
			}
			idle := now - p.lastRead.Load()
			if idle < pi {
				next = min(next, pi-idle)
				continue
			}
			if f&flagPingReq == 0 {
				p.flags.Or(flagPingReq)
				t.wake(p)
			}
			// The writer kicks us once the ping is out; look again
			// anyway in case it is stuck inside a long frame.
			next = min(next, pi)
		}
	}
	return time.Duration(max(next, int64(time.Millisecond)))
}

func (t *Tunnel) clock() int64 { return int64(time.Since(t.start)) }

// kick wakes the supervisor to re-evaluate the tunnel's state.
func (t *Tunnel) kick() {
	select {
	case t.kickc <- struct{}{}:
	default:
	}
}

// wake makes p's writer (the copier reading p's partner) look at p's mailbox:
// a read deadline in the past interrupts a blocked read.
func (t *Tunnel) wake(p *peer) {
	p.other.conn.SetReadDeadline(aLongTimeAgo)
}

var aLongTimeAgo = time.Unix(1, 0)

// closeBoth asks for Close(code, reason) to the client and Close 1001 to the
// backend, and starts closing.
func (t *Tunnel) closeBoth(code uint16, reason string, grace time.Duration) {
	t.noteClose(int(code), "proxy")
	t.requestClose(&t.client, code, reason)
	t.requestClose(&t.backend, CloseGoingAway, "")
	t.beginClosing(grace)
}

// requestClose posts a proxy Close frame to p's mailbox. The first request
// for a peer wins.
func (t *Tunnel) requestClose(p *peer, code uint16, reason string) {
	p.mu.Lock()
	if p.closeCode == 0 {
		p.closeCode = code
		p.closeReason = reason
	}
	p.mu.Unlock()
	p.flags.Or(flagCloseReq)
	t.wake(p)
}

// beginClosing switches the tunnel to closing: it ends once both peers have
// sent Close or gone, or after grace.
func (t *Tunnel) beginClosing(grace time.Duration) {
	for {
		g := t.grace.Load()
		if g != 0 && g <= int64(grace) {
			break
		}
		if t.grace.CompareAndSwap(g, int64(grace)) {
			break
		}
	}
	t.closing.Store(true)
	t.kick()
}

// lost records that p's connection ended or must be dropped. Its partner is
// sent Close(code) unless it has already been sent one.
func (t *Tunnel) lost(p *peer, code uint16, grace time.Duration) {
	old := p.flags.Or(flagGone)
	if old&flagGone != 0 {
		return
	}
	if !t.opt.Frames {
		t.kick()
		return
	}
	if p.other.flags.Load()&flagClosedOut == 0 && old&flagClosedIn == 0 {
		t.requestClose(p.other, code, "")
	}
	t.beginClosing(grace)
}

// setErr records why the tunnel ended; the first error wins.
func (t *Tunnel) setErr(err error) {
	if err == nil {
		return
	}
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
}

// noteClose records the first Close frame seen or sent.
func (t *Tunnel) noteClose(code int, by string) {
	t.mu.Lock()
	if t.closeBy == "" {
		t.closeCode = code
		t.closeBy = by
	}
	t.mu.Unlock()
}
