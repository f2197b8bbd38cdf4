// Command wsgate is a reverse proxy and load balancer for HTTP and
// WebSocket that runs nginx configuration with nginx's meaning.
//
//	wsgate -c wsgate.conf        run in the foreground
//	wsgate -t -c wsgate.conf     test the configuration
//	wsgate -s reload|quit|stop|reopen -c wsgate.conf
//	wsgate demo                  run the built-in demo
//	wsgate explain -c FILE /path show how a request would be routed
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
)

// version is set with -ldflags "-X main.version=..." by release builds.
var version = "0.1.0-dev"

const usage = `Usage: wsgate [-?hvVtTq] [-s signal] [-p prefix] [-c filename] [-g directives]
       wsgate demo [-listen ADDR]
       wsgate explain [-c FILE] [-X METHOD] [-H 'Name: value']... [-ws] PATH|URL

Options:
  -?,-h         : this help
  -v            : show version and exit
  -V            : show version and build details and exit
  -t            : test configuration and exit
  -T            : test configuration, dump it and exit
  -q            : suppress non-error messages during configuration testing
  -s signal     : send signal to the running process: stop, quit, reopen, reload
  -p prefix     : set prefix path (default: the configuration file's directory)
  -c filename   : set configuration file (default: wsgate.conf)
  -g directives : accepted for nginx compatibility; only "daemon off;" is allowed

Commands:
  demo          : run the proxy with built-in echo backends and a demo page
  explain       : show the server, location, upstream and exact upstream request
                  wsgate would use for a sample request (sends nothing)
`

func main() {
	// WSGATE_CPUPROFILE=FILE writes a CPU profile until exit (for the
	// benchmarks in docs/benchmarks.md).
	if f := os.Getenv("WSGATE_CPUPROFILE"); f != "" {
		out, err := os.Create(f)
		if err == nil && pprof.StartCPUProfile(out) == nil {
			code := run(os.Args[1:], os.Stdout, os.Stderr)
			pprof.StopCPUProfile()
			out.Close()
			os.Exit(code)
		}
	}
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	// WSGATE_MEMPROFILE=FILE writes a heap profile at exit.
	if f := os.Getenv("WSGATE_MEMPROFILE"); f != "" {
		if out, err := os.Create(f); err == nil {
			pprof.Lookup("heap").WriteTo(out, 0)
			out.Close()
		}
	}
	os.Exit(code)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "demo" {
		return runDemo(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "explain" {
		return runExplain(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("wsgate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		help    = fs.Bool("h", false, "")
		help2   = fs.Bool("?", false, "")
		showV   = fs.Bool("v", false, "")
		showVV  = fs.Bool("V", false, "")
		test    = fs.Bool("t", false, "")
		dump    = fs.Bool("T", false, "")
		quiet   = fs.Bool("q", false, "")
		sig     = fs.String("s", "", "")
		prefix  = fs.String("p", "", "")
		file    = fs.String("c", "wsgate.conf", "")
		globals = fs.String("g", "", "")
	)
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "wsgate: %v\n%s", err, usage)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wsgate: unexpected argument %q\n%s", fs.Arg(0), usage)
		return 2
	}
	if *help || *help2 {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if *showV || *showVV {
		fmt.Fprintf(stderr, "wsgate version: wsgate/%s\n", version)
		return 0
	}
	if g := strings.TrimSpace(*globals); g != "" && g != "daemon off;" {
		fmt.Fprintf(stderr, "wsgate: -g %q is not supported (only \"daemon off;\")\n", g)
		return 1
	}
	path := *file
	if *prefix != "" && !filepath.IsAbs(path) {
		path = filepath.Join(*prefix, path)
	}
	if *sig != "" {
		return signalProcess(*sig, path, *prefix, stderr)
	}
	cfg, err := config.Load(path, config.Options{Prefix: *prefix})
	if *test || *dump {
		return testConfig(path, cfg, err, *dump, *quiet, stdout, stderr)
	}
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	return serve(path, *prefix, cfg, stderr)
}

func printErrors(w io.Writer, err error) {
	for _, e := range config.Errors(err) {
		fmt.Fprintf(w, "%s\n", e.Error())
	}
}

func testConfig(path string, cfg *config.Config, err error, dump, quiet bool, stdout, stderr io.Writer) int {
	if err != nil {
		printErrors(stderr, err)
		fmt.Fprintf(stderr, "wsgate: configuration file %s test failed\n", path)
		return 1
	}
	if !quiet {
		for _, ig := range cfg.Ignored {
			fmt.Fprintf(stderr, "wsgate: [notice] %s\n", ig)
		}
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stderr, "wsgate: [warn] %s\n", w)
		}
		fmt.Fprintf(stderr, "wsgate: the configuration file %s syntax is ok\n", path)
		fmt.Fprintf(stderr, "wsgate: configuration file %s test is successful\n", path)
	}
	if dump {
		b, _ := os.ReadFile(path)
		fmt.Fprintf(stdout, "# configuration file %s:\n%s\n", path, b)
	}
	return 0
}

// errorLog is the error_log destination. It can be reopened (after
// logrotate moved the file) and pointed at another path on reload.
type errorLog struct {
	mu     sync.Mutex
	path   string // "stderr", "stdout" or a file
	w      io.Writer
	f      *os.File
	stderr io.Writer
}

func (e *errorLog) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.w.Write(p)
}

// open switches to path (which may be the current one: a reopen).
func (e *errorLog) open(path string) error {
	var w io.Writer
	var f *os.File
	switch path {
	case "", "stderr":
		w = e.stderr
	case "stdout":
		w = os.Stdout
	default:
		var err error
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("open() %q failed: %w", path, unwrap(err))
		}
		w = f
	}
	e.mu.Lock()
	old := e.f
	e.path, e.w, e.f = path, w, f
	e.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

func (e *errorLog) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.f != nil {
		return e.f.Close()
	}
	return nil
}

func serve(path, prefix string, cfg *config.Config, stderr io.Writer) int {
	el := &errorLog{stderr: stderr}
	if err := el.open(cfg.ErrorLog); err != nil {
		fmt.Fprintf(stderr, "wsgate: [emerg] %v\n", err)
		return 1
	}
	defer el.Close()
	elog := log.New(el, "", log.LstdFlags)
	g := gateway.New(elog)
	if err := g.Start(cfg); err != nil {
		elog.Printf("[emerg] %v", err)
		return 1
	}
	pidFile := cfg.PID
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		elog.Printf("[warn] cannot write pid file %q: %v", pidFile, err)
		pidFile = ""
	}
	defer func() {
		if pidFile != "" {
			os.Remove(pidFile)
		}
	}()
	elog.Printf("[notice] wsgate/%s started, pid %d, listening on %s", version, os.Getpid(), strings.Join(g.Addrs(), ", "))

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGINT, sigReopen)
	defer signal.Stop(sigs)
	for s := range sigs {
		switch s {
		case syscall.SIGHUP:
			elog.Printf("[notice] signal %d (SIGHUP) received, reconfiguring", syscall.SIGHUP)
			ncfg, err := config.Load(path, config.Options{Prefix: prefix})
			if err != nil {
				for _, e := range config.Errors(err) {
					elog.Printf("[emerg] %s", e.Error())
				}
				elog.Printf("[alert] reload failed: the previous configuration stays in force")
				continue
			}
			if err := g.Reload(ncfg); err != nil {
				elog.Printf("[alert] reload failed: %v; the previous configuration stays in force", err)
				continue
			}
			if ncfg.ErrorLog != el.path {
				if err := el.open(ncfg.ErrorLog); err != nil {
					elog.Printf("[alert] error_log: %v; logging stays on %s", err, el.path)
				}
			}
			if ncfg.PID != pidFile && pidFile != "" {
				os.Remove(pidFile)
				pidFile = ncfg.PID
				os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
			}
			elog.Printf("[notice] reconfigured; %d WebSocket connection(s) carried over", g.Tunnels().Len())
		case sigReopen:
			// As nginx: the notice goes to the old file, then files reopen.
			elog.Printf("[notice] signal %d (SIGUSR1) received, reopening logs", sigReopen)
			if err := el.open(el.path); err != nil {
				elog.Printf("[alert] reopen error_log: %v", err)
			}
			if err := g.ReopenLogs(); err != nil {
				elog.Printf("[alert] reopen logs: %v", err)
			}
		case syscall.SIGQUIT:
			elog.Printf("[notice] signal %d (SIGQUIT) received, shutting down gracefully", syscall.SIGQUIT)
			g.Quit(g.Config().WorkerShutdownTimeout)
			elog.Printf("[notice] exit")
			return 0
		case syscall.SIGTERM, syscall.SIGINT:
			elog.Printf("[notice] signal %v received, exiting", s)
			g.Stop()
			elog.Printf("[notice] exit")
			return 0
		}
	}
	return 0
}

// signalProcess implements "-s stop|quit|reopen|reload": it finds the
// running process through the pid file named by the configuration.
func signalProcess(name, path, prefix string, stderr io.Writer) int {
	sigs := map[string]syscall.Signal{
		"stop": syscall.SIGTERM, "quit": syscall.SIGQUIT, "reopen": sigReopen, "reload": syscall.SIGHUP,
	}
	sig, ok := sigs[name]
	if !ok {
		fmt.Fprintf(stderr, "wsgate: invalid option: \"-s %s\" (expected stop, quit, reopen or reload)\n", name)
		return 1
	}
	pidFile := ""
	if cfg, err := config.Load(path, config.Options{Prefix: prefix, SkipResolve: true}); err == nil {
		pidFile = cfg.PID
	} else {
		dir := prefix
		if dir == "" {
			dir = filepath.Dir(path)
		}
		pidFile = filepath.Join(dir, "wsgate.pid")
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: [error] open() %q failed: %v\n", pidFile, unwrap(err))
		return 1
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		fmt.Fprintf(stderr, "wsgate: [error] invalid PID number %q in %q\n", strings.TrimSpace(string(b)), pidFile)
		return 1
	}
	if err := killProcess(pid, sig); err != nil {
		fmt.Fprintf(stderr, "wsgate: [error] kill(%d, %s) failed: %v\n", pid, name, err)
		return 1
	}
	return 0
}

func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
