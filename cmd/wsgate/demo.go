package main

import (
	"context"
	"embed"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/internal/config"
)

//go:embed demo
var demoFiles embed.FS

// runDemo starts two WebSocket echo backends on loopback, writes the demo
// config and page to a temporary folder and runs wsgate on it.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("wsgate demo", flag.ContinueOnError)
	fset.SetOutput(stderr)
	listen := fset.String("listen", "127.0.0.1:8080", "address the proxy listens on")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	dir, err := os.MkdirTemp("", "wsgate-demo-")
	if err != nil {
		fmt.Fprintf(stderr, "wsgate demo: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	var echo []string
	for i := 1; i <= 2; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintf(stderr, "wsgate demo: %v\n", err)
			return 1
		}
		name := fmt.Sprintf("echo-%d", i)
		srv := &http.Server{Handler: echoBackend(name), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		echo = append(echo, ln.Addr().String())
	}
	err = fs.WalkDir(demoFiles, "demo", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, strings.TrimPrefix(p, "demo"))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := demoFiles.ReadFile(p)
		if err != nil {
			return err
		}
		if filepath.Base(p) == "wsgate.conf" {
			b = []byte(strings.NewReplacer("LISTEN", *listen, "ECHO1", echo[0], "ECHO2", echo[1]).Replace(string(b)))
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		fmt.Fprintf(stderr, "wsgate demo: %v\n", err)
		return 1
	}
	path := filepath.Join(dir, "wsgate.conf")
	cfg, err := config.Load(path, config.Options{})
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, `wsgate demo
  page:       http://%[1]s/
  websocket:  ws://%[1]s/ws/echo   (balanced over %[2]s and %[3]s)
  http api:   http://%[1]s/api/hello
  try:        npx wscat -c ws://%[1]s/ws/echo
  config:     %[4]s
Press Ctrl+C to stop.
`, *listen, echo[0], echo[1], path)
	return serve(path, "", cfg, stderr)
}

// echoBackend answers WebSocket upgrades with an echo service and plain
// requests with a short text naming the backend and the path it saw.
func echoBackend(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "%s: %s %s\n", name, r.Method, r.RequestURI)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, append([]byte(name+": "), msg...)); err != nil {
				return
			}
		}
	})
}
