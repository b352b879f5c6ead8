'use strict';
// jsforce logs in to a freshly started sfemulator with the password grant and the JWT grant.
const test = require('node:test');
const assert = require('node:assert');
const jsforce = require('jsforce');
const { startEmulator, control, jwtAssertion, DEMO, API } = require('./helpers');

test('jsforce logs in with the password grant and the JWT bearer grant', async (t) => {
  const emu = await startEmulator();
  t.after(() => emu.stop());

  const conn = new jsforce.Connection({
    oauth2: { loginUrl: emu.url, clientId: DEMO.clientId, clientSecret: DEMO.clientSecret },
    version: API,
  });
  const info = await conn.login(DEMO.username, DEMO.password);
  assert.match(info.id, /^005/);
  assert.match(info.organizationId, /^00D/);
  assert.strictEqual(conn.instanceUrl, emu.url);
  const res = await conn.query("SELECT Id, Username FROM User WHERE Username = 'integration@omniroute.demo'");
  assert.strictEqual(res.totalSize, 1);
  assert.strictEqual(res.records[0].Id, info.id);

  await assert.rejects(
    new jsforce.Connection({
      oauth2: { loginUrl: emu.url, clientId: DEMO.clientId, clientSecret: DEMO.clientSecret },
      version: API,
    }).login(DEMO.username, 'wrong'),
    /authentication failure/,
  );

  const jwtConn = new jsforce.Connection({ oauth2: { loginUrl: emu.url, clientId: DEMO.clientId }, version: API });
  const jinfo = await jwtConn.authorize({
    grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
    assertion: jwtAssertion('https://login.salesforce.com', 'agent03@omniroute.demo'),
  });
  assert.match(jinfo.id, /^005/);
  const who = await jwtConn.query('SELECT Username FROM User WHERE Id = \'' + jinfo.id + '\'');
  assert.strictEqual(who.records[0].Username, 'agent03@omniroute.demo');

  await assert.rejects(
    new jsforce.Connection({ oauth2: { loginUrl: emu.url, clientId: DEMO.clientId }, version: API }).authorize({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      assertion: jwtAssertion('https://evil.example.com', DEMO.username),
    }),
    /audience is invalid/,
  );

  // The request log records grant types and never tokens.
  const reqs = await control(emu, 'GET', 'requests');
  const grants = reqs.filter((r) => r.path === '/services/oauth2/token').map((r) => r.grantType);
  assert.ok(grants.includes('password'));
  assert.ok(grants.includes('urn:ietf:params:oauth:grant-type:jwt-bearer'));
  assert.ok(!JSON.stringify(reqs).includes(conn.accessToken));
});
