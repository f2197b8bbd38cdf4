// Package accesslog writes nginx-style access log lines to files,
// stdout or stderr, and reopens files on request (for logrotate).
package accesslog

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/vars"
)

// Set holds the open log destinations of one configuration generation,
// one writer per path. It is safe for concurrent use.
type Set struct {
	mu      sync.Mutex
	writers map[string]*writer
	stop    chan struct{}
	done    chan struct{}
}

// writer buffers lines for one destination and flushes them at least
// once a second, so a busy proxy does not pay a write(2) per request.
type writer struct {
	mu   sync.Mutex
	path string
	f    *os.File
	buf  *bufio.Writer
}

// NewSet returns an empty set; Close stops its flusher.
func NewSet() *Set {
	s := &Set{writers: map[string]*writer{}, stop: make(chan struct{}), done: make(chan struct{})}
	go s.flusher()
	return s
}

func (s *Set) flusher() {
	defer close(s.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.Flush()
			return
		case <-t.C:
			s.Flush()
		}
	}
}

// Open makes sure path is open for writing; it returns the error of
// opening a file (the config then fails to load or reload).
func (s *Set) Open(path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.writers[path]; ok {
		return nil
	}
	w := &writer{path: path}
	if err := w.open(); err != nil {
		return err
	}
	s.writers[path] = w
	return nil
}

func (w *writer) open() error {
	switch w.path {
	case "stdout":
		w.f = os.Stdout
	case "stderr":
		w.f = os.Stderr
	default:
		f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("open access log: %w", err)
		}
		w.f = f
	}
	w.buf = bufio.NewWriterSize(w.f, 32<<10)
	return nil
}

// Write appends one line to path (which must have been opened).
func (s *Set) Write(path, line string) {
	s.mu.Lock()
	w := s.writers[path]
	s.mu.Unlock()
	if w == nil {
		return
	}
	w.mu.Lock()
	w.buf.WriteString(line)
	w.buf.WriteByte('\n')
	if w.f == os.Stdout || w.f == os.Stderr {
		w.buf.Flush()
	}
	w.mu.Unlock()
}

// Flush writes out buffered lines.
func (s *Set) Flush() {
	s.mu.Lock()
	ws := make([]*writer, 0, len(s.writers))
	for _, w := range s.writers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.mu.Lock()
		w.buf.Flush()
		w.mu.Unlock()
	}
}

// Reopen reopens every file (wsgate -s reopen, after logrotate moved them).
func (s *Set) Reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for _, w := range s.writers {
		w.mu.Lock()
		w.buf.Flush()
		if w.f != os.Stdout && w.f != os.Stderr {
			w.f.Close()
			if err := w.open(); err != nil && first == nil {
				first = err
			}
		}
		w.mu.Unlock()
	}
	return first
}

// Close flushes and closes every file.
func (s *Set) Close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.writers {
		if w.f != os.Stdout && w.f != os.Stderr {
			w.f.Close()
		}
	}
}

// Format renders a log line with nginx's escaping for the format.
func Format(t *vars.Template, escape string, r vars.Resolver) string {
	switch escape {
	case "json":
		return t.EvalEscaped(r, escapeJSON)
	case "none":
		return t.EvalEscaped(r, func(s string) string { return s })
	}
	return t.EvalEscaped(r, escapeDefault)
}

// escapeDefault is nginx's default: '"', '\\' and bytes outside 32..126
// become \xXX; an empty value becomes "-".
func escapeDefault(s string) string {
	if s == "" {
		return "-"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 32 || c > 126 {
			fmt.Fprintf(&b, "\\x%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func escapeJSON(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c < 32:
			fmt.Fprintf(&b, "\\u%04x", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
