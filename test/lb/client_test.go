package lb

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// client is one simulated machine: every connection it opens comes from
// its local address (127.0.0.1 when empty).
type client struct {
	local string // IP to bind, e.g. "127.3.7.9"; "" for the default
}

func (c client) dialer() *net.Dialer {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if c.local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(c.local)}
	}
	return d
}

func (c client) httpClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{DialContext: c.dialer().DialContext, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// ws opens a WebSocket to url with the extra request headers hdr (may be
// nil), bounded by 10 s. The handshake response is returned on success
// and, when there was one, on failure.
func (c client) ws(url string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: c.httpClient(), HTTPHeader: hdr})
}

// get sends GET url with hdr and returns the status, the X-Backend header,
// the body and the response's Set-Cookie headers.
func (c client) get(url string, hdr http.Header) (*http.Response, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, "", err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.httpClient().Do(req.WithContext(ctx))
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

// echo sends msg on c and returns what came back, bounded by 5 s.
func echo(c *websocket.Conn, msg string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	_, got, err := c.Read(ctx)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if string(got) != msg {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// closeWS ends c with a normal Close, bounded by 2 s.
func closeWS(c *websocket.Conn) {
	done := make(chan struct{})
	go func() {
		c.Close(websocket.StatusNormalClosure, "")
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		c.CloseNow()
	}
}
