// The reference for the WebSocket fan-out benchmark: the least a broadcast server on `ws` does.
//
// Accepts WebSocket connections on /api/v1/ws (no authentication), answers `subscribe` with
// `subscribed` and `ping` with `pong`, pings every socket every 30 s as Club Pulse does, and on
// `POST /broadcast` sends the posted JSON object, as one `event` frame of the Club Pulse shape, to
// every open socket; the POST is answered once every send has been issued.
//
//   node server.js PORT   (listens on 127.0.0.1; prints "listening PORT pid PID" when ready)
'use strict';
const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2] || 0);
const channel = process.env.WS_REFERENCE_CHANNEL || null; // any channel is accepted
let offset = 0;

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: true });

wss.on('connection', (socket) => {
  socket.isAlive = true;
  socket.on('pong', () => { socket.isAlive = true; });
  socket.on('message', (data, isBinary) => {
    if (isBinary) return;
    let message;
    try { message = JSON.parse(data.toString()); } catch { message = null; }
    if (message && message.type === 'subscribe' && typeof message.channel === 'string') {
      socket.channel = message.channel;
      socket.send(JSON.stringify({ type: 'subscribed', channel: message.channel, offset, recovered: true }));
    } else if (message && message.type === 'ping') {
      socket.send('{"type":"pong"}');
    } else {
      socket.send(JSON.stringify({ type: 'error', code: 'bad_message', detail: 'unknown message' }));
    }
  });
  socket.on('error', () => {});
});

const pinger = setInterval(() => {
  for (const socket of wss.clients) {
    if (!socket.isAlive) { socket.terminate(); continue; }
    socket.isAlive = false;
    socket.ping();
  }
}, 30000);
pinger.unref();

const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/broadcast') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body;
      try { body = JSON.parse(Buffer.concat(chunks).toString() || '{}'); } catch {
        res.writeHead(400).end();
        return;
      }
      offset += 1;
      const target = body.channel || channel;
      // One serialisation, sent to every socket, as a broadcasting server does.
      const frame = JSON.stringify({ type: 'event', channel: target, offset, ...body });
      let sent = 0;
      for (const socket of wss.clients) {
        if (socket.readyState === WebSocket.OPEN && (!target || socket.channel === target)) {
          socket.send(frame);
          sent += 1;
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sent, offset }));
    });
  } else if (req.method === 'GET' && req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ status: 'ok', connections: wss.clients.size }));
  } else {
    res.writeHead(404).end();
  }
});

server.on('upgrade', (req, socket, head) => {
  if (new URL(req.url, 'http://localhost').pathname !== '/api/v1/ws') {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => {
  console.log(`listening ${server.address().port} pid ${process.pid}`);
});

const stop = () => { server.close(); for (const s of wss.clients) s.terminate(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
