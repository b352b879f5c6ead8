'use strict';
// Shared helpers for the jsforce conformance checks: start bin/sfemulator on a free loopback
// port, read its URL and control token from stdout, call the control API, and stop it.
const { spawn } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');
const crypto = require('node:crypto');

const { Streaming } = require('jsforce/api/streaming');

const root = path.resolve(__dirname, '..', '..');

// Every Faye client jsforce creates is tracked, so that stopping the emulator closes the ones a
// failed test left behind: a live client retries against the stopped emulator forever and
// node --test would wait for its timers without end.
const liveClients = new Set();
const createClient = Streaming.prototype._createClient;
Streaming.prototype._createClient = function trackedCreateClient(...args) {
  const client = createClient.apply(this, args);
  liveClients.add(client);
  return client;
};

// forceClose stops a Faye client for good: no reconnect, no handshake, no resend (Faye sends
// nothing once its dispatcher has no transport).
function forceClose(client) {
  liveClients.delete(client);
  if (client._advice) client._advice.reconnect = 'none';
  if (client._dispatcher) client._dispatcher.close();
}
const API = '62.0';
const DEMO = {
  clientId: 'omniroute-demo',
  clientSecret: 'omniroute-demo-secret',
  username: 'integration@omniroute.demo',
  password: 'omniroute-demo',
};

function startEmulator() {
  const bin = path.join(root, 'bin', 'sfemulator');
  const child = spawn(bin, ['--addr', '127.0.0.1:0', '--seed', 'demo', '--advice-timeout', '5s'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error('sfemulator did not start: ' + err)), 10000);
    child.stderr.on('data', (d) => { err += d; });
    child.on('exit', (code) => reject(new Error('sfemulator exited with ' + code + ': ' + err)));
    child.stdout.on('data', (d) => {
      out += d;
      const lines = out.split('\n');
      const first = lines[0].match(/^sfemulator listening on (http:\/\/127\.0\.0\.1:\d+)$/);
      const ctl = out.match(/^control_token: (\S+)$/m);
      if (first && ctl) {
        clearTimeout(timer);
        resolve({
          url: first[1],
          controlToken: ctl[1],
          // stop disconnects every client still open (each waits at most 3 s for its
          // /meta/disconnect reply), then stops the emulator.
          async stop() {
            await Promise.all([...liveClients].map((c) => disconnect(c)));
            child.removeAllListeners('exit');
            child.kill('SIGTERM');
          },
        });
      }
    });
  });
}

async function control(emu, method, p, body) {
  const res = await fetch(emu.url + '/emulator/v1/' + p, {
    method,
    headers: { Authorization: 'Bearer ' + emu.controlToken, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) {
    throw new Error(`${method} ${p}: ${res.status} ${text}`);
  }
  return JSON.parse(text);
}

// jwtAssertion signs an RS256 JWT bearer assertion with the TEST-ONLY demo key.
function jwtAssertion(aud, sub) {
  const key = fs.readFileSync(path.join(root, 'salesforce', 'emulator', 'testdata', 'demo-jwt-private-key.pem'));
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b64({ alg: 'RS256' });
  const body = b64({ iss: DEMO.clientId, sub, aud, exp: Math.floor(Date.now() / 1000) + 180 });
  const sig = crypto.sign('RSA-SHA256', Buffer.from(head + '.' + body), key).toString('base64url');
  return head + '.' + body + '.' + sig;
}

// waitFor resolves when pred() is true, polling the given async source; rejects after ms.
function waitUntil(pred, ms, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      if (pred()) return resolve();
      if (Date.now() - started > ms) return reject(new Error('timed out waiting for ' + what));
      setTimeout(tick, 20);
    };
    tick();
  });
}

// disconnect waits for the /meta/disconnect reply of a jsforce streaming client (at most ms),
// then closes it for good, so no Faye retry timer outlives the test, whatever state the client
// was in (a client still handshaking has nothing to disconnect and would retry forever).
function disconnect(client, ms = 3000) {
  return new Promise((resolve) => {
    let timer;
    const done = () => {
      clearTimeout(timer);
      forceClose(client);
      resolve();
    };
    timer = setTimeout(done, ms);
    const p = client.disconnect();
    if (!p) return done();
    p.callback(done);
    p.errback(done);
  });
}

module.exports = { startEmulator, control, jwtAssertion, waitUntil, disconnect, DEMO, API };
