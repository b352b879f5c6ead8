'use strict';
// The suite must never hang: a test that fails while its jsforce streaming clients are live
// (connected, or re-handshaking after dropped clients) must still let node --test exit. A
// previous suite waited forever on Faye retry timers after the emulator was stopped.
const test = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const helpers = path.join(__dirname, 'helpers.js');

// The fixture lives outside test/ so that node --test test/conformance/ never runs it itself.
const fixture = `'use strict';
const test = require('node:test');
const assert = require('node:assert');
const jsforce = require(${JSON.stringify(require.resolve('jsforce'))});
const { startEmulator, control, DEMO, API } = require(${JSON.stringify(helpers)});
for (const drop of [false, true]) {
  test('fails with a live streaming client, drop=' + drop, async (t) => {
    const emu = await startEmulator();
    t.after(() => emu.stop());
    const conn = new jsforce.Connection({
      oauth2: { loginUrl: emu.url, clientId: DEMO.clientId, clientSecret: DEMO.clientSecret },
      version: API,
    });
    await conn.login(DEMO.username, DEMO.password);
    const client = conn.streaming.createClient();
    await new Promise((resolve, reject) => {
      const sub = client.subscribe('/data/ChangeEvents', () => {});
      sub.callback(resolve);
      sub.errback(reject);
    });
    if (drop) {
      await control(emu, 'POST', 'streaming/drop-clients');
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.fail('deliberate failure with a live client');
  });
}
`;

test('a failing test with live streaming clients does not hang node --test', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfemu-nohang-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'leftover.test.js');
  fs.writeFileSync(file, fixture);
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT; // a nested runner would otherwise skip the file
  const child = spawn(process.execPath, ['--test', file], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const code = await new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve('hung');
    }, 30000);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  assert.notStrictEqual(code, 'hung', 'node --test did not exit within 30 s:\n' + out);
  assert.strictEqual(code, 1, out);
  assert.match(out, /# fail 2/, out);
});
