package main

import (
	"flag"
	"fmt"
	"io"
	"time"
)

// runQuiet is the quiet subcommand: it waits until the whole machine used
// at most -max-busy percent of one core over a one-second window, for at
// most -timeout. Giving up is not an error: the benchmark goes on and the
// noise gauge of each result records what happened.
func runQuiet(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("quiet", flag.ContinueOnError)
	maxBusy := fs.Float64("max-busy", 10, "busy CPU, in percent of one core, that counts as quiet")
	timeout := fs.Duration("timeout", 60*time.Second, "give up waiting after this long")
	window := fs.Duration("window", time.Second, "length of one measurement")
	if err := fs.Parse(args); err != nil {
		return err
	}
	start := time.Now()
	for {
		t0, b0 := time.Now(), systemBusy()
		time.Sleep(*window)
		busy := 100 * float64(systemBusy()-b0) / float64(time.Since(t0))
		waited := time.Since(start).Round(100 * time.Millisecond)
		if busy <= *maxBusy {
			fmt.Fprintf(w, "quiet after %s (busy %.0f%% of a core)\n", waited, busy)
			return nil
		}
		if waited >= *timeout {
			fmt.Fprintf(w, "not quiet after %s (busy %.0f%% of a core); going on\n", waited, busy)
			return nil
		}
	}
}
