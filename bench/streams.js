// The streams pass's client: opens N streaming chat completions at once (in
// steps of STEP every 25 ms), keeps them all open while the provider
// trickles, and counts the streams that ended with [DONE], the errors by
// kind and the time to the first chunk.  Prints one line of JSON.
//
//   node bench/streams.js URL N KEY BODY_FILE [STEP]
'use strict';
const http = require('http');
const fs = require('fs');

const url = new URL(process.argv[2]);
const n = Number(process.argv[3]);
const key = process.argv[4];
const body = fs.readFileSync(process.argv[5]);
const step = Number(process.argv[6] || 250);

const agent = new http.Agent({keepAlive: false, maxSockets: Infinity});
const errors = {};
const ttfb = [];
let open = 0;
let peak = 0;
let completed = 0;
let finished = 0;
let started = 0;
const t0 = process.hrtime.bigint();

const ms = (from) => Number(process.hrtime.bigint() - from) / 1e6;

function finish(err) {
  if (err) errors[err] = (errors[err] || 0) + 1;
  else completed++;
  if (++finished === n) report();
}

function one() {
  const start = process.hrtime.bigint();
  let done = false;
  const end = (err) => {
    if (done) return;
    done = true;
    finish(err);
  };
  const req = http.request({
    host: url.hostname, port: url.port, path: url.pathname, method: 'POST',
    agent, headers: {'Content-Type': 'application/json',
      'Authorization': 'Bearer ' + key, 'Accept': 'text/event-stream',
      'Content-Length': body.length},
  }, (res) => {
    if (res.statusCode !== 200) {
      res.resume();
      res.on('end', () => end('status ' + res.statusCode));
      return;
    }
    let first = true;
    let last = '';
    open++;
    if (open > peak) peak = open;
    res.setEncoding('utf8');
    res.on('data', (d) => {
      if (first) {
        ttfb.push(ms(start));
        first = false;
      }
      last = (last + d).slice(-32);
    });
    res.on('end', () => {
      open--;
      end(last.includes('data: [DONE]') ? null : 'incomplete');
    });
    res.on('error', (e) => {
      open--;
      end(e.code || e.message);
    });
  });
  req.setTimeout(60000, () => req.destroy(new Error('timeout')));
  req.on('error', (e) => end(e.code || e.message));
  req.end(body);
}

function ramp() {
  for (let i = 0; i < step && started < n; i++, started++) one();
  if (started < n) setTimeout(ramp, 25);
}

function pct(a, p) {
  if (a.length === 0) return 0;
  return Math.round(a[Math.min(a.length - 1, Math.floor(a.length * p))]);
}

function report() {
  ttfb.sort((a, b) => a - b);
  const nerr = Object.values(errors).reduce((a, b) => a + b, 0);
  console.log(JSON.stringify({
    streams: n, completed, errors: nerr,
    kinds: Object.entries(errors).map(([k, v]) => k + ': ' + v).join(', '),
    peak_open: peak, ttfb_p50: pct(ttfb, 0.5), ttfb_p99: pct(ttfb, 0.99),
    ttfb_max: Math.round(ttfb[ttfb.length - 1] || 0),
    seconds: (ms(t0) / 1000).toFixed(1),
  }));
  process.exit(0);
}

ramp();
