'use strict';
// jsforce follows nextRecordsUrl across at least three pages.
const test = require('node:test');
const assert = require('node:assert');
const jsforce = require('jsforce');
const { startEmulator, control, DEMO, API } = require('./helpers');

test('jsforce autoFetch reads a query across three pages', async (t) => {
  const emu = await startEmulator();
  t.after(() => emu.stop());
  const made = await control(emu, 'POST', 'records/Case', { count: 4500, fields: { Subject: 'paging check' } });
  assert.strictEqual(made.count, 4500);

  const conn = new jsforce.Connection({
    oauth2: { loginUrl: emu.url, clientId: DEMO.clientId, clientSecret: DEMO.clientSecret },
    version: API,
  });
  await conn.login(DEMO.username, DEMO.password);
  const records = [];
  const q = conn
    .query("SELECT Id, CaseNumber, Subject FROM Case WHERE Subject = 'paging check' ORDER BY CaseNumber")
    .on('record', (r) => records.push(r));
  await q.run({ autoFetch: true, maxFetch: 10000 });
  assert.strictEqual(records.length, 4500);
  assert.strictEqual(q.totalSize, 4500);
  assert.strictEqual(new Set(records.map((r) => r.Id)).size, 4500);
  assert.strictEqual(records[0].attributes.type, 'Case');
  for (let i = 1; i < records.length; i++) {
    assert.ok(records[i - 1].CaseNumber < records[i].CaseNumber, 'ORDER BY holds across pages');
  }
  const reqs = await control(emu, 'GET', 'requests');
  const pages = reqs.filter((r) => r.path.startsWith('/services/data/v' + API + '/query'));
  assert.ok(pages.length >= 3, 'expected at least 3 query requests, got ' + pages.length);
  assert.ok(pages.some((r) => /\/query\/01g\w+-2000$/.test(r.path)));
  assert.ok(pages.some((r) => /\/query\/01g\w+-4000$/.test(r.path)));

  const count = await conn.query("SELECT COUNT() FROM Case WHERE Subject = 'paging check'");
  assert.strictEqual(count.totalSize, 4500);
});
