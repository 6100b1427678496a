'use strict';
// Limits that hold (SPEC §4, §7): per-deployment rpm/tpm skip a deployment
// at its limit (429 + retry-after when none is left); a key's rpm holds
// across three gateways sharing one PostgreSQL, within the documented
// bound (the other gateways' counts are at most about one poll interval
// old); the key's 429s and its successful answers carry retry-after and
// OpenAI's x-ratelimit-* headers, which the official SDK obeys; a budget
// spent on one gateway holds on another.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const OpenAI = require('openai');
const { startGateway, sleep, raw } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock } = require('../mocks/openai-mock');

// the gateways in these tests poll every 500 ms (t/lib/gateway.js): the
// others' counts are at most a poll interval old (they are exchanged every
// half interval), plus slack for a busy machine
const POLL_MS = 500;
const SETTLED_MS = POLL_MS + 500;

let pg, a, b, gws = [];

const config = () => ({
  providers: {
    pa: { api_base: a.url, interfaces: ['openai'],
          models: { lim: { rpm: 1 }, tok: { tpm: 10 }, solo: { rpm: 2 },
                    shared: { rpm: 2 }, m: {},
                    priced: { input_cost_per_million: 100000,
                              output_cost_per_million: 100000 } } },
    pb: { api_base: b.url, interfaces: ['openai'],
          models: { lim: { rpm: 1 } } },
  },
});

before(async () => {
  pg = await startPostgres();
  a = await createMock({ name: 'a' });
  b = await createMock({ name: 'b' });
  for (let i = 0; i < 3; i++) {
    gws.push(await startGateway({ database: pg.url, config: config() }));
  }
});

after(async () => {
  const problems = gws.flatMap((g) => g.problems());
  for (const g of gws) await g.stop();
  if (a) await a.close();
  if (b) await b.close();
  if (pg) pg.destroy();
  assert.deepStrictEqual(problems, []);
});

function create(...args) {
  const r = gws[0].ctl(['key', 'create', ...args]);
  assert.strictEqual(r.status, 0, r.stderr);
  return r.stdout.trim();
}

const chat = (gw, key, model = 'm') => raw(gw.baseURL + '/chat/completions', {
  method: 'POST',
  headers: { authorization: 'Bearer ' + key,
             'content-type': 'application/json' },
  body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
});

// every gateway has loaded the key
async function loaded(key) {
  for (const gw of gws) {
    const t0 = Date.now();
    for (;;) {
      const r = await raw(gw.baseURL + '/models',
                          { headers: { authorization: 'Bearer ' + key } });
      if (r.status === 200) break;
      if (Date.now() - t0 > 5000) throw new Error('key not loaded: '
                                                  + r.status);
      await sleep(100);
    }
  }
}

// the tests count within one minute window: start early enough in one
async function minuteWithRoom(seconds) {
  const s = new Date().getSeconds();
  if (s > 60 - seconds) await sleep((61 - s) * 1000);
}

function assertRateHeaders(r, what) {
  const ra = Number(r.headers.get('retry-after'));
  assert.ok(ra >= 1 && ra <= 60, `${what}: retry-after ${ra}`);
}

test('a deployment at its rpm is skipped; with none left, 429 + retry-after',
  async () => {
    await minuteWithRoom(15);
    const key = create('--alias', 'dep');
    await loaded(key);
    a.reset();
    b.reset();
    const gw = gws[0];
    const r1 = await chat(gw, key, 'lim');
    const r2 = await chat(gw, key, 'lim');
    assert.strictEqual(r1.status, 200, r1.text);
    assert.strictEqual(r2.status, 200, r2.text);
    assert.notStrictEqual(r1.headers.get('x-llmproxy-model'),
                          r2.headers.get('x-llmproxy-model'),
                          'the second request went to the other deployment');
    const r3 = await chat(gw, key, 'lim');
    assert.strictEqual(r3.status, 429, r3.text);
    assert.strictEqual(r3.body.error.code, 'deployment_rate_limited');
    assertRateHeaders(r3, 'deployments at their rpm');
    assert.strictEqual(a.requests.length, 1, 'not tried as a last resort');
    assert.strictEqual(b.requests.length, 1, 'not tried as a last resort');

    // tpm: the first answer's 18 tokens use up tpm 10
    const t1 = await chat(gw, key, 'tok');
    assert.strictEqual(t1.status, 200, t1.text);
    await sleep(100);
    const t2 = await chat(gw, key, 'tok');
    assert.strictEqual(t2.status, 429, t2.text);
    assertRateHeaders(t2, 'deployment at its tpm');
  });

test('a deployment\'s rpm holds for concurrent requests on all workers',
  async () => {
    await minuteWithRoom(10);
    const key = create('--alias', 'solo');
    await loaded(key);
    a.reset();
    const all = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map(() =>
      chat(gws[0], key, 'solo')));
    const by = (s) => all.filter((r) => r.status === s).length;
    assert.strictEqual(by(200), 2, all.map((r) => r.status).join(','));
    assert.strictEqual(by(429), 6, 'a 429 even when the deployment filled '
                       + 'up after the plan: ' + all.map((r) => r.status));
    assert.strictEqual(a.requests.length, 2);
    for (const r of all.filter((x) => x.status === 429)) {
      assert.strictEqual(r.body.error.code, 'deployment_rate_limited');
      assertRateHeaders(r, 'concurrent');
    }
  });

test('a deployment\'s rpm holds across the gateways too', async () => {
  await minuteWithRoom(10);
  const key = create('--alias', 'shared');
  await loaded(key);
  const seen = [];
  for (const gw of gws) {
    seen.push((await chat(gw, key, 'shared')).status);
    await sleep(SETTLED_MS);
  }
  assert.deepStrictEqual(seen, [200, 200, 429]);
});

test('a key\'s rpm 3 holds across three gateways on one database',
  async () => {
    await minuteWithRoom(20);
    const key = create('--alias', 'cluster', '--rpm', '3');
    await loaded(key);

    // one request after the other, round robin, each after the others'
    // counts had time to arrive: exactly 3 in the minute
    const seen = [];
    for (let i = 0; i < 6; i++) {
      seen.push((await chat(gws[i % 3], key)).status);
      await sleep(SETTLED_MS);
    }
    assert.deepStrictEqual(seen, [200, 200, 200, 429, 429, 429]);
    const rows = Number(pg.psql('SELECT count(DISTINCT node) FROM'
                                + ' llmproxy_rate_windows'));
    assert.ok(rows >= 3, 'every gateway published its counts: ' + rows);
  });

test('a burst on every gateway stays within the documented bound',
  async () => {
    await minuteWithRoom(10);
    const key = create('--alias', 'burst', '--rpm', '3');
    await loaded(key);

    // two at once on each: a gateway that has not seen the others' yet
    // lets its own through (the bound: at most rpm per gateway)
    const burst = await Promise.all(gws.flatMap((gw) =>
      [1, 2].map(() => chat(gw, key))));
    const ok = burst.filter((r) => r.status === 200).length;
    assert.ok(ok >= 3 && ok <= 6, 'admitted ' + ok);
    assert.ok(burst.every((r) => r.status === 200 || r.status === 429));

    // within a poll interval every gateway knows the cluster's count (each on
    // its own would still let a third through)
    await sleep(SETTLED_MS);
    for (const gw of gws) {
      assert.strictEqual((await chat(gw, key)).status, 429);
    }
  });

test('the x-ratelimit-* headers on 200 and on the key\'s 429', async () => {
  await minuteWithRoom(10);
  const key = create('--alias', 'headers', '--rpm', '2', '--tpm', '1000');
  await loaded(key);
  const gw = gws[1];

  // the SDK's own view of a successful answer
  const client = new OpenAI({ baseURL: gw.baseURL, apiKey: key,
                              maxRetries: 0 });
  const { response } = await client.chat.completions.create({
    model: 'm', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  const h = response.headers;
  assert.strictEqual(h.get('x-ratelimit-limit-requests'), '2');
  assert.strictEqual(h.get('x-ratelimit-remaining-requests'), '1');
  assert.match(h.get('x-ratelimit-reset-requests'), /^(\d|[1-5]\d)s$|^1m0s$/);
  assert.strictEqual(h.get('x-ratelimit-limit-tokens'), '1000');
  assert.strictEqual(h.get('x-ratelimit-remaining-tokens'), '1000');
  assert.match(h.get('x-ratelimit-reset-tokens'), /^(\d|[1-5]\d)s$|^1m0s$/);
  // the provider account's own headers never reach the client
  assert.strictEqual(h.get('retry-after'), null);

  await sleep(300);      // the tokens are counted when the answer is done
  const r2 = await chat(gw, key);
  assert.strictEqual(r2.status, 200, r2.text);
  assert.strictEqual(r2.headers.get('x-ratelimit-remaining-requests'), '0');
  assert.strictEqual(r2.headers.get('x-ratelimit-remaining-tokens'), '982');

  const r3 = await chat(gw, key);
  assert.strictEqual(r3.status, 429, r3.text);
  assert.strictEqual(r3.body.error.code, 'rate_limit_exceeded');
  assertRateHeaders(r3, 'the key\'s rpm');
  assert.strictEqual(r3.headers.get('x-should-retry'), null);
  assert.strictEqual(r3.headers.get('x-ratelimit-limit-requests'), '2');
  assert.strictEqual(r3.headers.get('x-ratelimit-remaining-requests'), '0');
  const reset = r3.headers.get('x-ratelimit-reset-requests');
  assert.match(reset, /^(\d|[1-5]\d)s$|^1m0s$/);
  assert.ok(Math.abs(parseInt(reset, 10)
                     - Number(r3.headers.get('retry-after'))) <= 1);

  // the Anthropic interface's 429 carries retry-after too (its SDK reads
  // it), in Anthropic's error shape
  const m = await raw(gw.url + '/v1/messages', {
    method: 'POST',
    headers: { 'x-api-key': key, 'content-type': 'application/json',
               'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'm', max_tokens: 5,
                           messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.strictEqual(m.status, 429, m.text);
  assert.strictEqual(m.body.type, 'error');
  assertRateHeaders(m, 'Anthropic interface');

  // a stream's headers carry them as well
  const streamKey = create('--alias', 'stream-h', '--rpm', '5');
  await loaded(streamKey);
  const st = await fetch(gw.baseURL + '/chat/completions', {
    method: 'POST',
    headers: { authorization: 'Bearer ' + streamKey,
               'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', stream: true,
                           messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.strictEqual(st.status, 200);
  assert.strictEqual(st.headers.get('x-ratelimit-remaining-requests'), '4');
  await st.text();

  // a key without limits: no x-ratelimit-* headers
  const plain = create('--alias', 'plain');
  await loaded(plain);
  const r4 = await chat(gw, plain);
  assert.strictEqual(r4.status, 200);
  assert.strictEqual(r4.headers.get('x-ratelimit-limit-requests'), null);
});

test('the openai SDK waits for retry-after and then succeeds', async () => {
  // near the end of a minute, so retry-after is short
  const s = new Date().getSeconds();
  await sleep(((s < 55 ? 55 : 115) - s) * 1000);
  const key = create('--alias', 'sdk', '--rpm', '1');
  await loaded(key);
  const gw = gws[2];
  assert.strictEqual((await chat(gw, key)).status, 200);
  const client = new OpenAI({ baseURL: gw.baseURL, apiKey: key,
                              maxRetries: 1 });
  const t0 = Date.now();
  const c = await client.chat.completions.create({
    model: 'm', messages: [{ role: 'user', content: 'hi' }] });
  assert.strictEqual(c.object, 'chat.completion');
  // the SDK's own backoff (0.5-1 s) would have met the same minute's 429
  assert.ok(Date.now() - t0 >= 1000, 'waited ' + (Date.now() - t0) + ' ms');
});

test('a budget spent on one gateway holds on another', async () => {
  const key = create('--alias', 'budget', '--max-budget', '1',
                     '--budget-duration', '1d');
  await loaded(key);

  // one answer costs $1.80 (18 tokens at $0.10): over budget after it
  const r1 = await chat(gws[0], key, 'priced');
  assert.strictEqual(r1.status, 200, r1.text);

  // the records' flush (200 ms) and a poll: then the others refuse
  const t0 = Date.now();
  for (const gw of [gws[1], gws[2]]) {
    let r;
    for (;;) {
      r = await chat(gw, key, 'm');
      if (r.status === 429 || Date.now() - t0 > 5000) break;
      await sleep(100);
    }
    assert.strictEqual(r.status, 429, r.text);
    assert.strictEqual(r.body.error.code, 'budget_exceeded');
    const ra = Number(r.headers.get('retry-after'));
    // (the period's end is rounded up to a second)
    assert.ok(ra > 86000 && ra <= 86401, 'retry-after: the period\'s end, '
              + ra);
    // the SDKs would not wait a day: told not to retry
    assert.strictEqual(r.headers.get('x-should-retry'), 'false');
  }
  assert.ok(Date.now() - t0 < 200 + SETTLED_MS + 1000,
            'held after ' + (Date.now() - t0) + ' ms');

  // the openai SDK (2 retries by default) asks once; the loop's last
  // request may reach the access log after its answer reached us
  await sleep(200);
  const before = gws[2].accessLog().length;
  const client = new OpenAI({ baseURL: gws[2].baseURL, apiKey: key });
  await assert.rejects(client.chat.completions.create({
    model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
  (e) => e.status === 429);
  await sleep(100);
  assert.strictEqual(gws[2].accessLog().length - before, 1);
});

test('minutes older than five are deleted', async () => {
  pg.psql("INSERT INTO llmproxy_rate_windows VALUES"
          + " ('gone', 'x', now() - interval '10 minutes', 1, 1),"
          + " ('kept', 'y', now(), 1, 1)");
  // a poller cleans at its start, then once a minute
  await gws[2].reload();
  const t0 = Date.now();
  while (pg.psql("SELECT count(*) FROM llmproxy_rate_windows"
                 + " WHERE node = 'gone'") !== '0') {
    assert.ok(Date.now() - t0 < 5000, 'an old minute is still there');
    await sleep(100);
  }
  assert.strictEqual(pg.psql("SELECT count(*) FROM llmproxy_rate_windows"
                             + " WHERE node = 'kept'"), '1');
});

test('without the table (not migrated) keys still load, one warning',
  async () => {
    pg.psql('DROP TABLE llmproxy_rate_windows');
    const key = create('--alias', 'unmigrated', '--rpm', '5');
    await loaded(key);
    assert.strictEqual((await chat(gws[0], key)).status, 200);
    await sleep(4 * POLL_MS);
    const warnings = gws[0].errorLog().split('\n').filter((l) =>
      l.includes('key rpm/tpm hold per gateway only'));
    assert.strictEqual(warnings.length, 1, warnings.join('\n'));
    const ready = await raw(gws[0].url + '/health/readiness');
    assert.strictEqual(ready.status, 200, ready.text);
  });
