'use strict';
// jsforce's streaming client (Faye underneath) when the org drops every CometD client: the
// held /meta/connect answers a server-sent /meta/disconnect and then 403::Unknown client
// with advice reconnect "handshake", in that order and in one response; jsforce handshakes
// again, resubscribes and receives the next event.
const test = require('node:test');
const assert = require('node:assert');
const jsforce = require('jsforce');
const { StreamingExtension } = require('jsforce/api/streaming');
const { startEmulator, control, waitUntil, DEMO, API } = require('./helpers');

const PSR = '/data/PendingServiceRoutingChangeEvent';

// recorder is a Faye extension that keeps every incoming /meta message, in arrival order.
function recorder(seen) {
  return {
    incoming(message, callback) {
      if (typeof message.channel === 'string' && message.channel.startsWith('/meta/')) {
        seen.push(JSON.parse(JSON.stringify(message)));
      }
      callback(message);
    },
  };
}

function disconnect(client) {
  return new Promise((resolve) => {
    const p = client.disconnect();
    if (!p) return resolve();
    p.callback(() => resolve());
    p.errback(() => resolve());
  });
}

test('jsforce sees /meta/disconnect after the org drops its clients', async () => {
  const emu = await startEmulator();
  let client;
  try {
    const conn = new jsforce.Connection({
      oauth2: { loginUrl: emu.url, clientId: DEMO.clientId, clientSecret: DEMO.clientSecret },
      version: API,
    });
    await conn.login(DEMO.username, DEMO.password);

    const seen = [];
    const events = [];
    client = conn.streaming.createClient([recorder(seen), new StreamingExtension.Replay(PSR, -1)]);
    const sub = client.subscribe(PSR, (msg) => events.push(msg));
    await new Promise((resolve, reject) => {
      sub.callback(resolve);
      sub.errback(reject);
    });
    const handshakes = () => seen.filter((m) => m.channel === '/meta/handshake' && m.successful).length;
    const subscribes = () => seen.filter((m) => m.channel === '/meta/subscribe' && m.successful).length;
    assert.strictEqual(handshakes(), 1);

    await control(emu, 'POST', 'streaming/drop-clients');
    await waitUntil(() => seen.some((m) => m.channel === '/meta/connect' && m.error), 10000,
      'the failed /meta/connect');

    const failed = seen.findIndex((m) => m.channel === '/meta/connect' && m.error);
    assert.deepStrictEqual(seen[failed - 1], { channel: '/meta/disconnect', successful: true },
      'the server-sent /meta/disconnect comes just before the connect reply');
    const rep = seen[failed];
    assert.strictEqual(rep.error, '403::Unknown client');
    assert.strictEqual(rep.successful, false);
    assert.deepStrictEqual(rep.advice, { reconnect: 'handshake', interval: 0 });

    // jsforce follows the advice: a new handshake and subscription, then events flow again.
    await waitUntil(() => handshakes() >= 2 && subscribes() >= 2, 10000, 'a second handshake and subscription');
    const w = await control(emu, 'POST', 'work', { channel: 'Chat', queue: 'Support_EN' });
    await waitUntil(() => events.length >= 1, 10000, 'the event after the rehandshake');
    assert.deepStrictEqual(events[0].payload.ChangeEventHeader.recordIds, [w.psrId]);
  } finally {
    if (client) {
      await Promise.race([disconnect(client), new Promise((r) => setTimeout(r, 2000))]);
    }
    emu.stop();
  }
});
