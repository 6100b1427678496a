'use strict';
// Bounded /metrics (issue 11): a flood of unique model names leaves one
// "(unknown)" series; the series have a ceiling and memory of their own, so
// on the smallest zone nginx allows, keys are still revoked and created and
// configs installed after a flood; label values come out escaped and valid
// UTF-8 whatever the database holds; a config that drops a model frees its
// series; a zone that cannot take a key makes readiness 503.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const { spawnSync } = require('node:child_process');
const { startGateway, sleep } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock } = require('../mocks/openai-mock');

// the smallest zone the module takes (64 pages)
const ZONE = process.env.TEST_METRICS_ZONE || '256k';

let pg, gw, mock, db;

const config = (models) => ({
  providers: {
    p: { api_base: mock.url, interfaces: ['openai'],
         models: Object.fromEntries(models.map((m) => [m, {}])) },
  },
});

before(async () => {
  pg = await startPostgres();
  // SQL_ASCII: the database keeps any byte in an alias, as a database
  // restored from elsewhere may
  pg.psql("CREATE DATABASE raw_bytes ENCODING 'SQL_ASCII' LC_COLLATE 'C' "
          + "LC_CTYPE 'C' TEMPLATE template0");
  db = pg.url.replace(/\/llmproxy$/, '/raw_bytes');
  mock = await createMock({ name: 'm' });
  gw = await startGateway({ database: db, zone: ZONE, workers: 2,
                            config: config(['m1', 'm2', 'm3']) });
});

after(async () => {
  // the one expected alert: the zone refused keys (last test)
  const problems = gw ? gw.problems().filter((l) =>
    !/no memory in the zone for more keys/.test(l)) : [];
  if (gw) await gw.stop();
  if (mock) await mock.close();
  if (pg) pg.destroy();
  assert.deepStrictEqual(problems, []);
});

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

function chat(key, model) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ model, messages: [] });
    const req = http.request(gw.url + '/v1/chat/completions', {
      method: 'POST', agent,
      headers: { authorization: 'Bearer ' + key,
                 'content-type': 'application/json',
                 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

// SQL in the gateway's database
function sql(q) {
  const r = spawnSync('psql', [db, '-Atqc', q], { encoding: 'utf8' });
  assert.strictEqual(r.status, 0, 'psql: ' + r.stderr);
  return r.stdout.trim();
}

function create(...args) {
  const r = gw.ctl(['key', 'create', ...args]);
  assert.strictEqual(r.status, 0, r.stderr);
  return r.stdout.trim();
}

async function until(fn, ms = 5000) {
  const t0 = Date.now();
  for (;;) {
    try {
      if (await fn()) return Date.now() - t0;
    } catch (e) { /* not yet */ }
    if (Date.now() - t0 > ms) throw new Error('not within ' + ms + ' ms');
    await sleep(100);
  }
}

async function metrics() {
  const res = await fetch(gw.url + '/metrics');
  const buf = Buffer.from(await res.arrayBuffer());
  assert.strictEqual(res.status, 200);
  return buf;
}

// the value of the line that starts with `series ` (undefined: none)
function value(text, series) {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined
    : Number(line.slice(series.length + 1));
}

const readiness = async () => {
  const r = await fetch(gw.url + '/health/readiness');
  return { status: r.status, body: await r.json() };
};

let flooder;

test('unique model names share one "(unknown)" series', async () => {
  flooder = create('--alias', 'flooder');
  await until(async () => (await chat(flooder, 'm1')) === 200);

  const N = 3000;
  let next = 0;
  const worker = async () => {
    while (next < N) {
      const i = next++;
      assert.strictEqual(await chat(flooder, `no-such-model-${i}-`
                                    + 'x'.repeat(200)), 404);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));

  const l = 'model="(unknown)",deployment="",key="flooder"';
  let text;
  await until(async () => {
    text = (await metrics()).toString('utf8');
    return value(text, `llmproxy_requests_total{${l},status="4xx"}`) === N;
  });
  assert.ok(!text.includes('no-such-model'), 'a requested name is a label');
  const series = new Set(text.split('\n').filter((s) =>
    s.startsWith('llmproxy_requests_total{')).map((s) =>
    s.replace(/,status=.*/, '')));
  assert.deepStrictEqual([...series].sort(), [
    'llmproxy_requests_total{model="(unknown)",deployment="",key="flooder"',
    'llmproxy_requests_total{model="m1",deployment="p/m1",key="flooder"',
  ]);
  assert.ok(text.length < 64 * 1024, `/metrics is ${text.length} bytes`);
  assert.strictEqual(value(text, 'llmproxy_metrics_series'), 2);
  assert.strictEqual(value(text, 'llmproxy_metrics_series_dropped_total'), 0);
  assert.strictEqual((await readiness()).status, 200);
});

test('after the flood: revoked key refused, new key and config work',
  async () => {
    const r = gw.ctl(['key', 'revoke', 'flooder']);
    assert.strictEqual(r.status, 0, r.stderr);
    await until(async () => (await chat(flooder, 'm1')) === 401);

    const fresh = create('--alias', 'fresh');
    await until(async () => (await chat(fresh, 'm1')) === 200);

    const s = gw.sync(config(['m1', 'm2', 'm3', 'm4']));
    assert.strictEqual(s.status, 0, s.stdout + s.stderr);
    assert.strictEqual(await chat(fresh, 'm4'), 200);
    assert.strictEqual((await readiness()).status, 200);
  });

test('label values are escaped and valid UTF-8', async () => {
  const key = 'sk-weird-' + 'a'.repeat(40);
  // CR, LF, quote, backslash, DEL, a control byte, invalid UTF-8 (a lone
  // continuation byte, an overlong "/", a truncated 3-byte sequence), and
  // a valid "é"
  sql(`INSERT INTO llmproxy_keys (key_hash, key_prefix, alias)
           VALUES (encode(sha256('${key}'::bytea), 'hex'), 'sk-weir',
                   E'a\\rb\\nc"d\\\\e\\x7f\\x01f\\x80g\\xc0\\xafh\\xe2\\x82i\\xc3\\xa9')`);
  await until(async () => (await chat(key, 'm1')) === 200);

  let buf;
  await until(async () => {
    buf = await metrics();
    return buf.includes('key="a');
  });
  // valid UTF-8 throughout
  assert.doesNotThrow(() => new TextDecoder('utf-8', { fatal: true })
    .decode(buf));
  const text = buf.toString('utf8');
  assert.ok(!/[\x00-\x09\x0b-\x1f\x7f]/.test(text), 'a raw control byte');
  const r = '\ufffd';
  const label = `key="a${r}b\\nc\\"d\\\\e${r}${r}f${r}g${r}${r}h${r}${r}i\u00e9"`;
  assert.strictEqual(value(text, 'llmproxy_requests_total{model="m1",'
    + `deployment="p/m1",${label},status="2xx"}`), 1, text);
  // every series line still parses as name{labels} value
  for (const l of text.split('\n')) {
    if (l === '' || l.startsWith('#')) continue;
    assert.match(l, /^[a-z_]+(\{([a-z_]+="([^"\\\n]|\\[\\"n])*",?)*\})? \S+$/, l);
  }
});

test('a config that drops a model frees its series', async () => {
  const key = create('--alias', 'dropper');
  await until(async () => (await chat(key, 'm1')) === 200);
  assert.strictEqual(await chat(key, 'm3'), 200);
  assert.strictEqual(await chat(key, 'm3'), 200);
  let text = (await metrics()).toString('utf8');
  const m3 = 'model="m3",deployment="p/m3",key="dropper"';
  assert.strictEqual(value(text, `llmproxy_requests_total{${m3},status="2xx"}`),
                     2);
  const before = value(text, 'llmproxy_metrics_series');

  const s = gw.sync(config(['m1', 'm2', 'm4']));
  assert.strictEqual(s.status, 0, s.stdout + s.stderr);
  text = (await metrics()).toString('utf8');
  assert.ok(!text.includes('model="m3"'), text);
  assert.strictEqual(value(text, 'llmproxy_metrics_series'), before - 1);

  // now an unknown name
  assert.strictEqual(await chat(key, 'm3'), 404);
  await until(async () => {
    text = (await metrics()).toString('utf8');
    return value(text, 'llmproxy_requests_total{model="(unknown)",'
      + 'deployment="",key="dropper",status="4xx"}') === 1;
  });
  assert.ok(!text.includes('model="m3"'), text);
  // the requests of m1 stay counted
  assert.strictEqual(value(text, 'llmproxy_requests_total{model="m1",'
    + 'deployment="p/m1",key="dropper",status="2xx"}'), 1);
});

test('the series have a ceiling, counted as dropped beyond', async () => {
  let text = (await metrics()).toString('utf8');
  const max = value(text, 'llmproxy_metrics_series_max');
  assert.ok(max >= 8 && max <= 5000, 'ceiling ' + max);
  const n = Math.min(max + 20, 400);
  sql(`INSERT INTO llmproxy_keys (key_hash, key_prefix, alias)
           SELECT encode(sha256(('sk-many-' || i)::bytea), 'hex'), 'sk-many',
                  'many-' || i FROM generate_series(1, ${n}) i`);
  await until(async () => (await chat(`sk-many-${n}`, 'm1')) === 200);
  for (let i = 1; i <= n; i++) {
    assert.strictEqual(await chat(`sk-many-${i}`, 'm1'), 200);
  }
  text = (await metrics()).toString('utf8');
  assert.ok(value(text, 'llmproxy_metrics_series') <= max, text);
  assert.ok(value(text, 'llmproxy_metrics_series_dropped_total') >= 1, text);
  assert.strictEqual((await readiness()).status, 200);
});

test('a zone that cannot take a key: readiness 503, revocations and '
  + 'configs apply',
  async () => {
    // a config of several pages, installed while there is room
    const big = Array.from({ length: 80 }, (_, i) =>
      `a-model-with-a-rather-long-name-to-fill-pages-${i}`);
    let s = gw.sync(config(['m1', 'm4', ...big]));
    assert.strictEqual(s.status, 0, s.stdout + s.stderr);

    const keep = create('--alias', 'keep');
    await until(async () => (await chat(keep, 'm1')) === 200);
    // many more keys than the smallest zone holds
    sql(`INSERT INTO llmproxy_keys (key_hash, key_prefix, alias)
             SELECT encode(sha256(('sk-fill-' || i)::bytea), 'hex'),
                    'sk-fill', 'fill-' || i FROM generate_series(1, 20000) i`);
    let r;
    await until(async () => {
      r = await readiness();
      return r.status === 503;
    }, 10000);
    assert.strictEqual(r.body.zone, 'full', JSON.stringify(r.body));
    assert.strictEqual(r.body.status, 'not ready');

    // a key changed after the ones that did not fit still changes
    const g = gw.ctl(['key', 'revoke', 'keep']);
    assert.strictEqual(g.status, 0, g.stderr);
    await until(async () => (await chat(keep, 'm1')) === 401);

    // a config no larger than the one it replaces still fits
    s = gw.sync(config(['m1', ...big]));
    assert.strictEqual(s.status, 0, s.stdout + s.stderr);
    assert.strictEqual(await chat('sk-many-1', 'm4'), 404);
    assert.strictEqual(await chat('sk-many-1', big[79]), 200);

    // logged once, as an alert, not once per key or poll
    await sleep(1500);
    const alerts = gw.errorLog().split('\n').filter((l) =>
      /no memory in the zone for more keys/.test(l));
    assert.strictEqual(alerts.length, 1, alerts.join('\n'));
    assert.match(alerts[0], /\[alert\]/);

    // the keys that did not fit are deleted: the zone keeps where they
    // started, so the poller of the workers after a reload reads them
    // again, finds none left, and readiness recovers
    await gw.reload();
    sql("DELETE FROM llmproxy_keys WHERE alias LIKE 'fill-%'");
    await until(async () => (await readiness()).status === 200, 15000);
    assert.strictEqual(await chat('sk-many-1', big[0]), 200);
  });
