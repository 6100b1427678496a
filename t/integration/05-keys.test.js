'use strict';
// Virtual keys in a real PostgreSQL (SPEC §7): the CLI lifecycle, every
// rejection through the official SDK, changes reaching the gateway within
// seconds without reload, a database restart, 100,000 keys.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const OpenAI = require('openai');
const { startGateway, sleep } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock } = require('../mocks/openai-mock');

let pg, gw, mock;

before(async () => {
  pg = await startPostgres();
  mock = await createMock({ name: 'k' });
  gw = await startGateway({
    database: pg.url,
    zone: '64m',
    config: {
      providers: {
        p: { api_base: mock.url, interfaces: ['openai'],
             access_groups: ['team'],
             models: { m1: {}, m2: { access_groups: ['admins'] }, m3: {},
                       priced: { input_cost_per_million: 100000,
                                 output_cost_per_million: 100000 } } },
      },
      aliases: { one: 'm1' },
    },
  });
});

after(async () => {
  const problems = gw ? gw.problems() : [];
  if (gw) await gw.stop();
  if (mock) await mock.close();
  if (pg) pg.destroy();
  assert.deepStrictEqual(problems, []);
});

const sdk = (key) => new OpenAI({ baseURL: gw.baseURL, apiKey: key,
                                  maxRetries: 0 });
const call = (key, model = 'm1') => sdk(key).chat.completions.create({
  model, messages: [{ role: 'user', content: 'hi' }] });

function create(...args) {
  const r = gw.ctl(['key', 'create', ...args]);
  assert.strictEqual(r.status, 0, r.stderr);
  const key = r.stdout.trim();
  assert.match(key, /^sk-[A-Za-z0-9]{48}$/);
  return key;
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

const status = async (key, model = 'm1') => {
  try { await call(key, model); return 200; } catch (e) { return e.status; }
};

test('migrations: applied once, a second run changes nothing', () => {
  // the sync in before() may have applied them already (llmproxyctl
  // migrates whenever it connects); either way they are applied once
  let r = gw.ctl(['migrate']);
  assert.strictEqual(r.status, 0, r.stderr);
  assert.match(r.stdout, /up to date \(\d+ migrations? applied\)/);
  r = gw.ctl(['migrate']);
  assert.strictEqual(r.status, 0, r.stderr);
  assert.match(r.stdout, /up to date \(0 migrations applied\)/);
  assert.strictEqual(pg.psql('SELECT count(*) >= 1 AND count(*) = '
    + 'count(DISTINCT name) FROM llmproxy_schema_migrations'), 't',
  'each migration recorded once');
});

test('migrations bring an empty and an older database up to date', () => {
  const fs = require('node:fs');
  const path = require('node:path');
  const { ROOT } = require('../lib/gateway');
  const schema = fs.readdirSync(path.join(ROOT, 'configs', 'schema'))
    .filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
  assert.ok(schema.length >= 2);

  pg.psql('CREATE DATABASE empty_db');
  pg.psql('CREATE DATABASE old_db');
  const url = (db) => pg.url.replace(/\/llmproxy$/, '/' + db);

  let r = gw.ctl(['migrate', '--database', url('empty_db')]);
  assert.strictEqual(r.status, 0, r.stderr);
  for (const f of schema) {
    assert.match(r.stdout, new RegExp('applied ' + f.replace('.sql', '')));
  }

  // an "older" database: only the first migration, applied back then
  const { spawnSync } = require('node:child_process');
  const first = path.join(ROOT, 'configs', 'schema', schema[0]);
  let p = spawnSync('psql', [url('old_db'), '-q', '-v', 'ON_ERROR_STOP=1',
                             '-f', first], { encoding: 'utf8' });
  assert.strictEqual(p.status, 0, p.stderr);
  p = spawnSync('psql', [url('old_db'), '-Atqc',
    'CREATE TABLE llmproxy_schema_migrations (version integer PRIMARY KEY,'
    + " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());"
    + ` INSERT INTO llmproxy_schema_migrations VALUES (1, '${schema[0]
      .replace('.sql', '')}')`], { encoding: 'utf8' });
  assert.strictEqual(p.status, 0, p.stderr);
  r = gw.ctl(['migrate', '--database', url('old_db')]);
  assert.strictEqual(r.status, 0, r.stderr);
  assert.ok(!r.stdout.includes('applied ' + schema[0].replace('.sql', '')));
  assert.match(r.stdout, new RegExp('applied ' + schema[1]
    .replace('.sql', '')));
  r = gw.ctl(['migrate', '--database', url('old_db')]);
  assert.match(r.stdout, /up to date \(0 migrations applied\)/);
});

test('a new key works within 5 s, an unknown one is refused', async () => {
  const key = create('--alias', 'k1', '--models', 'm1');
  const ms = await until(async () => (await status(key)) === 200);
  assert.ok(ms < 5000);
  await assert.rejects(call('sk-' + 'x'.repeat(48)),
                       (e) => e instanceof OpenAI.AuthenticationError);
  await assert.rejects(call(key, 'm3'),
                       (e) => e instanceof OpenAI.PermissionDeniedError);
  const ids = [];
  for await (const m of sdk(key).models.list()) ids.push(m.id);
  assert.deepStrictEqual(ids.sort(), ['m1', 'one']);
});

test('the key is stored as a hash and listed by alias and prefix', () => {
  const key = create('--alias', 'hashed');
  const stored = pg.psql("SELECT key_hash || ' ' || key_prefix FROM "
                         + "llmproxy_keys WHERE alias = 'hashed'");
  const hash = require('node:crypto').createHash('sha256').update(key)
                 .digest('hex');
  assert.strictEqual(stored, hash + ' ' + key.slice(0, 7));
  const list = gw.ctl(['key', 'list']);
  assert.strictEqual(list.status, 0);
  assert.match(list.stdout, /hashed/);
  assert.ok(!list.stdout.includes(key));
  const info = gw.ctl(['key', 'info', key]);
  assert.match(info.stdout, /alias:\s+hashed/);
  assert.ok(!info.stdout.includes(key));
  const dup = gw.ctl(['key', 'create', '--alias', 'hashed']);
  assert.strictEqual(dup.status, 1);
});

test('access groups decide which models a key may call', async () => {
  const key = create('--alias', 'team', '--access-groups', 'team');
  await until(async () => (await status(key)) === 200);
  assert.strictEqual(await status(key, 'm3'), 200);
  assert.strictEqual(await status(key, 'one'), 200);
  assert.strictEqual(await status(key, 'm2'), 403);
  const admin = create('--alias', 'admin', '--access-groups', 'admins');
  await until(async () => (await status(admin, 'm2')) === 200);
  assert.strictEqual(await status(admin, 'm1'), 403);
});

test('rpm is enforced across workers', async () => {
  const key = create('--alias', 'rpm', '--rpm', '3');
  await until(async () => (await status(key)) === 200);
  const seen = [];
  for (let i = 0; i < 6; i++) seen.push(await status(key));
  assert.ok(seen.includes(429), seen.join(','));
  assert.ok(seen.filter((s) => s === 200).length <= 2, seen.join(','));
  await assert.rejects(call(key), (e) => e instanceof OpenAI.RateLimitError);
});

test('budget, expiry, block and revoke', async () => {
  const key = create('--alias', 'budget', '--max-budget', '1',
                     '--budget-duration', '30d');
  await until(async () => (await status(key)) === 200);
  let r = gw.ctl(['key', 'update', 'budget', '--spend', '2']);
  assert.strictEqual(r.status, 0, r.stderr);
  await until(async () => (await status(key)) === 429);

  // "none" removes a limit (a LiteLLM /key/update with rpm_limit null):
  // the over-budget key works again, and its info says so
  r = gw.ctl(['key', 'update', 'budget', '--max-budget', 'none',
              '--budget-duration', 'none', '--rpm', '1000']);
  assert.strictEqual(r.status, 0, r.stderr);
  await until(async () => (await status(key)) === 200);
  r = gw.ctl(['key', 'update', 'budget', '--rpm', 'none']);
  assert.strictEqual(r.status, 0, r.stderr);
  let j = JSON.parse(gw.ctl(['key', 'info', 'budget', '--json']).stdout);
  assert.deepStrictEqual([j.max_budget, j.budget_duration_seconds, j.rpm],
                         ['', '', ''], JSON.stringify(j));
  r = gw.ctl(['key', 'create', '--alias', 'none', '--rpm', 'none']);
  assert.strictEqual(r.status, 1, r.stderr);
  assert.match(r.stderr, /--rpm none: a new key has no limit/);

  const exp = create('--alias', 'exp', '--expires', '2s');
  await until(async () => (await status(exp)) === 200);
  await until(async () => (await status(exp)) === 401, 6000);

  const blk = create('--alias', 'blk');
  await until(async () => (await status(blk)) === 200);
  r = gw.ctl(['key', 'update', 'blk', '--block']);
  assert.strictEqual(r.status, 0, r.stderr);
  await until(async () => (await status(blk)) === 401);
  gw.ctl(['key', 'update', 'blk', '--unblock']);
  await until(async () => (await status(blk)) === 200);

  r = gw.ctl(['key', 'revoke', 'blk']);
  assert.strictEqual(r.status, 0, r.stderr);
  const ms = await until(async () => (await status(blk)) === 401);
  assert.ok(ms < 5000);
  const info = gw.ctl(['key', 'info', 'blk']);
  assert.match(info.stdout, /status:\s+revoked/);
  assert.strictEqual(gw.ctl(['key', 'revoke', 'nosuchkey']).status, 1);
});

// tokens are counted per minute: keep a test inside one minute
async function sameMinute(seconds) {
  const s = new Date().getSeconds();
  if (s > 60 - seconds) await sleep((61 - s) * 1000);
}

test('tpm counts the tokens the provider reported', async () => {
  const key = create('--alias', 'tpm', '--tpm', '30');
  await until(async () => (await status(key)) === 200);
  await sameMinute(15);
  const key2 = create('--alias', 'tpm2', '--tpm', '30');
  await until(async () => (await status(key2)) === 200);   // 18 tokens
  assert.strictEqual(await status(key2), 200);              // 36 tokens
  await assert.rejects(call(key2), (e) => e instanceof OpenAI.RateLimitError
    && /tokens per minute/.test(e.message));
});

test('a stream with include_usage counts its tokens too', async () => {
  await sameMinute(15);
  const key = create('--alias', 'tpm-stream', '--tpm', '20');
  await until(async () => (await status(key)) === 200);     // 18 tokens
  const stream = await sdk(key).chat.completions.create({ model: 'm1',
    messages: [], stream: true, stream_options: { include_usage: true } });
  let usage;
  for await (const c of stream) if (c.usage) usage = c.usage;
  assert.strictEqual(usage.total_tokens, 16);               // 34 tokens
  assert.strictEqual(await status(key), 429);
});

test('spend from the model prices exhausts a budget', async () => {
  const key = create('--alias', 'spender', '--max-budget', '1');
  // the first call costs 18 tokens at 0.1 USD each: 1.8 USD
  await until(async () => (await status(key, 'm1')) === 200);
  const { response } = await sdk(key).chat.completions.create({
    model: 'priced', messages: [] }).withResponse();
  assert.strictEqual(response.headers.get('x-llmproxy-response-cost'),
                     '1.80000000');
  assert.strictEqual(response.headers.get('x-llmproxy-key-spend'),
                     '1.80000000');
  await assert.rejects(call(key, 'priced'), (e) => e.status === 429
    && /budget/.test(e.message));
  assert.strictEqual(await status(key, 'm1'), 429, 'for every model');
});

test('the gateway survives a database restart', async () => {
  const key = create('--alias', 'survivor');
  await until(async () => (await status(key)) === 200);
  pg.stop();
  await until(async () => {
    const r = await (await fetch(gw.url + '/health/readiness')).json();
    return r.database === 'unreachable';
  });
  assert.strictEqual(await status(key), 200, 'known keys keep working');
  assert.match(gw.errorLog(), /database unreachable/);
  pg.start();
  await until(async () => {
    const r = await (await fetch(gw.url + '/health/readiness')).json();
    return r.database === 'connected';
  }, 8000);
  const fresh = create('--alias', 'after-restart');
  await until(async () => (await status(fresh)) === 200);
});

test('100,000 keys load and are checked without the database', async () => {
  pg.psql(`INSERT INTO llmproxy_keys (key_hash, key_prefix, alias)
           SELECT encode(sha256(('sk-bulk-' || i)::bytea), 'hex'), 'sk-bulk',
                  'bulk-' || i FROM generate_series(1, 100000) i`);
  await until(async () => {
    const r = await (await fetch(gw.url + '/health/readiness')).json();
    return r.keys >= 100000;
  }, 20000);
  assert.strictEqual(await status('sk-bulk-77777'), 200);
  assert.strictEqual(await status('sk-bulk-100001'), 401);
});
