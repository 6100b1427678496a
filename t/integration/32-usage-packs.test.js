'use strict';
// Usage records in packs (schema 10, issue 13's cheaper records): the
// gateway writes up to 16 records a row into llmproxy_usage_packs, and the
// view llmproxy_usage reads them back.  Differential: the same tuples a
// gateway spills, read by PostgreSQL's own binary COPY into a table, must
// equal what the view decodes from the gateway's packs, value for value,
// whatever the texts hold.  Also: live requests, the SQL packer, a
// database of schema 9 (rows, as before) and the migration over one.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const fs = require('node:fs');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const OpenAI = require('openai').default;
const { startGateway, sleep, until } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock } = require('../mocks/openai-mock');
const { spillFile } = require('../lib/spill');

let pg, gw, mock, key;

before(async () => {
  pg = await startPostgres();
  mock = await createMock({ name: 'k' });
  gw = await startGateway({
    database: pg.url,
    workers: 1,
    httpExtra: 'llmproxy_usage_flush 100ms;',
    config: { providers: { p: { api_base: mock.url,
                                interfaces: ['openai'],
                                models: { m: { input_cost_per_million: 3,
                                               output_cost_per_million: 15 },
                                         } } } },
  });
  const r = gw.ctl(['key', 'create', '--alias', 'packs-team']);
  assert.strictEqual(r.status, 0, r.stderr);
  key = r.stdout.trim();
  await until(async () => {
    const res = await fetch(gw.baseURL + '/models',
                            { headers: { authorization: 'Bearer ' + key } });
    await res.arrayBuffer();
    return res.status === 200;
  });
});

after(async () => {
  const problems = gw ? gw.problems().filter((l) =>
    !/usage records cannot be written|database refused/.test(l)) : [];
  if (gw) await gw.stop();
  if (mock) await mock.close();
  if (pg) pg.destroy();
  assert.deepStrictEqual(problems, []);
});

const q = (sql) => pg.psql(sql);
const stateDir = () => path.join(gw.dir, 'state');
const spillsLeft = () => fs.readdirSync(stateDir())
  .filter((f) => /^usage-.*\.copy$/.test(f));

function putFile(data) {
  const file = path.join(stateDir(), `usage-${crypto.randomUUID()}.copy`);
  fs.writeFileSync(file + '.tmp', data);
  fs.chownSync(file + '.tmp', 65534, 65534);       // the workers' user
  fs.renameSync(file + '.tmp', file);
  return file;
}

// texts a client or a config can put in a record, PostgreSQL's and our
// separators among them
const TEXTS = ['m', 'p/m', 'tab\there', 'line\nbreak', 'back\\slash',
  'quote"s\'', '{braces,commas}', 'NULL', '\\N', '', ' ', 'ünïcødé ✓ 模型',
  '😀 emoji', 'x'.repeat(3000), '1', '-1', 'e'];

function pick(rnd, list) { return list[Math.floor(rnd() * list.length)]; }

function mulberry(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fuzzRecords(n, seed) {
  const rnd = mulberry(seed);
  const base = BigInt(Date.now() - Date.UTC(2000, 0, 1)) * 1000n;
  const maybe = (v) => (rnd() < 0.2 ? null : v);
  // as large as a day's sums of them stay in a bigint
  const big = () => pick(rnd, [0, 1, 7, 4096, 2 ** 31, 2 ** 50 + 3]);
  const int4 = () => pick(rnd, [0, 1, 200, 429, 2147483647, -2147483648]);
  const cost = () => pick(rnd, [0, 0.1 + 0.2, 1e-300, 5e-324, 1 / 3,
    0.000123, 123456789.125, 1e15 / 7, -2.5, rnd()]);
  return Array.from({ length: n }, (_, i) => ({
    id: crypto.randomUUID(),
    // out of order, microseconds apart, some an hour earlier
    micros: base - BigInt(Math.floor(rnd() * 3.6e9)),
    hash: maybe(crypto.createHash('sha256').update('k' + (i % 23))
      .digest('hex')),
    alias: maybe(pick(rnd, TEXTS)), model: pick(rnd, TEXTS),
    deployment: maybe(pick(rnd, TEXTS)), iface: pick(rnd, ['openai',
      'anthropic', 'gemini', 'tab\t']),
    endpoint: pick(rnd, ['chat/completions', 'messages', 'x'.repeat(300)]),
    stream: rnd() < 0.5, status: int4(), prompt: big(), completion: big(),
    total: big(), cost: maybe(cost()), latency: int4(), ttfb: maybe(int4()),
    attempts: int4(), fallbacks: int4(), error: maybe(pick(rnd, TEXTS)),
    cacheRead: big(), cacheCreation: big(), cache1h: big(),
    reasoning: big(), unpriced: rnd() < 0.3, estimated: rnd() < 0.3,
  }));
}

test('spilled tuples replayed into packs read back exactly as PostgreSQL '
     + 'reads the same tuples', async () => {
  const records = fuzzRecords(600, 42);
  const data = spillFile(records);
  const copy = path.join(pg.dir, 'reference.copy');
  fs.writeFileSync(copy, data);
  fs.chmodSync(copy, 0o644);

  const packsBefore = Number(q('SELECT count(*) FROM llmproxy_usage_packs'));
  putFile(data);
  await until(() => spillsLeft().length === 0);

  // PostgreSQL's own reading of the tuples, into a table like the rows
  q('CREATE TABLE reference (LIKE llmproxy_usage_rows)');
  const r = spawnSync('psql', [pg.url, '-Atqc',
    `\\copy reference FROM '${copy}' WITH (FORMAT binary)`],
  { encoding: 'utf8' });
  assert.strictEqual(r.status, 0, r.stderr);
  assert.strictEqual(q('SELECT count(*) FROM reference'), '600');

  const ids = "request_id IN (SELECT request_id FROM reference)";
  assert.strictEqual(q(`SELECT count(*) FROM llmproxy_usage_rows
                        WHERE ${ids}`), '0', 'no row: all in packs');
  const packs = Number(q('SELECT count(*) FROM llmproxy_usage_packs'))
    - packsBefore;
  assert.ok(packs >= 600 / 16 && packs < 600, `${packs} packs`);
  assert.strictEqual(q(`SELECT count(*) FROM (SELECT * FROM reference
    EXCEPT ALL SELECT * FROM llmproxy_usage WHERE ${ids}) x`), '0');
  assert.strictEqual(q(`SELECT count(*) FROM (SELECT * FROM llmproxy_usage
    WHERE ${ids} EXCEPT ALL SELECT * FROM reference) x`), '0');

  // a pack stays in its page (no TOAST, no compression) unless one of its
  // records alone is too long for it
  assert.strictEqual(q(`SELECT count(*) FROM llmproxy_usage_packs
    WHERE pg_column_size(records) + pg_column_size(strings) > 2000
      AND n > 1`), '0');

  // a period reads the same records as the view does
  assert.strictEqual(q(`SELECT count(*) FROM llmproxy_usage_between(
      now() - interval '30 minutes', 'infinity') WHERE ${ids}`),
  q(`SELECT count(*) FROM llmproxy_usage WHERE ${ids}
       AND created_at >= now() - interval '30 minutes'`));
});

test('small records: 16 a pack, and the 17th in the next', async () => {
  // the master key's records (no key hash or alias), the shortest lines
  const records = Array.from({ length: 100 }, (_, i) => ({
    id: crypto.randomUUID(), hash: null, alias: null, model: 'small',
    deployment: 'p/small', prompt: i, completion: 1, total: i + 1,
    cost: i / 1e6, time: Date.now() - i }));
  putFile(spillFile(records));
  await until(() => spillsLeft().length === 0);
  assert.strictEqual(q(`SELECT string_agg(n::text, ',' ORDER BY n DESC)
    FROM llmproxy_usage_packs WHERE 'small' = ANY(strings)`),
  '16,16,16,16,16,16,4');
  assert.strictEqual(q(`SELECT count(*), sum(prompt_tokens),
    sum(total_tokens), round(sum(cost)::numeric, 9)
    FROM llmproxy_usage WHERE model = 'small'`), '100|4950|5050|0.004950000');
});

test('the SQL packer makes the same records of rows', async () => {
  q('ALTER TABLE llmproxy_usage_rows DISABLE TRIGGER USER');
  q(`INSERT INTO llmproxy_usage_rows SELECT gen_random_uuid(), created_at,
       key_hash, key_alias, model, deployment, interface, endpoint, stream,
       status, prompt_tokens, completion_tokens, total_tokens, cost,
       latency_ms, ttfb_ms, attempts, fallbacks, error, cache_read_tokens,
       cache_creation_tokens, cache_creation_1h_tokens, reasoning_tokens,
       unpriced, usage_estimated FROM reference`);
  q('ALTER TABLE llmproxy_usage_rows ENABLE TRIGGER USER');
  q('CREATE TABLE rows_before AS SELECT * FROM llmproxy_usage_rows');
  const moved = q("SELECT llmproxy_usage_pack_rows('infinity')");
  assert.strictEqual(moved, q('SELECT count(*) FROM rows_before'));
  assert.strictEqual(q('SELECT count(*) FROM llmproxy_usage_rows'), '0');
  assert.strictEqual(q(`SELECT count(*) FROM (SELECT * FROM rows_before
    EXCEPT ALL SELECT * FROM llmproxy_usage
    WHERE request_id IN (SELECT request_id FROM rows_before)) x`), '0');
  assert.strictEqual(q(`SELECT count(*) FROM llmproxy_usage
    WHERE request_id IN (SELECT request_id FROM rows_before)`),
  moved);
});

const sdk = () => new OpenAI({ baseURL: gw.baseURL, apiKey: key,
                               maxRetries: 0 });

async function ask() {
  const { data, response } = await sdk().chat.completions.create({
    model: 'm', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  return { id: response.headers.get('x-llmproxy-request-id'),
           cost: Number(response.headers.get('x-llmproxy-response-cost')),
           usage: data.usage };
}

test('live requests: their records are packs with what the client was '
     + 'told', async () => {
  const answers = [];
  for (let i = 0; i < 20; i++) answers.push(await ask());
  const list = answers.map((a) => `'${a.id}'`).join(',');
  await until(() => q(`SELECT count(*) FROM llmproxy_usage
                       WHERE request_id IN (${list})`) === '20');
  assert.strictEqual(q(`SELECT count(*) FROM llmproxy_usage_rows
                        WHERE request_id IN (${list})`), '0');
  for (const a of answers) {
    const row = q(`SELECT key_alias, model, deployment, interface, endpoint,
      status, prompt_tokens, completion_tokens, total_tokens, cost, stream,
      ttfb_ms IS NOT NULL, key_hash = encode(sha256('${key}'::bytea), 'hex')
      FROM llmproxy_usage WHERE request_id = '${a.id}'`).split('|');
    assert.deepStrictEqual(row.slice(0, 6), ['packs-team', 'm', 'p/m',
      'openai', 'chat/completions', '200']);
    assert.deepStrictEqual(row.slice(6, 9).map(Number),
      [a.usage.prompt_tokens, a.usage.completion_tokens,
       a.usage.total_tokens]);
    assert.ok(Math.abs(Number(row[9]) - a.cost) < 1e-12, row[9]);
    assert.deepStrictEqual(row.slice(10), ['f', 't', 't']);
  }
  // ids are UUIDs of version 7, their time the record's: a lookup by id
  // reads that minute only
  for (const a of answers.slice(0, 3)) {
    assert.match(a.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab]/, a.id);
    const ms = parseInt(a.id.replace(/-/g, '').slice(0, 12), 16);
    assert.strictEqual(q(`SELECT (extract(epoch FROM created_at) * 1000)
      ::bigint, total_tokens FROM llmproxy_usage_request('${a.id}')`),
    `${ms}|${a.usage.total_tokens}`);
  }
  const times = answers.map((a) => a.id.slice(0, 13));
  assert.deepStrictEqual([...times].sort(), times, 'ids sort by time');
  assert.strictEqual(q(`SELECT count(*) FROM llmproxy_usage_request(
    '${crypto.randomUUID()}')`), '0', 'an unknown id of version 4');
  // the daily totals count them
  const daily = q(`SELECT sum(requests) FROM llmproxy_usage_daily
                   WHERE key_alias = 'packs-team' AND model = 'm'`);
  assert.ok(Number(daily) >= 20, daily);
});

test('a database of schema 9 (no packs): the gateway writes rows into the '
     + 'table, as before, and loses none', async () => {
  // schema 10 taken back, as a restore of an older database would
  q(`BEGIN;
     DROP VIEW llmproxy_usage;
     DROP FUNCTION llmproxy_usage_between(timestamptz, timestamptz);
     ALTER TABLE llmproxy_usage_rows RENAME TO llmproxy_usage;
     ALTER INDEX llmproxy_usage_rows_created_at
       RENAME TO llmproxy_usage_created_at;
     CREATE TABLE packs_kept AS SELECT * FROM llmproxy_usage_packs;
     DROP TABLE llmproxy_usage_packs;
     DELETE FROM llmproxy_schema_migrations WHERE version = 10;
     COMMIT`);
  const answers = [];
  for (let i = 0; i < 5; i++) answers.push(await ask());
  const list = answers.map((a) => `'${a.id}'`).join(',');
  await until(() => q(`SELECT count(*) FROM llmproxy_usage
                       WHERE request_id IN (${list})`) === '5');

  // and the migration to schema 10 keeps those rows
  q('DROP FUNCTION llmproxy_usage_insert() CASCADE');
  q('DROP FUNCTION llmproxy_usage_pack_rows(timestamptz)');
  q('DROP FUNCTION llmproxy_usage_request(uuid)');
  const m = gw.ctl(['migrate']);
  assert.strictEqual(m.status, 0, m.stderr);
  assert.match(m.stdout, /applied 010_usage_packs/);
  assert.strictEqual(q(`SELECT count(*) FROM llmproxy_usage_rows
                        WHERE request_id IN (${list})`), '5');
  assert.strictEqual(q(`SELECT count(*) FROM llmproxy_usage
                        WHERE request_id IN (${list})`), '5');

  // the writer takes up packs again within a second or two
  await sleep(1500);
  const more = [];
  for (let i = 0; i < 5; i++) more.push(await ask());
  const list2 = more.map((a) => `'${a.id}'`).join(',');
  await until(() => q(`SELECT count(*) FROM llmproxy_usage
                       WHERE request_id IN (${list2})`) === '5');
  assert.strictEqual(q(`SELECT count(*) FROM llmproxy_usage_rows
                        WHERE request_id IN (${list2})`), '0');
});
