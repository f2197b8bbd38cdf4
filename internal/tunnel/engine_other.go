//go:build !linux

package tunnel

import (
	"context"
	"net"
)

// epollTunnel is the epoll engine's state of a tunnel; other systems have
// only the goroutine engine.
type epollTunnel struct{ h *handoff }

type handoff struct {
	conns [2]net.Conn
	bufs  [2][]byte
}

func useEpoll(client, backend net.Conn) bool { return false }

func newEpollTunnel(t *Tunnel, client net.Conn, clientBuffered []byte, backend net.Conn, backendBuffered []byte) *epollTunnel {
	panic("tunnel: no epoll engine on this system")
}

func (e *epollTunnel) start(ctx context.Context, done func(Stats)) bool { return false }

func (e *epollTunnel) wake() {}

// startEngine starts the shared event loops; there are none here.
func startEngine() {}
