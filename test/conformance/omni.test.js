'use strict';
// The Omni-Channel flow for one work item, driven by jsforce as a routing partner would.
const test = require('node:test');
const assert = require('node:assert');
const jsforce = require('jsforce');
const { startEmulator, control, DEMO, API } = require('./helpers');

test('jsforce routes one work item and reads the AgentWork back', async (t) => {
  const emu = await startEmulator();
  t.after(() => emu.stop());
  const conn = new jsforce.Connection({
    oauth2: { loginUrl: emu.url, clientId: DEMO.clientId, clientSecret: DEMO.clientSecret },
    version: API,
  });
  await conn.login(DEMO.username, DEMO.password);

  await control(emu, 'POST', 'agents/agent05@omniroute.demo/presence', { status: 'Available' });
  const work = await control(emu, 'POST', 'work', { channel: 'Messaging', queue: 'Support_EN', subject: 'order 42' });
  assert.match(work.psrId, /^0JR/);

  const psrs = await conn.query(
    "SELECT Id, WorkItemId, ServiceChannelId, CapacityWeight, IsPushed, Group.DeveloperName FROM PendingServiceRouting WHERE RoutingModel = 'ExternalRouting' AND IsReadyForRouting = true",
  );
  assert.strictEqual(psrs.totalSize, 1);
  const psr = psrs.records[0];
  assert.strictEqual(psr.Id, work.psrId);
  assert.strictEqual(psr.IsPushed, false);
  assert.strictEqual(psr.Group.DeveloperName, 'Support_EN');

  const presence = await conn.query(
    "SELECT UserId, ServicePresenceStatus.DeveloperName FROM UserServicePresence WHERE IsCurrentState = true",
  );
  assert.strictEqual(presence.totalSize, 1);
  assert.strictEqual(presence.records[0].ServicePresenceStatus.DeveloperName, 'Available');

  const aw = await conn.sobject('AgentWork').create({
    UserId: presence.records[0].UserId,
    WorkItemId: psr.WorkItemId,
    ServiceChannelId: psr.ServiceChannelId,
    PendingServiceRoutingId: psr.Id,
    CapacityWeight: psr.CapacityWeight,
  });
  assert.strictEqual(aw.success, true);
  assert.match(aw.id, /^0Bz/);
  assert.strictEqual((await conn.sobject('PendingServiceRouting').retrieve(psr.Id)).IsPushed, true);

  await control(emu, 'POST', 'agentwork/' + aw.id + '/accept');
  const got = await conn.sobject('AgentWork').retrieve(aw.id);
  assert.strictEqual(got.Status, 'Opened');
  assert.strictEqual(got.PendingServiceRoutingId, psr.Id);
  assert.ok(got.AcceptDateTime);
  await assert.rejects(conn.sobject('PendingServiceRouting').retrieve(psr.Id), { errorCode: 'ENTITY_IS_DELETED' });
  await assert.rejects(conn.sobject('AgentWork').update({ Id: aw.id, Status: 'Closed' }), {
    errorCode: 'INVALID_FIELD_FOR_INSERT_UPDATE',
  });

  await control(emu, 'POST', 'agentwork/' + aw.id + '/close');
  const closed = await conn.query("SELECT Id, Status, CloseDateTime FROM AgentWork WHERE Id = '" + aw.id + "'");
  assert.strictEqual(closed.records[0].Status, 'Closed');
  const listed = await control(emu, 'GET', 'agentwork');
  assert.deepStrictEqual(listed[0].history.map((h) => h.status), ['Assigned', 'Opened', 'Closed']);
});
