// Package e2e holds wsgate's end-to-end tests. They build ./cmd/wsgate once
// per test binary, run it as a subprocess with generated nginx-syntax
// configs, and drive it over real sockets on 127.0.0.1 with recording
// HTTP/WebSocket backends. The same configs run under real nginx, which is
// the reference: every seed test runs against both, and the differential
// tests require that the backends see the same requests and the clients get
// the same status codes from both.
//
// The tests need nginx and the Node peers in test/node; scripts/deps.sh
// installs them. Under CI=true a missing peer is a test failure, never a skip.
//
// Outside CI, WSGATE_BIN=/path/to/wsgate tests that binary instead of building
// ./cmd/wsgate, and E2E_PROXIES=nginx runs the nginx half only (to check the
// tests' expectations against the reference while wsgate is being written).
package e2e
