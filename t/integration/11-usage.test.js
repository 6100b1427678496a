'use strict';
// Usage accounting (SPEC §7, §8; issue 4): the tokens and cost the provider
// reported, streamed or not, end up in PostgreSQL's usage records, in the
// key's spend (in the zone and in the database, counted once), in /metrics
// and in `llmproxyctl usage`; no record is lost while PostgreSQL is down
// or while nginx reloads.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const fs = require('node:fs');
const { execFile, spawnSync } = require('node:child_process');
const OpenAI = require('openai');
const Anthropic = require('@anthropic-ai/sdk');
const { GoogleGenAI } = require('@google/genai');
const { startGateway, sleep, ROOT, until } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock } = require('../mocks/openai-mock');
const { spillFile } = require('../lib/spill');

const PROMPT = 1234, COMPLETION = 567;
const IN_PRICE = 3, OUT_PRICE = 15;          // USD per million tokens
const COST = (PROMPT * IN_PRICE + COMPLETION * OUT_PRICE) / 1e6;

let pg, gw, mock, key;

before(async () => {
  pg = await startPostgres();
  mock = await createMock({ name: 'u', usage: { prompt_tokens: PROMPT,
                                               completion_tokens: COMPLETION } });
  gw = await startGateway({
    database: pg.url,
    workers: 2,
    httpExtra: 'llmproxy_usage_flush 100ms;',
    config: {
      providers: {
        p: { api_base: mock.url, interfaces: ['openai'],
             models: { priced: { input_cost_per_million: IN_PRICE,
                                 output_cost_per_million: OUT_PRICE } } },
      },
    },
  });
  const r = gw.ctl(['key', 'create', '--alias', 'usage-team']);
  assert.strictEqual(r.status, 0, r.stderr);
  key = r.stdout.trim();
  await until(async () => (await status(key)) === 200);
});

after(async () => {
  const problems = gw ? gw.problems().filter((l) =>
    !/usage records cannot be written|database unreachable|spill/.test(l))
    : [];
  if (gw) await gw.stop();
  if (mock) await mock.close();
  if (pg) pg.destroy();
  assert.deepStrictEqual(problems, []);
});

const sdk = (k) => new OpenAI({ baseURL: gw.baseURL, apiKey: k,
                                maxRetries: 0 });

async function status(k, model = 'priced') {
  try {
    await sdk(k).chat.completions.create({ model,
      messages: [{ role: 'user', content: 'hi' }] });
    return 200;
  } catch (e) { return e.status; }
}

const record = (id) => pg.psql(
  'SELECT key_alias, model, deployment, interface, endpoint, stream, status,'
  + ' prompt_tokens, completion_tokens, total_tokens, cost, attempts,'
  + ' fallbacks, coalesce(error, \'\'), ttfb_ms IS NOT NULL,'
  + ` latency_ms >= 0 FROM llmproxy_usage WHERE request_id = '${id}'`);

const dbSpend = () => Number(pg.psql(
  "SELECT spend FROM llmproxy_keys WHERE alias = 'usage-team'"));

// how many of these request ids have a record (the SQL goes through stdin:
// thousands of ids are too long for one argument)
function recordCount(ids, distinct = false) {
  const r = spawnSync('psql', [pg.url, '-Atq'], { encoding: 'utf8',
    input: `SELECT count(${distinct ? 'DISTINCT request_id' : '*'})`
           + ' FROM llmproxy_usage WHERE request_id IN ('
           + ids.map((i) => `'${i}'`).join(',') + ');' });
  if (r.status !== 0) throw new Error('psql: ' + r.stderr);
  return Number(r.stdout.trim());
}

test('a non-streamed answer: its record carries the exact tokens and cost',
async () => {
  const { data, response } = await sdk(key).chat.completions.create({
    model: 'priced', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  assert.strictEqual(data.usage.prompt_tokens, PROMPT);
  const id = response.headers.get('x-llmproxy-request-id');
  assert.strictEqual(Number(response.headers.get('x-llmproxy-response-cost')),
                     Number(COST.toFixed(8)));
  const row = await until(() => record(id));
  assert.strictEqual(row, ['usage-team', 'priced', 'p/priced', 'openai',
    'chat/completions', 'f', '200', PROMPT, COMPLETION, PROMPT + COMPLETION,
    COST, '1', '0', '', 't', 't'].join('|'));
});

test('a stream that did not ask for usage: the gateway asks, counts it, '
     + 'and the client never sees that chunk', async () => {
  mock.reset();
  const { data: stream, response } = await sdk(key).chat.completions.create({
    model: 'priced', stream: true,
    messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  assert.ok(chunks.length >= 2);
  for (const c of chunks) {
    assert.ok(c.choices.length > 0, 'a chunk without choices reached the '
              + 'client: ' + JSON.stringify(c));
    assert.ok(!c.usage, 'usage reached the client');
  }
  // the provider was asked for its usage chunk
  assert.deepStrictEqual(mock.requests[0].body.stream_options,
                         { include_usage: true });
  const id = response.headers.get('x-llmproxy-request-id');
  const row = await until(() => record(id));
  assert.match(row, new RegExp(`^usage-team\\|priced\\|p/priced\\|openai\\|`
    + `chat/completions\\|t\\|200\\|${PROMPT}\\|${COMPLETION}\\|`));
});

test('a stream that asked for usage gets the usage chunk; other '
     + 'stream_options are kept', async () => {
  mock.reset();
  const stream = await sdk(key).chat.completions.create({
    model: 'priced', stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'hi' }] });
  let usage = null;
  for await (const c of stream) if (c.usage) usage = c.usage;
  assert.deepStrictEqual(usage, { prompt_tokens: PROMPT,
    completion_tokens: COMPLETION, total_tokens: PROMPT + COMPLETION });
  assert.deepStrictEqual(mock.requests[0].body.stream_options,
                         { include_usage: true });

  // include_usage false, next to another option: true is added, the
  // other option stays, and the usage chunk is hidden again
  mock.reset();
  const res = await fetch(gw.baseURL + '/chat/completions', {
    method: 'POST',
    headers: { authorization: 'Bearer ' + key,
               'content-type': 'application/json' },
    body: '{"model":"priced","stream":true,"messages":[{"role":"user",'
          + '"content":"hi"}],"stream_options":{"include_usage":false,'
          + '"x_other":1}}' });
  const text = await res.text();
  assert.strictEqual(res.status, 200);
  assert.ok(!/"usage":\{/.test(text), text);
  assert.match(text, /data: \[DONE\]\n\n$/);
  assert.deepStrictEqual(mock.requests[0].body.stream_options,
                         { include_usage: true, x_other: 1 });
});

test('Anthropic and Gemini clients: the same key, records and spend',
async () => {
  const a = new Anthropic({ baseURL: gw.url, apiKey: key, maxRetries: 0 });
  const m = await a.messages.create({ model: 'priced', max_tokens: 20,
    messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  assert.strictEqual(m.data.usage.input_tokens, PROMPT);
  const aid = m.response.headers.get('x-llmproxy-request-id');

  const g = new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: gw.url } });
  let usage = null;
  for await (const ch of await g.models.generateContentStream({
    model: 'priced', contents: 'hi' })) {
    if (ch.usageMetadata) usage = ch.usageMetadata;
  }
  assert.strictEqual(usage.promptTokenCount, PROMPT);

  const row = await until(() => record(aid));
  assert.match(row, new RegExp(`^usage-team\\|priced\\|p/priced\\|`
    + `anthropic\\|messages\\|f\\|200\\|${PROMPT}\\|${COMPLETION}\\|`));
  const grow = await until(() => pg.psql("SELECT stream, prompt_tokens,"
    + " completion_tokens FROM llmproxy_usage WHERE interface = 'gemini'"
    + " AND endpoint = 'streamGenerateContent'"));
  assert.strictEqual(grow, `t|${PROMPT}|${COMPLETION}`);
  await until(() => Math.abs(dbSpend() - Number(pg.psql(
    "SELECT sum(cost) FROM llmproxy_usage WHERE key_alias = 'usage-team'")))
    < 1e-9);

  // a key that may not call a model: 403 in each client's shape
  const r = gw.ctl(['key', 'create', '--alias', 'usage-none',
                    '--models', 'other']);
  const none = r.stdout.trim();
  await until(async () => (await status(none)) === 403);
  await assert.rejects(new Anthropic({ baseURL: gw.url, apiKey: none,
    maxRetries: 0 }).messages.create({ model: 'priced', max_tokens: 5,
    messages: [{ role: 'user', content: 'hi' }] }), (e) =>
    e.status === 403 && e.error.error.type === 'permission_error');
  await assert.rejects(new GoogleGenAI({ apiKey: none,
    httpOptions: { baseUrl: gw.url } }).models.generateContent({
    model: 'priced', contents: 'hi' }), (e) => e.status === 403
    && /PERMISSION_DENIED/.test(e.message));
});

test('requests refused at routing leave a record too', async () => {
  const res = await fetch(gw.baseURL + '/chat/completions', {
    method: 'POST',
    headers: { authorization: 'Bearer ' + key,
               'content-type': 'application/json' },
    body: JSON.stringify({ model: 'no-such-model', messages: [] }) });
  assert.strictEqual(res.status, 404);
  const id = res.headers.get('x-llmproxy-request-id');
  const row = await until(() => record(id));
  assert.match(row, /^usage-team\|no-such-model\|\|openai\|chat\/completions\|f\|404\|0\|0\|0\|0\|0\|0\|model_not_found\|f\|t$/);
});

test('spend: counted once in the database, and the zone agrees with it',
async () => {
  // every record so far is in; the database's spend is their sum
  await until(() => Number(pg.psql("SELECT count(*) FROM llmproxy_usage"
    + " WHERE key_alias = 'usage-team' AND status = 200")) >= 5);
  await sleep(500);
  const sum = Number(pg.psql("SELECT sum(cost) FROM llmproxy_usage"
                             + " WHERE key_alias = 'usage-team'"));
  assert.ok(Math.abs(dbSpend() - sum) < 1e-9, `${dbSpend()} vs ${sum}`);

  // the next answer's key spend is the database's plus its own cost: what
  // was pending in the zone was settled when its records were written
  const { response } = await sdk(key).chat.completions.create({
    model: 'priced', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  const spend = Number(response.headers.get('x-llmproxy-key-spend'));
  assert.ok(Math.abs(spend - (sum + COST)) < 1e-6,
            `key spend ${spend}, database ${sum} + ${COST}`);

  const info = JSON.parse(gw.ctl(['key', 'info', 'usage-team', '--json'])
                            .stdout);
  assert.ok(Number(info.spend) >= sum - 1e-9);
});

test('/metrics and llmproxyctl usage show the same tokens and cost',
async () => {
  // the answered requests /metrics counted, all of which have a record
  const metrics = await (await fetch(gw.url + '/metrics')).text();
  const line = (name, extra) => metrics.split('\n').find((l) =>
    l.startsWith(name + '{') && l.includes('key="usage-team"')
    && l.includes(extra));
  const n = Number(line('llmproxy_requests_total', 'status="2xx"')
                   .split(' ').pop());
  assert.ok(n >= 6, metrics);
  await until(() => Number(pg.psql("SELECT count(*) FROM llmproxy_usage"
    + " WHERE key_alias = 'usage-team' AND status = 200")) === n);
  const prompt = line('llmproxy_tokens_total', 'type="prompt"');
  assert.ok(prompt, metrics);
  assert.strictEqual(Number(prompt.split(' ').pop()), n * PROMPT);
  const cost = line('llmproxy_cost_usd_total', 'model="priced"');
  assert.ok(Math.abs(Number(cost.split(' ').pop()) - n * COST) < 1e-6, cost);

  let r = gw.ctl(['usage', '--by', 'key', '--json']);
  assert.strictEqual(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.strictEqual(report.by, 'key');
  const row = report.rows.find((x) => x.key === 'usage-team');
  assert.ok(row, r.stdout);
  assert.strictEqual(row.prompt_tokens, n * PROMPT);
  assert.strictEqual(row.completion_tokens, n * COMPLETION);
  assert.ok(Math.abs(row.cost - n * COST) < 1e-9);
  assert.strictEqual(row.errors, 1);                 // the 404
  assert.ok(report.total.requests >= row.requests);

  r = gw.ctl(['usage', '--since', '1h', '--by', 'model']);
  assert.strictEqual(r.status, 0, r.stderr);
  assert.match(r.stdout, /^MODEL +REQUESTS/);
  assert.match(r.stdout, /\npriced +\d+ +\d+ +\d+/);
  assert.match(r.stdout, /\nTOTAL +\d+/);

  r = gw.ctl(['usage', '--by', 'day', '--json']);
  assert.strictEqual(r.status, 0, r.stderr);
  assert.match(JSON.parse(r.stdout).rows[0].day, /^\d{4}-\d\d-\d\d$/);

  r = gw.ctl(['usage', '--by', 'colour']);
  assert.strictEqual(r.status, 1);
  assert.match(r.stderr, /--by: expected model, key, day or deployment/);
});

test('a budget period that ends starts the next one with no spend, in '
     + 'the zone and in the database', async () => {
  const r = gw.ctl(['key', 'create', '--alias', 'usage-budget',
                    '--max-budget', String(COST * 1.5),
                    '--budget-duration', '3s']);
  assert.strictEqual(r.status, 0, r.stderr);
  const k = r.stdout.trim();
  await until(async () => (await status(k)) === 200);
  assert.strictEqual(await status(k), 200);          // 2 x COST > budget
  assert.strictEqual(await status(k), 429);
  await until(async () => (await status(k)) === 200, 6000);
  // the database's spend was reset too: only what came after counts
  await sleep(500);
  const spend = Number(pg.psql("SELECT spend FROM llmproxy_keys"
                               + " WHERE alias = 'usage-budget'"));
  assert.ok(spend <= COST * 1.01, `spend ${spend} after the reset`);
  assert.strictEqual(pg.psql("SELECT budget_reset_at > now() FROM"
                             + " llmproxy_keys WHERE alias = 'usage-budget'"),
                     't');
});

// sends requests one after another (4 at a time) until stop() is called;
// resolves to the request ids the gateway answered 200.  The SDK retries
// as it does by default: a keepalive connection an old worker closes at
// reload is retried on a new one.
function traffic() {
  const client = new OpenAI({ baseURL: gw.baseURL, apiKey: key });
  const ids = [];
  let running = true, errors = 0;
  const worker = async () => {
    while (running) {
      try {
        const { response } = await client.chat.completions.create({
          model: 'priced', messages: [{ role: 'user', content: 'x' }] })
          .withResponse();
        ids.push(response.headers.get('x-llmproxy-request-id'));
      } catch (e) { errors++; }
    }
  };
  const all = Promise.all([worker(), worker(), worker(), worker()]);
  return { ids, stop: async () => { running = false; await all;
                                    return errors; } };
}

const pgCtl = (what) => new Promise((resolve, reject) => {
  const data = path.join(pg.dir, 'data');
  const args = what === 'stop' ? ['stop', data]
                               : ['start', data, String(pg.port)];
  execFile('bash', [path.join(ROOT, 'scripts', 'pg.sh'), ...args],
           (err) => err ? reject(err) : resolve());
});

test('PostgreSQL stopped mid-traffic: every record arrives once it is back',
async () => {
  const spendBefore = dbSpend();
  const t = traffic();
  await sleep(700);
  await pgCtl('stop');
  await sleep(2500);                 // the gateway keeps answering meanwhile
  const during = t.ids.length;
  await pgCtl('start');
  await sleep(700);
  const errors = await t.stop();
  assert.strictEqual(errors, 0);
  assert.ok(t.ids.length > during && during > 10, `${during}/${t.ids.length}`);

  // spill files were used, and are gone once replayed
  await until(() => recordCount(t.ids) === t.ids.length, 20000);
  assert.match(gw.errorLog(), /usage records cannot be written/);
  await until(() => fs.readdirSync(path.join(gw.dir, 'state'))
    .filter((f) => f.startsWith('usage-')).length === 0);

  // each record counted once in the key's spend
  await sleep(300);
  const added = dbSpend() - spendBefore;
  assert.ok(Math.abs(added - t.ids.length * COST) < 1e-6,
            `${added} vs ${t.ids.length} x ${COST}`);
});

// a spill file as the gateway writes it (binary), or as it wrote it before
// the token kinds (19 columns)
function binarySpill(ids, hash, cost, old = false) {
  return spillFile(ids.map((id) => ({ id, hash, alias: 'usage-team',
    model: 'priced', deployment: 'p/priced', prompt: 1, completion: 1,
    total: 2, cost, latency: 3, ttfb: 1, attempts: 1 })), { old });
}

// the text format of COPY, as spill files of an earlier version hold it
function textSpill(ids, hash, cost) {
  const ts = new Date().toISOString().replace('T', ' ').replace('Z', '+00');
  return ids.map((id) => [id, ts, hash, 'usage-team', 'priced',
    'p/priced', 'openai', 'chat/completions', 'f', 200, 1, 1, 2, String(cost),
    3, 1, 1, 0, '\\N'].join('\t') + '\n').join('');
}

for (const [format, make] of [['binary', binarySpill], ['text', textSpill],
  ['binary, 19 columns', (ids, hash, cost) => binarySpill(ids, hash, cost,
                                                         true)]]) {
  test(`a spill file (${format}) replayed twice counts once`, async () => {
    const crypto = require('node:crypto');
    const hash = crypto.createHash('sha256').update(key).digest('hex');
    const ids = [crypto.randomUUID(), crypto.randomUUID()];
    const data = make(ids, hash, 0.5);
    const file = path.join(gw.dir, 'state',
                           `usage-${crypto.randomUUID()}.copy`);
    const put = () => {
      fs.writeFileSync(file + '.tmp', data);
      fs.chownSync(file + '.tmp', 65534, 65534);       // the workers' user
      fs.renameSync(file + '.tmp', file);
    };
    const before = dbSpend();
    put();
    await until(() => recordCount(ids) === 2 && !fs.existsSync(file));
    await until(() => Math.abs(dbSpend() - before - 1) < 1e-9);
    assert.match(record(ids[0]), /^usage-team\|priced\|p\/priced\|openai\|chat\/completions\|f\|200\|1\|1\|2\|0\.5\|1\|0\|\|t\|t$/);
    put();                                  // the same batch, again
    await until(() => !fs.existsSync(file));
    await sleep(300);
    assert.strictEqual(recordCount(ids), 2);
    assert.ok(Math.abs(dbSpend() - before - 1) < 1e-9, String(dbSpend()));
    assert.deepStrictEqual(fs.readdirSync(path.join(gw.dir, 'state'))
      .filter((f) => f.endsWith('.bad')), []);
  });
}

test('a model name with bytes PostgreSQL refuses: its record arrives, '
     + 'and the others of its batch', async () => {
  const send = async (body) => {
    const res = await fetch(gw.baseURL + '/chat/completions', {
      method: 'POST',
      headers: { authorization: 'Bearer ' + key,
                 'content-type': 'application/json' },
      body });
    await res.arrayBuffer();
    return res;
  };
  // invalid UTF-8 (a lone \xff, a cut sequence), an escaped NUL, and a
  // valid two-byte character, in one model name: refused since issue 11
  // (one name here, another at the provider), and recorded
  const bad = await send(Buffer.concat([
    Buffer.from('{"model":"bad'), Buffer.from([0xff, 0xe2, 0x82]),
    Buffer.from('\\u0000é","messages":[]}')]));
  assert.strictEqual(bad.status, 400);
  const good = await send(JSON.stringify({ model: 'priced',
    messages: [{ role: 'user', content: 'hi' }] }));
  assert.strictEqual(good.status, 200);
  const ids = [bad, good].map((r) => r.headers.get('x-llmproxy-request-id'));
  await until(() => recordCount(ids) === 2);
  const model = pg.psql('SELECT model FROM llmproxy_usage WHERE request_id'
                        + ` = '${ids[0]}'`);
  assert.match(model, /^bad\?+é$/);
  assert.deepStrictEqual(fs.readdirSync(path.join(gw.dir, 'state'))
    .filter((f) => f.endsWith('.bad')), []);
});

test('nginx reloaded mid-traffic: every record arrives', async () => {
  const t = traffic();
  await sleep(500);
  await gw.reload();
  await sleep(500);
  await gw.reload();
  await sleep(500);
  const errors = await t.stop();
  assert.strictEqual(errors, 0);
  assert.ok(t.ids.length > 20);
  await until(() => recordCount(t.ids) === t.ids.length, 20000);
  assert.strictEqual(recordCount(t.ids, true), new Set(t.ids).size);
});
