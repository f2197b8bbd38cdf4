// Package lb holds wsgate's load-balancing tests: the acceptance list of
// the upstream issue, run through the real wsgate binary.
//
// The package builds ./cmd/wsgate once per test binary (with -race when the
// tests run with -race), writes an nginx-syntax config per test and runs
// wsgate as a subprocess on a 127.0.0.1 port. Backends are real sockets:
// in-process WebSocket echo servers that count what they accept, or, where
// a backend must die for real, this test binary re-executed as a separate
// process (see backendProcess). Clients are github.com/coder/websocket and,
// for Socket.IO, Node's socket.io-client from test/node.
//
// Clients that must look like different machines bind their local address
// to one of 127.0.0.0/8, which is all loopback on Linux.
//
// Under CI=true a missing Node or npm package is a failure, never a skip;
// scripts/deps.sh installs them.
package lb
