package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// httpBody is what the echo server answers to a plain GET.
const httpBody = "hello from wsbench\n"

// echoHandler serves the benchmark backend: a WebSocket upgrade on any path
// becomes a frame-level echo; any other request gets httpBody.
type echoHandler struct{}

var _ http.Handler = echoHandler{}

func (echoHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, httpBody)
		return
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if r.Method != http.MethodGet || key == "" || r.Header.Get("Sec-WebSocket-Version") != "13" {
		http.Error(w, "bad websocket handshake", http.StatusBadRequest)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot hijack", http.StatusInternalServerError)
		return
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer nc.Close()
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		acceptKey(key) + "\r\n\r\n"
	if _, err := io.WriteString(nc, resp); err != nil {
		return
	}
	echoFrames(nc, brw.Reader)
}

// echoFrames sends every data frame read from br back on nc unmasked, with
// the same opcode and FIN bit, answers pings, and echoes a close frame
// before returning. It returns on the first error or after a close. The
// payload is read into a buffer behind header room, so each echo is a single
// write with no copy.
func echoFrames(nc net.Conn, br *bufio.Reader) {
	buf := make([]byte, maxHeaderLen+512)
	for {
		h, err := readHeader(br)
		if err != nil || !h.masked {
			return
		}
		need := maxHeaderLen + int(h.length)
		if cap(buf) < need {
			buf = make([]byte, need)
		}
		buf = buf[:need]
		payload := buf[maxHeaderLen:]
		if _, err := io.ReadFull(br, payload); err != nil {
			return
		}
		maskBytes(h.mask, payload)
		out := frameHeader{fin: h.fin, opcode: h.opcode, length: h.length}
		switch h.opcode {
		case opPing:
			out.opcode = opPong
		case opPong:
			continue
		}
		start := maxHeaderLen - headerLen(out)
		putHeader(buf[start:], out)
		if _, err := nc.Write(buf[start:]); err != nil {
			return
		}
		if h.opcode == opClose {
			return
		}
	}
}

// runEchoServer is the echo-server subcommand. It serves until SIGINT or
// SIGTERM, then closes the listener and returns.
func runEchoServer(args []string) error {
	fs := flag.NewFlagSet("echo-server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9001", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("echo-server: %w", err)
	}
	srv := &http.Server{
		Handler:           echoHandler{},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Fprintf(os.Stderr, "wsbench echo-server listening on %s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("echo-server: %w", err)
	}
	return nil
}
