// server.js from seed 004 (NGINX "WebSocket proxying" example), as written,
// except that the port comes from the PORT environment variable (default
// 8010, the document's port) so tests can pick a free one.
console.log("Server started");
var Msg = '';
var WebSocketServer = require('ws').Server
  , wss = new WebSocketServer({port: Number(process.env.PORT || 8010), host: process.env.HOST || '127.0.0.1'});
wss.on('connection', function(ws) {
  ws.on('message', function(message) {
    console.log('Received from client: %s', message);
    ws.send('Server received from client: ' + message);
  });
});
