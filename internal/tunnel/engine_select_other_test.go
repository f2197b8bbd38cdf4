//go:build !linux

package tunnel

import "testing"

const epollAvailable = false

var forceGoroutines bool

func setEngine(t testing.TB, goroutines bool) {}
