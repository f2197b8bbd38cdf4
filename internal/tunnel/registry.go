package tunnel

import (
	"context"
	"sync"
	"time"
)

// Registry tracks live tunnels so that reload and shutdown can close them
// with a Close frame. The zero value is ready to use; it is safe for
// concurrent use and must not be copied.
type Registry struct {
	mu      sync.Mutex
	tunnels map[*Tunnel]struct{}
}

// Add registers t and returns a func that removes it; calling the func more
// than once is harmless.
func (r *Registry) Add(t *Tunnel) (remove func()) {
	r.mu.Lock()
	if r.tunnels == nil {
		r.tunnels = make(map[*Tunnel]struct{})
	}
	r.tunnels[t] = struct{}{}
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.tunnels, t)
		r.mu.Unlock()
	}
}

// Len returns the number of registered tunnels.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.tunnels)
}

// snapshot returns the registered tunnels for which match is true (all if
// match is nil).
func (r *Registry) snapshot(match func(*Tunnel) bool) []*Tunnel {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := make([]*Tunnel, 0, len(r.tunnels))
	for t := range r.tunnels {
		if match == nil || match(t) {
			ts = append(ts, t)
		}
	}
	return ts
}

// ShutdownAll calls Shutdown(code, reason) on every registered tunnel at
// once. It does not wait for them to end.
func (r *Registry) ShutdownAll(code uint16, reason string) {
	for _, t := range r.snapshot(nil) {
		t.Shutdown(code, reason)
	}
}

// Drain shuts down (Shutdown(code, "")) every registered tunnel for which
// match returns true (all of them if match is nil), spread evenly over window
// so that clients do not all reconnect at once: the first at once, the last
// after window. It returns when all of them have ended or ctx is done; on ctx
// the rest are left running.
func (r *Registry) Drain(ctx context.Context, window time.Duration, code uint16, match func(*Tunnel) bool) {
	ts := r.snapshot(match)
	if len(ts) == 0 {
		return
	}
	var step time.Duration
	if len(ts) > 1 {
		step = window / time.Duration(len(ts)-1)
	}
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i, t := range ts {
		if d := time.Until(start.Add(time.Duration(i) * step)); i > 0 && d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		t.Shutdown(code, "")
	}
	for _, t := range ts {
		select {
		case <-t.Done():
		case <-ctx.Done():
			return
		}
	}
}
