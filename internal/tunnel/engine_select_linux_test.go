package tunnel

import "testing"

const epollAvailable = true

// setEngine selects the goroutine engine (or not) for tunnels New creates
// during t.
func setEngine(t testing.TB, goroutines bool) {
	old := forceGoroutines
	forceGoroutines = goroutines
	t.Cleanup(func() { forceGoroutines = old })
}
