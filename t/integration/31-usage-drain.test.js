'use strict';
// Cheaper usage records (issue 13): spill files drain many to a
// transaction, every record once, the keys' spend and the daily totals
// exact; a file the database refuses among them is set aside alone, the
// others go in.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const fs = require('node:fs');
const crypto = require('node:crypto');
const { startGateway, until } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock } = require('../mocks/openai-mock');
const { spillFile } = require('../lib/spill');

const KEYS = 30, FILES = 40, PER_FILE = 250;

let pg, gw, mock;
const hashes = [];

before(async () => {
  pg = await startPostgres();
  mock = await createMock({ name: 'd' });
  gw = await startGateway({
    database: pg.url,
    workers: 1,
    httpExtra: 'llmproxy_usage_flush 100ms;',
    config: { providers: { p: { api_base: mock.url,
                                interfaces: ['openai'],
                                models: { m: {} } } } },
  });
  for (let i = 1; i <= KEYS; i++) {
    hashes.push(crypto.createHash('sha256').update('sk-drain-' + i)
      .digest('hex'));
  }
  pg.psql(`INSERT INTO llmproxy_keys (key_hash, key_prefix, alias)
           SELECT encode(sha256(('sk-drain-' || i)::bytea), 'hex'),
                  'sk-drain', 'drain-' || i
           FROM generate_series(1, ${KEYS}) i`);
});

after(async () => {
  const problems = gw ? gw.problems().filter((l) =>
    !/database refused spill file/.test(l)) : [];
  if (gw) await gw.stop();
  if (mock) await mock.close();
  if (pg) pg.destroy();
  assert.deepStrictEqual(problems, []);
});

const stateDir = () => path.join(gw.dir, 'state');

// files appear at once (written aside, then renamed), as a gateway that
// lost its database leaves them; returns their batch ids
function putFiles(datas) {
  const ids = datas.map(() => crypto.randomUUID());
  const files = ids.map((id) => path.join(stateDir(), `usage-${id}.copy`));
  datas.forEach((d, i) => {
    fs.writeFileSync(files[i] + '.tmp', d);
    fs.chownSync(files[i] + '.tmp', 65534, 65534);   // the workers' user
  });
  files.forEach((f) => fs.renameSync(f + '.tmp', f));
  return { ids, files };
}

const spillsLeft = () => fs.readdirSync(stateDir())
  .filter((f) => /^usage-.*\.copy$/.test(f));

test('spill files drain many to a transaction: every record once, spend '
     + 'and daily totals exact', async () => {
  const day = Date.UTC(2026, 0, 15, 12);
  const datas = [];
  let n = 0, cost = 0;
  for (let f = 0; f < FILES; f++) {
    const records = [];
    for (let i = 0; i < PER_FILE; i++, n++) {
      const c = (n % 7 + 1) / 1e4;
      cost += c;
      records.push({ id: crypto.randomUUID(), hash: hashes[n % KEYS],
        alias: `drain-${n % KEYS + 1}`, model: 'drain-model',
        deployment: 'p/drain-model', prompt: 10 + n % 3, completion: 20,
        total: 30 + n % 3, cost: c, latency: n % 400, ttfb: 1, attempts: 1,
        cacheRead: n % 2, reasoning: n % 5, time: day + n });
    }
    datas.push(spillFile(records));
  }
  const { ids } = putFiles(datas);
  await until(() => spillsLeft().length === 0);

  const q = (sql) => pg.psql(sql);
  assert.strictEqual(q("SELECT count(*), count(DISTINCT request_id) FROM"
                       + " llmproxy_usage WHERE model = 'drain-model'"),
                     `${n}|${n}`);

  // the batches of one transaction share its start time: far fewer
  // transactions than files (one a file before)
  const txns = Number(q('SELECT count(DISTINCT written_at) FROM'
    + ` llmproxy_usage_batches WHERE batch_id IN (${ids.map((i) =>
      `'${i}'`).join(',')})`));
  assert.ok(txns >= 1 && txns <= 3, `${FILES} files in ${txns} transactions`);

  const spend = Number(q("SELECT sum(spend) FROM llmproxy_keys WHERE"
                         + " alias LIKE 'drain-%'"));
  assert.ok(Math.abs(spend - cost) < 1e-9, `spend ${spend}, cost ${cost}`);

  // the daily totals say what the records say, to the request and token
  const sums = 'count(*), sum(prompt_tokens), sum(completion_tokens),'
    + ' sum(cache_read_tokens), sum(reasoning_tokens),'
    + ' round(sum(cost)::numeric, 9), sum(latency_ms), max(latency_ms),'
    + ' count(*) FILTER (WHERE latency_ms < 100),'
    + ' count(*) FILTER (WHERE latency_ms < 300)';
  const daily = 'sum(requests), sum(prompt_tokens), sum(completion_tokens),'
    + ' sum(cache_read_tokens), sum(reasoning_tokens),'
    + ' round(sum(cost)::numeric, 9), sum(latency_ms_sum), max(latency_ms_max),'
    + ' sum(lat_lt_100),'
    + ' sum(lat_lt_300)';
  const byKey = (what, table, dayExpr) => q(`SELECT string_agg(s, ';'
    ORDER BY s) FROM (SELECT concat_ws(',', d, k, ${what}) s
      FROM (SELECT ${dayExpr} d, key_hash k, * FROM ${table}
            WHERE model = 'drain-model') x GROUP BY d, k) t`);
  const fromRecords = byKey(sums, 'llmproxy_usage',
    "(created_at AT TIME ZONE 'UTC')::date");
  assert.ok(fromRecords.split(';').length === KEYS, fromRecords);
  assert.strictEqual(byKey(daily, 'llmproxy_usage_daily', 'day'), fromRecords);
});

test('a spill file the database refuses, among others: set aside alone, '
     + 'the others go in', async () => {
  const good = [], ids = [];
  for (let f = 0; f < 5; f++) {
    const records = [];
    for (let i = 0; i < 20; i++) {
      const id = crypto.randomUUID();
      ids.push(id);
      records.push({ id, hash: hashes[i], alias: `drain-${i + 1}`,
        model: 'mixed-model', deployment: 'p/mixed-model', prompt: 1,
        completion: 1, total: 2, cost: 0.001, latency: 5, ttfb: 1,
        attempts: 1 });
    }
    good.push(spillFile(records));
  }
  // COPY's text, as an earlier version wrote it, with a status that is no
  // integer: the whole transaction is refused for it
  const ts = new Date().toISOString().replace('T', ' ').replace('Z', '+00');
  const bad = Buffer.from([crypto.randomUUID(), ts, hashes[0], 'drain-1',
    'mixed-model', 'p/mixed-model', 'openai', 'chat/completions', 'f',
    'not-a-status', 1, 1, 2, '0.001', 3, 1, 1, 0, '\\N'].join('\t') + '\n');
  const before = Number(pg.psql("SELECT sum(spend) FROM llmproxy_keys WHERE"
                                + " alias LIKE 'drain-%'"));
  const { files } = putFiles([good[0], good[1], bad, good[2], good[3],
                              good[4]]);
  await until(() => spillsLeft().length === 0);

  assert.strictEqual(pg.psql("SELECT count(*) FROM llmproxy_usage WHERE"
                             + " model = 'mixed-model'"), String(ids.length));
  const after = Number(pg.psql("SELECT sum(spend) FROM llmproxy_keys WHERE"
                               + " alias LIKE 'drain-%'"));
  assert.ok(Math.abs(after - before - ids.length * 0.001) < 1e-9,
            `spend went from ${before} to ${after}`);
  assert.ok(fs.existsSync(files[2] + '.bad'), 'the refused file kept aside');
  assert.deepStrictEqual(fs.readdirSync(stateDir())
    .filter((f) => f.endsWith('.bad')), [path.basename(files[2]) + '.bad']);
  assert.match(gw.errorLog(),
               /database refused spill file, kept as .*\.bad": .*integer/);
});

// the daily totals of one model, and what its records say they must be
function totals(model) {
  const q = (sql) => pg.psql(sql);
  const records = q(`SELECT count(*), sum(prompt_tokens),
    sum(completion_tokens), round(sum(cost)::numeric, 9), sum(latency_ms),
    max(latency_ms), count(*) FILTER (WHERE latency_ms < 50),
    count(*) FILTER (WHERE status >= 400)
    FROM llmproxy_usage WHERE model = '${model}'`);
  const daily = q(`SELECT sum(requests), sum(prompt_tokens),
    sum(completion_tokens), round(sum(cost)::numeric, 9),
    sum(latency_ms_sum), max(latency_ms_max), sum(lat_lt_50), sum(errors)
    FROM llmproxy_usage_daily WHERE model = '${model}'`);
  return { records, daily };
}

function records(model, n) {
  return Array.from({ length: n }, (_, i) => ({ id: crypto.randomUUID(),
    hash: hashes[i % KEYS], alias: `drain-${i % KEYS + 1}`, model,
    deployment: 'p/' + model, prompt: 3, completion: 4 + i, total: 7 + i,
    cost: 0.0001 * (i % 3), latency: i * 7, ttfb: 1, attempts: 1,
    status: i % 10 ? 200 : 429 }));
}

test('an old spill file in COPY\'s text format: its daily totals are the '
     + 'trigger\'s, next to the writer\'s', async () => {
  const ts = new Date().toISOString().replace('T', ' ').replace('Z', '+00');
  const text = Buffer.from(records('text-model', 30).map((r) => [r.id, ts,
    r.hash, r.alias, r.model, r.deployment, 'openai', 'chat/completions',
    'f', r.status, r.prompt, r.completion, r.total, String(r.cost),
    r.latency, 1, 1, 0, '\\N'].join('\t') + '\n').join(''));
  putFiles([text, spillFile(records('binary-model', 30))]);
  await until(() => spillsLeft().length === 0);
  for (const model of ['text-model', 'binary-model']) {
    const { records: r, daily } = totals(model);
    assert.match(r, /^30\|/);
    assert.strictEqual(daily, r, model);
  }
});

test('the writer adds the daily totals itself: exact with the trigger '
     + 'off', async () => {
  pg.psql('ALTER TABLE llmproxy_usage_rows DISABLE TRIGGER'
          + ' llmproxy_usage_daily_add');
  try {
    putFiles([spillFile(records('writer-model', 40)),
              spillFile(records('writer-model', 25))]);
    await until(() => spillsLeft().length === 0);
    const { records: r, daily } = totals('writer-model');
    assert.match(r, /^65\|/);
    assert.strictEqual(daily, r);
  } finally {
    pg.psql('ALTER TABLE llmproxy_usage_rows ENABLE TRIGGER'
            + ' llmproxy_usage_daily_add');
  }
});
