'use strict';
// The jsforce side of salesforce.BenchmarkIngest (see docs/performance.md, "Salesforce client").
//
// The Go benchmark starts this script once, with the emulator's instance URL, an access token,
// the channel and the number of events retained on it in the environment. For every line
// "run" on stdin it subscribes with jsforce's streaming client and Replay extension from -2,
// waits for COUNT events, disconnects, and prints one JSON line:
// {"events":N,"seconds":S,"cpuSeconds":C} (C: this process's user+system CPU time meanwhile).
// The clock starts just before the subscription is created and stops at the COUNT-th event,
// so Node's start-up and module loading are not counted.
const readline = require('node:readline');
const jsforce = require('jsforce');
const { StreamingExtension } = require('jsforce/api/streaming');

const { INGEST_INSTANCE_URL, INGEST_ACCESS_TOKEN, INGEST_CHANNEL, INGEST_COUNT, INGEST_API_VERSION } = process.env;
const count = Number(INGEST_COUNT);
if (!INGEST_INSTANCE_URL || !INGEST_ACCESS_TOKEN || !INGEST_CHANNEL || !(count > 0)) {
  process.stderr.write('jsforce-consumer: INGEST_INSTANCE_URL, INGEST_ACCESS_TOKEN, INGEST_CHANNEL and INGEST_COUNT are required\n');
  process.exit(2);
}

const conn = new jsforce.Connection({
  instanceUrl: INGEST_INSTANCE_URL,
  accessToken: INGEST_ACCESS_TOKEN,
  version: INGEST_API_VERSION || '63.0',
});

function once() {
  return new Promise((resolve, reject) => {
    let n = 0;
    let last = 0;
    const cpu0 = process.cpuUsage();
    const start = process.hrtime.bigint();
    const client = conn.streaming.createClient([new StreamingExtension.Replay(INGEST_CHANNEL, -2)]);
    const sub = client.subscribe(INGEST_CHANNEL, (msg) => {
      // Touch what a consumer needs: the header and the replay id.
      const h = msg.payload && msg.payload.ChangeEventHeader;
      if (!h || !(msg.event.replayId > last)) {
        reject(new Error('unexpected event ' + JSON.stringify(msg).slice(0, 200)));
        return;
      }
      last = msg.event.replayId;
      n++;
      if (n === count) {
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        const cpu = process.cpuUsage(cpu0);
        client.disconnect();
        resolve({ events: n, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 });
      }
    });
    sub.errback((err) => reject(err));
  });
}

const rl = readline.createInterface({ input: process.stdin });
let busy = Promise.resolve();
rl.on('line', (line) => {
  if (line.trim() !== 'run') return;
  busy = busy.then(once).then(
    (r) => process.stdout.write(JSON.stringify(r) + '\n'),
    (err) => {
      process.stderr.write('jsforce-consumer: ' + (err && err.message ? err.message : String(err)) + '\n');
      process.exit(1);
    },
  );
});
rl.on('close', () => busy.then(() => process.exit(0)));
process.stdout.write('ready\n');
