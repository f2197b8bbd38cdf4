// sio-server.js: a Socket.IO server named NAME on 127.0.0.1:PORT, for
// wsgate's load-balancing tests (test/lb). It acknowledges every "hello"
// with "NAME got MSG", so a client learns which server held its session.
// It prints "listening" once ready and one line per session:
// "connection TRANSPORT", "upgrade TRANSPORT", "disconnect REASON".
// Modules resolve from test/node/node_modules (scripts/deps.sh).
const http = require('http');
const { Server } = require('socket.io');

const port = Number(process.env.PORT);
const name = process.env.NAME || 'server';

const srv = http.createServer();
const io = new Server(srv);
io.on('connection', (socket) => {
  const conn = socket.conn;
  console.log('connection ' + conn.transport.name);
  conn.on('upgrade', (t) => console.log('upgrade ' + t.name));
  socket.on('hello', (msg, ack) => ack(name + ' got ' + msg));
  socket.on('disconnect', (reason) => console.log('disconnect ' + reason));
});
srv.listen(port, '127.0.0.1', () => console.log('listening'));
