//go:build race

package lb

// raceEnabled: the test binary runs with -race, so wsgate is built with
// -race too and a data race it reports fails the test.
const raceEnabled = true
