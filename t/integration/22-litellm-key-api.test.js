'use strict';
// LiteLLM's key management API on the admin location (SPEC §12), called
// the way LiteLLM's docs call it (plain HTTP, curl-like), at /key/... on
// a server whose `location /key/` is an llmproxy_admin location, as a
// LiteLLM user's scripts expect it.  Keys made here reach the gateway
// through the poller, as the CLI's do.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const OpenAI = require('openai');
const { startGateway, sleep } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock, freePort } = require('../mocks/openai-mock');

let pg, gw, mock, base;
const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');

before(async () => {
  pg = await startPostgres();
  mock = await createMock({ name: 'k' });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  gw = await startGateway({
    database: pg.url,
    // a LiteLLM-style server: the gateway at /, the key API at /key/
    httpExtra: `server {
        listen 127.0.0.1:${port};
        access_log __DIR__/access-litellm.log llmproxy_t;
        location / { llmproxy; }
        location /key/ { llmproxy_admin; allow 127.0.0.1; deny all; }
    }`,
    config: {
      providers: {
        p: { api_base: mock.url, interfaces: ['openai'],
             models: { 'gpt-4o': {}, 'gpt-4o-mini': {},
                       priced: { input_cost_per_million: 1000000,
                                 output_cost_per_million: 1000000 } } },
      },
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

// curl -X POST "$BASE/key/generate" -H "Authorization: Bearer $MASTER" ...
async function api(method, path, body, key = gw.masterKey) {
  const r = await fetch(base + path, {
    method,
    headers: { Authorization: 'Bearer ' + key,
               ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
  return { status: r.status, body: json, text };
}

async function status(key, model = 'gpt-4o') {
  const sdk = new OpenAI({ baseURL: base + '/v1', apiKey: key,
                           maxRetries: 0 });
  try {
    await sdk.chat.completions.create({
      model, messages: [{ role: 'user', content: 'hi' }] });
    return 200;
  } catch (e) { return e.status; }
}

async function until(fn, ms = 8000) {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return;
    if (Date.now() - t0 > ms) throw new Error('not within ' + ms + ' ms');
    await sleep(150);
  }
}

let key;

test('POST /key/generate: LiteLLM\'s request, its answer, and the key '
     + 'works at the gateway', async () => {
  const r = await api('POST', '/key/generate', {
    models: ['gpt-4o'], key_alias: 'script-key', max_budget: 10,
    budget_duration: '30d', duration: '7d', rpm_limit: 60,
    tpm_limit: 10000, metadata: { user: 'ishaan@berri.ai' },
    user_id: 'u1', team_id: 'core-infra' });
  assert.strictEqual(r.status, 200, r.text);
  key = r.body.key;
  assert.match(key, /^sk-[A-Za-z0-9]{48}$/);
  assert.strictEqual(r.body.token_id, sha(key));
  assert.strictEqual(r.body.token, sha(key));
  assert.strictEqual(r.body.key_alias, 'script-key');
  assert.deepStrictEqual(r.body.models, ['gpt-4o']);
  assert.strictEqual(r.body.max_budget, 10);
  assert.strictEqual(r.body.budget_duration, '30d');
  assert.strictEqual(r.body.rpm_limit, 60);
  assert.strictEqual(r.body.tpm_limit, 10000);
  assert.strictEqual(r.body.spend, 0);
  assert.strictEqual(r.body.blocked, false);
  const exp = Date.parse(r.body.expires) - Date.now();
  assert.ok(exp > 6.9 * 86400e3 && exp < 7.1 * 86400e3, r.body.expires);
  assert.ok(Date.parse(r.body.budget_reset_at) > Date.now() + 29 * 86400e3);

  // stored as the CLI stores keys: the hash, never the key
  assert.strictEqual(pg.psql(`SELECT alias || ' ' || rpm FROM llmproxy_keys
    WHERE key_hash = '${sha(key)}'`), 'script-key 60');
  assert.strictEqual(pg.psql(`SELECT count(*) FROM llmproxy_keys
    WHERE key_prefix LIKE '%${key.slice(10)}%'`), '0');

  await until(async () => await status(key) === 200);
  assert.strictEqual(await status(key, 'gpt-4o-mini'), 403);

  // llmproxy_litellm_headers is off by default: no x-litellm-* headers
  const res = await fetch(base + '/v1/chat/completions', {
    method: 'POST', headers: { Authorization: 'Bearer ' + key,
                               'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', messages: [
      { role: 'user', content: 'hi' }] }) });
  await res.text();
  assert.strictEqual(res.status, 200);
  assert.ok(res.headers.get('x-llmproxy-request-id'));
  assert.deepStrictEqual([...res.headers.keys()].filter((n) =>
    n.startsWith('x-litellm-')), []);

  // the key never reaches a log
  assert.ok(!gw.errorLog().includes(key.slice(10)));
});

test('GET /key/info?key=: the master key reads any key; a virtual key '
     + 'reads itself only', async () => {
  let r = await api('GET', '/key/info?key=' + key);
  assert.strictEqual(r.status, 200, r.text);
  assert.strictEqual(r.body.key, key);
  assert.strictEqual(r.body.info.key_alias, 'script-key');
  assert.strictEqual(r.body.info.max_budget, 10);
  assert.ok(r.body.info.spend >= 0);
  assert.strictEqual(r.body.info.rpm_limit, 60);
  assert.ok(r.body.info.budget_reset_at);

  // by its hash too (LiteLLM's "token")
  r = await api('GET', '/key/info?key=' + sha(key));
  assert.strictEqual(r.body.info.key_alias, 'script-key');

  // the key itself, with or without ?key=
  r = await api('GET', '/key/info', null, key);
  assert.strictEqual(r.status, 200, r.text);
  assert.strictEqual(r.body.info.key_alias, 'script-key');
  r = await api('GET', '/key/info?key=' + key, null, key);
  assert.strictEqual(r.status, 200, r.text);

  // another key's info, the list, or a change: refused
  const other = await api('POST', '/key/generate', { key_alias: 'other' });
  await until(async () => await status(other.body.key) === 200);
  r = await api('GET', '/key/info?key=' + other.body.key, null, key);
  assert.strictEqual(r.status, 403, r.text);
  assert.ok(!r.text.includes('other'));
  r = await api('GET', '/key/info?key=' + sha(other.body.key), null, key);
  assert.strictEqual(r.status, 403, r.text);
  r = await api('GET', '/key/list', null, key);
  assert.strictEqual(r.status, 401, r.text);
  r = await api('POST', '/key/update', { key, max_budget: 1000 }, key);
  assert.strictEqual(r.status, 401, r.text);
  r = await api('POST', '/key/generate', {}, key);
  assert.strictEqual(r.status, 401, r.text);
  r = await api('GET', '/key/info', null, 'sk-unknown-' + 'x'.repeat(30));
  assert.strictEqual(r.status, 401, r.text);

  // ?key= never reaches the access log
  const log = require('node:fs').readFileSync(gw.dir + '/access-litellm.log',
                                              'utf8');
  assert.ok(!log.includes(key) && !log.includes(other.body.key), log);
});

test('POST /key/update, /key/block, /key/unblock reach the gateway',
     async () => {
  let r = await api('POST', '/key/update', { key, models: ['gpt-4o',
    'gpt-4o-mini'], rpm_limit: null, metadata: { team: 'x' } });
  assert.strictEqual(r.status, 200, r.text);
  assert.deepStrictEqual(r.body.models, ['gpt-4o', 'gpt-4o-mini']);
  assert.strictEqual(r.body.rpm_limit, null);
  assert.strictEqual(r.body.max_budget, 10);     // untouched
  await until(async () => await status(key, 'gpt-4o-mini') === 200);

  r = await api('POST', '/key/block', { key });
  assert.strictEqual(r.status, 200, r.text);
  assert.strictEqual(r.body.blocked, true);
  await until(async () => await status(key) === 401);

  r = await api('POST', '/key/unblock', { key: sha(key) });
  assert.strictEqual(r.status, 200, r.text);
  assert.strictEqual(r.body.blocked, false);
  await until(async () => await status(key) === 200);

  // a budget spent: 429 until raised
  r = await api('POST', '/key/update', { key, max_budget: 0.000001,
                                         spend: 1 });
  assert.strictEqual(r.status, 200, r.text);
  await until(async () => await status(key) === 429);
  r = await api('POST', '/key/update', { key, max_budget: 100, spend: 0 });
  await until(async () => await status(key) === 200);
});

test('GET /key/list: hashes, pages, full objects, by alias', async () => {
  for (let i = 0; i < 3; i++) {
    const r = await api('POST', '/key/generate', { key_alias: 'bulk-' + i });
    assert.strictEqual(r.status, 200, r.text);
  }
  let r = await api('GET', '/key/list?page=1&size=2');
  assert.strictEqual(r.status, 200, r.text);
  assert.strictEqual(r.body.total_count, 5);
  assert.strictEqual(r.body.current_page, 1);
  assert.strictEqual(r.body.total_pages, 3);
  assert.strictEqual(r.body.keys.length, 2);
  assert.match(r.body.keys[0], /^[0-9a-f]{64}$/);
  r = await api('GET', '/key/list?page=3&size=2&return_full_object=true');
  assert.strictEqual(r.body.keys.length, 1);
  assert.strictEqual(r.body.keys[0].key_alias, 'bulk-2');
  r = await api('GET', '/key/list?page=9&size=2');
  assert.deepStrictEqual(r.body.keys, []);
  assert.strictEqual(r.body.total_count, 5);
  r = await api('GET', '/key/list?key_alias=script-key');
  assert.deepStrictEqual(r.body.keys, [sha(key)]);
  // query arguments are decoded as a form: %XX and "+"
  const spaced = await api('POST', '/key/generate',
                           { key_alias: 'a b/c+d' });
  assert.strictEqual(spaced.status, 200, spaced.text);
  r = await api('GET', '/key/list?key_alias=a+b%2Fc%2Bd');
  assert.deepStrictEqual(r.body.keys, [sha(spaced.body.key)]);
  r = await api('GET', '/key/info?key=' + encodeURIComponent(key));
  assert.strictEqual(r.body.info.key_alias, 'script-key');
  await api('POST', '/key/delete', { key_aliases: ['a b/c+d'] });
});

test('POST /key/delete: by key and by alias; the keys stop working',
     async () => {
  const a = await api('POST', '/key/generate', { key_alias: 'doomed' });
  await until(async () => await status(a.body.key) === 200);
  let r = await api('POST', '/key/delete', { keys: [key] });
  assert.strictEqual(r.status, 200, r.text);
  assert.deepStrictEqual(r.body.deleted_keys, [key]);
  r = await api('POST', '/key/delete', { key_aliases: ['doomed'] });
  assert.strictEqual(r.status, 200, r.text);
  await until(async () => await status(key) === 401
                          && await status(a.body.key) === 401);
  r = await api('POST', '/key/delete', { keys: [key] });
  assert.strictEqual(r.status, 404, r.text);
  r = await api('GET', '/key/info?key=' + key);
  assert.strictEqual(r.status, 404, r.text);
  r = await api('GET', '/key/list');
  assert.strictEqual(r.body.total_count, 4);

  // a rotation as LiteLLM scripts do it: delete, then the same alias anew
  r = await api('POST', '/key/generate', { key_alias: 'doomed' });
  assert.strictEqual(r.status, 200, r.text);
  await until(async () => await status(r.body.key) === 200);
  assert.strictEqual(await status(a.body.key), 401);
  assert.strictEqual(pg.psql(`SELECT count(*) FROM llmproxy_keys
    WHERE key_hash = '${sha(a.body.key)}' AND revoked_at IS NOT NULL`), '1');
  await api('POST', '/key/delete', { key_aliases: ['doomed'] });
});

test('bad requests: clear 4xx in OpenAI\'s error shape', async () => {
  const cases = [
    [{ models: 'gpt-4o' }, /models: expected a list/],
    [{ max_budget: -1 }, /max_budget: expected a non-negative number/],
    [{ rpm_limit: 1.5 }, /rpm_limit: expected a whole number/],
    [{ duration: 'forever' }, /duration: expected a duration/],
    [{ max_parallel_requests: 2 }, /max_parallel_requests: not supported/],
    [{ model_max_budget: { 'gpt-4o': 1 } }, /model_max_budget: not suppor/],
    [{ key: 'sk-short' }, /key: a chosen key must be/],
    [{ key_alias: 'bulk-0' }, /exists already/],
    [{ spend: 5 }, /spend: not supported/],
  ];
  for (const [body, re] of cases) {
    const r = await api('POST', '/key/generate', body);
    assert.strictEqual(r.status, 400, JSON.stringify(body) + ' ' + r.text);
    assert.match(r.body.error.message, re);
  }
  let r = await fetch(base + '/key/generate', {
    method: 'POST', body: '{"models": [',
    headers: { Authorization: 'Bearer ' + gw.masterKey } });
  assert.strictEqual(r.status, 400);
  r = await api('GET', '/key/generate');
  assert.strictEqual(r.status, 405);
  r = await api('POST', '/key/update', { max_budget: 1 });
  assert.strictEqual(r.status, 400);
  r = await api('POST', '/key/block', { key: 'sk-nope-' + 'x'.repeat(30) });
  assert.strictEqual(r.status, 404);
  r = await api('POST', '/key/generate', {}, 'wrong');
  assert.strictEqual(r.status, 401);

  // a chosen key (LiteLLM's "key" field) is taken as it is
  const chosen = 'sk-chosen-' + crypto.randomBytes(16).toString('hex');
  r = await api('POST', '/key/generate', { key: chosen, models: [] });
  assert.strictEqual(r.status, 200, r.text);
  assert.strictEqual(r.body.key, chosen);
  await until(async () => await status(chosen, 'gpt-4o-mini') === 200);
});
