'use strict';
// A faye@1.4.3 Bayeux server on loopback, for salesforce/bayeux's tests.
//
//   PORT=0 TIMEOUT=2 node test/faye/server.js
//
// Listens on 127.0.0.1:$PORT (0 = any free port) and prints the port, alone
// on one line, once it listens. Routes:
//   /cometd/62.0   faye's NodeAdapter (long-polling Bayeux)
//   POST /publish  body {"channel": "/topic/X", "data": {...}}: publishes
//                  through the server-side client; answers 200 once faye
//                  has accepted the message
//   GET /log       every meta message the server received, in order, as a
//                  JSON array of {channel, clientId, subscription, ext,
//                  authorization}
//
// Like Salesforce, the server confirms the replay extension on handshake
// replies (ext {"replay": true, "payload.format": true}); faye itself keeps
// no replay ids, so the publisher puts data.event.replayId in each event.
// Faye answers an unknown client id with "401:<id>:Unknown client" (where
// Salesforce says "403::Unknown client").

const http = require('http');
const faye = require('faye');

const port = parseInt(process.env.PORT || '0', 10);
const timeout = parseFloat(process.env.TIMEOUT || '2');
const mount = process.env.MOUNT || '/cometd/62.0';

const log = [];

const bayeux = new faye.NodeAdapter({ mount, timeout });
bayeux.addExtension({
  incoming(message, request, callback) {
    if (request && message.channel && message.channel.startsWith('/meta/')) {
      log.push({
        channel: message.channel,
        clientId: message.clientId || '',
        subscription: message.subscription || '',
        ext: message.ext || null,
        authorization: (request.headers && request.headers.authorization) || '',
      });
    }
    callback(message);
  },
  outgoing(message, request, callback) {
    if (message.channel === '/meta/handshake' && message.successful) {
      message.ext = Object.assign({}, message.ext, { replay: true, 'payload.format': true });
    }
    callback(message);
  },
});

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/publish') {
      const { channel, data } = JSON.parse(await readBody(req));
      bayeux.getClient().publish(channel, data).then(
        () => reply(res, 200, { ok: true }),
        (err) => reply(res, 500, { error: String(err && err.message) }),
      );
      return;
    }
    if (req.method === 'GET' && req.url === '/log') {
      reply(res, 200, log);
      return;
    }
    reply(res, 404, { error: 'not found' });
  } catch (err) {
    reply(res, 400, { error: String(err && err.message) });
  }
});

bayeux.attach(server);

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(server.address().port + '\n');
});

function shutdown() {
  server.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
