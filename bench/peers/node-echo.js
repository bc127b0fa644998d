// node-echo: an echo server on Node's net module. pipe() gives backpressure
// (the socket pauses while its write buffer is full) and, on the peer's FIN,
// ends the writable side once everything read has been written.
//
//   node node-echo.js PORT     listens on 127.0.0.1:PORT
'use strict';

const net = require('net');

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error('usage: node node-echo.js PORT');
  process.exit(64);
}

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});
server.on('error', (err) => {
  console.error(`node-echo: ${err.message}`);
  process.exit(71);
});
server.listen({ host: '127.0.0.1', port, backlog: 4096 });
