package tunnel

import (
	"net"
	"sync"
	"sync/atomic"
)

// Peer flags. A peer's flags are its mailbox (requests for its writer) and
// its closing state, in one word so a copier checks them with one atomic
// load per frame.
const (
	flagPingReq     = 1 << iota // the supervisor wants a proxy Ping sent to this peer
	flagCloseReq                // a proxy Close is requested; code in peer.closeCode
	flagClosedOut               // a Close frame has been written to this peer
	flagClosedIn                // this peer has sent a Close frame
	flagGone                    // this peer's connection ended or failed
	flagProxyClosed             // the proxy wrote its own Close: stop forwarding to this peer

	// boundaryMask are the flags a writer acts on at a frame boundary.
	boundaryMask = flagPingReq | flagCloseReq | flagGone | flagProxyClosed
)

// peer is one end of the tunnel. The copier reading the other end is its only
// writer.
type peer struct {
	name     string // "client" or "backend", as reported in Stats.CloseBy
	conn     net.Conn
	other    *peer
	isClient bool // frames from a client are masked; the proxy masks frames to a backend

	flags     atomic.Uint32
	lastRead  atomic.Int64  // Tunnel.clock at the last read from this peer
	pingSent  atomic.Int64  // Tunnel.clock when our unanswered ping was sent, 0 if none
	pingToken atomic.Uint64 // payload of our latest ping, to recognise its Pong

	mu          sync.Mutex // guards closeCode and closeReason
	closeCode   uint16
	closeReason string
}
