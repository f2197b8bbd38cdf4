// Command wsbench is the load generator and echo backend used to compare
// wsgate with nginx, HAProxy and a direct connection.
//
//	wsbench echo-server -addr 127.0.0.1:9001
//	wsbench echo|idle|handshake|bulk|http -url ws://127.0.0.1:8080/ -conns 50 -duration 10s -size 64 -pid PID
//	wsbench report results.jsonl
//	wsbench quiet -max-busy 10 -timeout 60s
//
// Each load mode prints one JSON line. With -pid, it also reports the CPU
// time (utime+stime from /proc/PID/stat, summed over the given processes and
// their children) the proxy spent per operation, and for idle mode the
// resident memory per held connection above the proxy's baseline.
package main

import (
	"fmt"
	"os"
)

const usage = `usage:
  wsbench echo-server -addr HOST:PORT
  wsbench echo|idle|handshake|bulk|http -url URL [-conns N] [-duration D] [-size N] [-pid PID[,PID...]]
  wsbench report FILE.jsonl
  wsbench quiet [-max-busy PCT] [-timeout D]
run "wsbench MODE -h" for the flags of a mode`

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("no subcommand\n%s", usage)
	}
	mode, args := args[0], args[1:]
	switch mode {
	case "echo-server":
		return runEchoServer(args)
	case "report":
		return runReport(args, os.Stdout)
	case "quiet":
		return runQuiet(args, os.Stdout)
	case "echo", "bulk", "idle", "handshake", "http":
		o, err := parseLoadFlags(mode, args)
		if err != nil {
			return err
		}
		r, err := runLoad(o)
		if err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
		return r.write(os.Stdout)
	case "-h", "-help", "--help", "help":
		fmt.Println(usage)
		return nil
	}
	return fmt.Errorf("unknown subcommand %q\n%s", mode, usage)
}

// runLoad runs the load mode named by o.mode.
func runLoad(o *loadOptions) (*result, error) {
	switch o.mode {
	case "echo", "bulk":
		return runEcho(o)
	case "idle":
		return runIdle(o)
	case "handshake":
		return runHandshake(o)
	case "http":
		return runHTTP(o)
	}
	return nil, fmt.Errorf("unknown mode %q", o.mode)
}
