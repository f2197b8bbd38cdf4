//go:build race

package testenv

// Race is true when the binary runs with the race detector.
const Race = true
