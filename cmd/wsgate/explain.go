package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/proxy"
)

// headerFlags collects repeated -H "Name: value" flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// runExplain prints, for a sample request, the server and location the
// configuration selects and the exact upstream request wsgate would send.
func runExplain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wsgate explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "wsgate.conf", "configuration file")
	prefix := fs.String("p", "", "prefix path")
	method := fs.String("X", "GET", "request method")
	listen := fs.String("listen", "", "the listen socket the request arrives on (default: the first)")
	remote := fs.String("remote", "127.0.0.1:50000", "client address")
	ws := fs.Bool("ws", false, "make it a WebSocket upgrade request")
	var headers headerFlags
	fs.Var(&headers, "H", "request header \"Name: value\" (repeatable)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: wsgate explain [-c FILE] [-X METHOD] [-H 'Name: value']... [-ws] [-listen ADDR] PATH|URL\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	cfg, err := config.Load(*file, config.Options{Prefix: *prefix, SkipResolve: true})
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	hdr := http.Header{}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			fmt.Fprintf(stderr, "wsgate explain: header %q is not \"Name: value\"\n", h)
			return 2
		}
		hdr.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if *ws {
		hdr.Set("Upgrade", "websocket")
		hdr.Set("Connection", "Upgrade")
		hdr.Set("Sec-WebSocket-Version", "13")
		hdr.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	}
	h, err := proxy.New(cfg, proxy.Options{ErrorLog: log.New(io.Discard, "", 0)})
	if err != nil {
		fmt.Fprintf(stderr, "wsgate explain: %v\n", err)
		return 1
	}
	defer h.Close(nil)
	err = h.Explain(stdout, proxy.ExplainRequest{Method: *method, Target: fs.Arg(0), Header: hdr, Listen: *listen, RemoteAddr: *remote})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
