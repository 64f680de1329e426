// The socket.io peer: the minimal server equivalent to Chorus for the benchmark.
// `join` puts the socket in a room (answered by `joined`); `msg` is broadcast to every member of
// the room, the sender included (as Chorus sends a durable event to every member).
"use strict";
const http = require("node:http");
const { Server } = require("socket.io");
const { WebSocketServer } = require("ws");

const port = Number(process.env.PORT || 3001);
const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  wsEngine: WebSocketServer,
  perMessageDeflate: false,
  serveClient: false,
  maxHttpBufferSize: 64 * 1024,
});

io.on("connection", (socket) => {
  socket.on("join", (room) => {
    socket.join(room);
    socket.emit("joined", room);
  });
  socket.on("msg", (room, payload) => {
    io.to(room).emit("msg", payload);
  });
});

httpServer.listen(port, "127.0.0.1", 4096, () => {
  console.log(`socket.io listening on 127.0.0.1:${port}`);
});
