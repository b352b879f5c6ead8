'use strict';
// jsforce's streaming Replay extension against the emulator's CometD server: CDC and a
// PushTopic created over REST, then resubscribing from the last replayId and with -2.
const test = require('node:test');
const assert = require('node:assert');
const jsforce = require('jsforce');
const { StreamingExtension } = require('jsforce/api/streaming');
const { startEmulator, control, waitUntil, disconnect, DEMO, API } = require('./helpers');

const PSR = '/data/PendingServiceRoutingChangeEvent';

function subscribe(conn, channel, replayId, sink) {
  const client = conn.streaming.createClient([new StreamingExtension.Replay(channel, replayId)]);
  const sub = client.subscribe(channel, (msg) => sink.push(msg));
  return new Promise((resolve, reject) => {
    sub.callback(() => resolve({ client, sub }));
    sub.errback((err) => reject(err));
  });
}

test('jsforce Replay extension on CDC and PushTopic channels', async (t) => {
  const emu = await startEmulator();
  t.after(() => emu.stop());
  const conn = new jsforce.Connection({
    oauth2: { loginUrl: emu.url, clientId: DEMO.clientId, clientSecret: DEMO.clientSecret },
    version: API,
  });
  await conn.login(DEMO.username, DEMO.password);

  const topic = await conn.sobject('PushTopic').create({
    Name: 'PSRPushTopic',
    Query:
      "Select Id, Serial, QueueId, WorkItemId, IsPushed, ServiceChannelId, LastDeclinedAgentSession, CreatedDate from PendingServiceRouting where RoutingModel = 'ExternalRouting'",
    ApiVersion: 41.0,
    NotifyForOperationCreate: true,
    NotifyForOperationUpdate: true,
    NotifyForOperationDelete: true,
    NotifyForFields: 'Referenced',
  });
  assert.strictEqual(topic.success, true);

  const cdc = [];
  const pushed = [];
  const a = await subscribe(conn, PSR, -1, cdc);
  const b = await subscribe(conn, '/topic/PSRPushTopic', -1, pushed);

  const w1 = await control(emu, 'POST', 'work', { channel: 'Chat', queue: 'Support_EN' });
  const w2 = await control(emu, 'POST', 'work', { channel: 'Case', queue: 'Billing' });
  await waitUntil(() => cdc.length >= 2 && pushed.length >= 2, 10000, 'two CDC and two PushTopic events');

  assert.strictEqual(cdc[0].payload.ChangeEventHeader.changeType, 'CREATE');
  assert.deepStrictEqual(cdc[0].payload.ChangeEventHeader.recordIds, [w1.psrId]);
  assert.strictEqual(cdc[0].payload.RoutingModel, 'ExternalRouting');
  assert.strictEqual(cdc[1].payload.ChangeEventHeader.recordIds[0], w2.psrId);
  assert.ok(cdc[1].event.replayId > cdc[0].event.replayId);
  assert.strictEqual(pushed[0].event.type, 'created');
  assert.strictEqual(pushed[0].sobject.Id, w1.psrId);
  assert.strictEqual(pushed[0].sobject.IsPushed, false);
  assert.match(pushed[0].event.createdDate, /Z$/);
  assert.deepStrictEqual(Object.keys(pushed[0].sobject), [
    'Id', 'Serial', 'QueueId', 'WorkItemId', 'IsPushed', 'ServiceChannelId', 'LastDeclinedAgentSession', 'CreatedDate',
  ]);

  const last = cdc[1].event.replayId;
  await disconnect(a.client);
  await disconnect(b.client);

  // Work created while nobody listens.
  const w3 = await control(emu, 'POST', 'work', { channel: 'Phone', queue: 'Support_DE' });

  const later = [];
  const c = await subscribe(conn, PSR, last, later);
  await waitUntil(() => later.length >= 1, 10000, 'the event after the stored replayId');
  assert.deepStrictEqual(later.map((m) => m.payload.ChangeEventHeader.recordIds[0]), [w3.psrId]);
  assert.ok(later.every((m) => m.event.replayId > last));
  await disconnect(c.client);

  const all = [];
  const d = await subscribe(conn, PSR, -2, all);
  await waitUntil(() => all.length >= 3, 10000, 'every retained event with -2');
  assert.deepStrictEqual(
    all.map((m) => m.payload.ChangeEventHeader.recordIds[0]),
    [w1.psrId, w2.psrId, w3.psrId],
  );
  const topicAll = [];
  const e = await subscribe(conn, '/topic/PSRPushTopic', -2, topicAll);
  await waitUntil(() => topicAll.length >= 3, 10000, 'every retained PushTopic event with -2');
  assert.deepStrictEqual(topicAll.map((m) => m.sobject.Id), [w1.psrId, w2.psrId, w3.psrId]);
  await disconnect(d.client);
  await disconnect(e.client);
});
