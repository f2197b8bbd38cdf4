// sio-client.js: a socket.io-client in its default mode (HTTP long-polling
// first, then the upgrade to WebSocket) connecting to PROXY_URL, for
// wsgate's load-balancing tests (test/lb).
//
//   PROXY_URL        http://127.0.0.1:PORT (wsgate)
//   LOCAL_ADDRESS    optional source IP (any of 127.0.0.0/8) for every
//                    request of the session, polling and WebSocket alike
//   WITH_CREDENTIALS "1" keeps cookies between requests as a browser does
//                    (engine.io-client's Node cookie jar), for sticky cookies
//   TIMEOUT_MS       overall limit (default 10000)
//
// Once on the websocket transport it emits "hello" and waits for the ack.
// Prints "OK first=polling transport=websocket ack=NAME got hi" and exits
// 0, or "FAIL why" and exits 1.
const http = require('http');
const { io } = require('socket.io-client');

const proxyURL = process.env.PROXY_URL;
const timeoutMs = Number(process.env.TIMEOUT_MS || 10000);

function fail(msg) {
  console.log('FAIL ' + msg);
  process.exit(1);
}
setTimeout(() => fail('timeout after ' + timeoutMs + 'ms'), timeoutMs).unref();

const opts = { reconnection: false, timeout: timeoutMs };
if (process.env.LOCAL_ADDRESS) {
  opts.agent = new http.Agent({ localAddress: process.env.LOCAL_ADDRESS });
}
if (process.env.WITH_CREDENTIALS === '1') {
  opts.withCredentials = true;
}
const socket = io(proxyURL, opts);
const engine = socket.io.engine;
const first = engine.transport ? engine.transport.name : '?';
socket.on('connect_error', (err) => fail('connect_error: ' + err.message + (err.description ? ' (' + JSON.stringify(err.description.message || err.description) + ')' : '')));
socket.on('disconnect', (reason) => fail('disconnect: ' + reason));
socket.on('connect', () => {
  const finish = () => {
    socket.emit('hello', 'hi', (reply) => {
      console.log('OK first=' + first + ' transport=' + engine.transport.name + ' ack=' + reply);
      socket.off('disconnect');
      socket.close();
      process.exit(0);
    });
  };
  if (engine.transport.name === 'websocket') return finish();
  engine.once('upgrade', finish);
  engine.once('upgradeError', (err) => fail('upgrade to websocket failed: ' + err.message));
});
