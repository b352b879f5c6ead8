'use strict';
// Issue 8 fidelity checks with jsforce: the filtered, enriched ExternalRoutingChannel__chn
// through offer -> decline -> re-offer -> accept, and queryAll returning a deleted row.
const test = require('node:test');
const assert = require('node:assert');
const jsforce = require('jsforce');
const { StreamingExtension } = require('jsforce/api/streaming');
const { startEmulator, control, waitUntil, DEMO, API } = require('./helpers');

const CHANNEL = '/data/ExternalRoutingChannel__chn';
const AGENT = 'agent07@omniroute.demo';

async function login(emu) {
  const conn = new jsforce.Connection({
    oauth2: { loginUrl: emu.url, clientId: DEMO.clientId, clientSecret: DEMO.clientSecret },
    version: API,
  });
  await conn.login(DEMO.username, DEMO.password);
  return conn;
}

function disconnect(client) {
  return new Promise((resolve) => {
    const p = client.disconnect();
    if (!p) return resolve();
    p.callback(() => resolve());
    p.errback(() => resolve());
  });
}

test('jsforce on ExternalRoutingChannel__chn: offer, decline, re-offer, accept, enriched', async (t) => {
  const emu = await startEmulator();
  t.after(() => emu.stop());
  const conn = await login(emu);
  await control(emu, 'POST', 'agents/' + AGENT + '/presence', { status: 'Available' });
  const userId = (await conn.query("SELECT Id FROM User WHERE Username = '" + AGENT + "'")).records[0].Id;

  const got = [];
  const client = conn.streaming.createClient([new StreamingExtension.Replay(CHANNEL, -1)]);
  const sub = client.subscribe(CHANNEL, (msg) => got.push(msg));
  await new Promise((resolve, reject) => {
    sub.callback(resolve);
    sub.errback(reject);
  });
  t.after(() => disconnect(client));

  const work = await control(emu, 'POST', 'work', { channel: 'Chat', queue: 'Support_EN' });
  const psr = await conn.sobject('PendingServiceRouting').retrieve(work.psrId);
  const offer = () =>
    conn.sobject('AgentWork').create({
      UserId: userId,
      WorkItemId: psr.WorkItemId,
      ServiceChannelId: psr.ServiceChannelId,
      PendingServiceRoutingId: psr.Id,
      CapacityWeight: psr.CapacityWeight,
    });
  const first = await offer();
  assert.strictEqual(first.success, true);
  await control(emu, 'POST', 'agentwork/' + first.id + '/decline', { reason: 'busy' });
  const second = await offer();
  await control(emu, 'POST', 'agentwork/' + second.id + '/accept');

  const kind = (m) => m.payload.ChangeEventHeader.entityName + ':' + m.payload.ChangeEventHeader.changeType;
  await waitUntil(() => got.filter((m) => kind(m) === 'AgentWork:UPDATE').length >= 2, 10000, 'two AgentWork updates');
  assert.deepStrictEqual(got.map(kind), [
    'PendingServiceRouting:CREATE',
    'PendingServiceRouting:UPDATE', // offer
    'AgentWork:UPDATE', // decline
    'PendingServiceRouting:UPDATE',
    'PendingServiceRouting:UPDATE', // re-offer
    'AgentWork:UPDATE', // accept; the PSR DELETE is not delivered by default
  ]);
  for (const m of got) {
    const h = m.payload.ChangeEventHeader;
    assert.strictEqual(h.recordIds.length, 1, 'single-record events');
    if (h.changeType !== 'UPDATE') continue;
    // Enriched: the filter fields carry current values although they did not change.
    assert.strictEqual(m.payload.RoutingModel, 'ExternalRouting');
    assert.ok(!h.changedFields.includes('RoutingModel'));
    if (h.entityName === 'PendingServiceRouting') {
      assert.strictEqual(m.payload.IsReadyForRouting, true);
      assert.ok(!h.changedFields.includes('IsReadyForRouting'));
      assert.ok(h.changedFields.includes('IsPushed'));
    }
  }
  assert.deepStrictEqual(
    got.filter((m) => kind(m) === 'PendingServiceRouting:UPDATE').map((m) => m.payload.IsPushed),
    [true, false, true],
  );
  assert.strictEqual(got[2].payload.Status, 'Declined');
  assert.strictEqual(got[5].payload.Status, 'Opened');
  assert.deepStrictEqual(got[5].payload.ChangeEventHeader.recordIds, [second.id]);
});

test('jsforce queryAll returns a deleted row with IsDeleted = true', async (t) => {
  const emu = await startEmulator();
  t.after(() => emu.stop());
  const conn = await login(emu);
  const created = await conn.sobject('Case').create({ Subject: 'to the recycle bin' });
  assert.strictEqual(created.success, true);
  await conn.sobject('Case').destroy(created.id);

  const soql = "SELECT Id, IsDeleted, Subject FROM Case WHERE Id = '" + created.id + "'";
  assert.strictEqual((await conn.query(soql)).totalSize, 0);
  const all = await conn.query(soql, { scanAll: true });
  assert.strictEqual(all.totalSize, 1);
  assert.strictEqual(all.records[0].Id, created.id);
  assert.strictEqual(all.records[0].IsDeleted, true);
  assert.strictEqual(all.records[0].Subject, 'to the recycle bin');
});
