// Client (d) of the watch throughput benchmark: signs /events/ws with hyper-aws4 and reads
// it with the `websocket` package, JSON-parsing every frame, as Hyper.sh's example client
// did. Prints one JSON line like the Rust clients:
// {"client":"node","events":N,"seconds":S,"cpu_seconds":C}
//
// usage: node client.js --url https://127.0.0.1:PORT --events N [--ak AK --sk SK]
'use strict';

const aws4 = require('hyper-aws4');
const WebSocketClient = require('websocket').client;

function arg(name, fallback) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const base = arg('url');
const total = Number(arg('events', '0'));
const accessKey = arg('ak', 'ak');
const secretKey = arg('sk', 'sk');
if (!base || !(total > 0)) {
  console.error('usage: node client.js --url https://HOST:PORT --events N [--ak AK --sk SK]');
  process.exit(2);
}

const started = process.hrtime.bigint();
const cpuStart = process.cpuUsage();
const httpUrl = base.replace(/\/$/, '') + '/events/ws';
const headers = aws4.sign({ url: httpUrl, method: 'GET', credential: { accessKey, secretKey } });
// The websocket package sets Host itself (the same value).
delete headers.Host;

const client = new WebSocketClient({
  maxReceivedFrameSize: 16 * 1024 * 1024,
  maxReceivedMessageSize: 16 * 1024 * 1024,
  tlsOptions: { rejectUnauthorized: false },
});

let events = 0;
let errors = 0;
let done = false;

function finish() {
  if (done) return;
  done = true;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuStart);
  console.log(JSON.stringify({
    client: 'node',
    events,
    seconds,
    cpu_seconds: (cpu.user + cpu.system) / 1e6,
    extra: { errors },
  }));
  process.exit(0);
}

client.on('connectFailed', (err) => {
  console.error('node: connect failed: ' + err);
  process.exit(1);
});

client.on('connect', (connection) => {
  connection.on('message', (message) => {
    if (message.type !== 'utf8') return;
    try {
      const event = JSON.parse(message.utf8Data);
      if (!event.id && !(event.Actor && event.Actor.ID)) errors++;
    } catch (e) {
      errors++;
    }
    events++;
    if (events >= total) finish();
  });
  connection.on('close', finish);
  connection.on('error', (err) => {
    console.error('node: ' + err);
    process.exit(1);
  });
});

client.connect(httpUrl.replace(/^http/, 'ws'), null, null, headers);
