// socketio-check.js: a Socket.IO server on BACKEND_PORT and a Socket.IO
// client connecting through the proxy at PROXY_URL. The client starts with
// HTTP long-polling and upgrades to WebSocket, so both pass through the
// proxy. Prints "OK transport=websocket echo=..." and exits 0, or prints
// the failure and exits 1 (within TIMEOUT_MS).
const http = require('http');
const { Server } = require('socket.io');
const { io } = require('socket.io-client');

const backendPort = Number(process.env.BACKEND_PORT);
const proxyURL = process.env.PROXY_URL;
const timeoutMs = Number(process.env.TIMEOUT_MS || 10000);

function fail(msg) {
  console.log('FAIL ' + msg);
  process.exit(1);
}
setTimeout(() => fail('timeout after ' + timeoutMs + 'ms'), timeoutMs).unref();

const srv = http.createServer();
const ioServer = new Server(srv);
ioServer.on('connection', (socket) => {
  socket.on('hello', (msg, ack) => ack('server got ' + msg));
});
srv.listen(backendPort, '127.0.0.1', () => {
  const socket = io(proxyURL, { reconnection: false, timeout: timeoutMs });
  socket.on('connect_error', (err) => fail('connect_error: ' + err.message));
  socket.on('connect', () => {
    const engine = socket.io.engine;
    const finish = () => {
      socket.emit('hello', 'hi', (reply) => {
        console.log('OK transport=' + engine.transport.name + ' echo=' + reply);
        socket.close();
        ioServer.close();
        process.exit(0);
      });
    };
    if (engine.transport.name === 'websocket') return finish();
    engine.once('upgrade', finish);
    engine.once('upgradeError', (err) => fail('upgrade to websocket failed: ' + err.message));
  });
});
