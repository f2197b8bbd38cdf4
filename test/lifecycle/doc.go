// Package lifecycle tests wsgate's process lifecycle from the outside: the
// binary runs as a real subprocess with a generated configuration, and the
// tests drive it with signals and "wsgate -s", real WebSocket clients
// (github.com/coder/websocket) and in-test echo backends on 127.0.0.1.
//
// What is covered: reload with established WebSockets and a connect loop,
// invalid reloads, drain of WebSockets whose upstream server was removed
// (Close 1012 spread over websocket_drain_window), listeners that come and
// go, graceful quit and fast stop, log reopen, the proxy's own pings and
// ping timeout, the message size limit, the access log of upgraded
// connections, and file descriptor, thread and memory use after load and
// after many reloads.
package lifecycle
