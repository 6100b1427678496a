'use strict';
// The usage dashboard (SPEC section 13, issue 18), in a real browser:
// Debian's chromium, headless, driven by puppeteer-core, against a real
// nginx serving /llmproxy/ui/ and a real PostgreSQL holding a known set of
// usage records (inserted directly; the daily totals follow by trigger;
// then packed as the gateways store them).
// The master key sees every key; a virtual key sees only itself, in the
// page and in the endpoints; the numbers shown are the records'; the
// charts are drawn with the expected series; every endpoint refuses a
// missing or wrong key.  Screenshots go to build/artefacts/.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const puppeteer = require('puppeteer-core');
const { startGateway, sleep, raw, ROOT } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock, freePort } = require('../mocks/openai-mock');

const ARTEFACTS = path.join(ROOT, 'build', 'artefacts');
const UI = path.join(ROOT, 'build', 'ui');
const DAY = 86400000;
const XSS_MODEL = '<img src=x onerror="window.__xss=1">';

let pg, gw, mock, browser, uiPort, profile;
const keys = {};            // alias -> {key, hash}
let records = [];

// day offsets from now; hash null: the master key
function rec(who, model, deployment, daysAgo, n, o = {}) {
  for (let i = 0; i < n; i++) {
    records.push({
      hash: who ? keys[who].hash : null, alias: who,
      model, deployment,
      time: new Date(Date.now() - daysAgo * DAY - i * 1000),
      status: o.status || 200, prompt: o.prompt ?? 100,
      completion: o.completion ?? 50, cost: o.cost ?? 0.5,
      latency: Array.isArray(o.latency) ? o.latency[i] : (o.latency || 100),
      error: o.error || null,
    });
  }
}

function seed() {
  records = [];
  rec('team-a', 'gpt-x', 'p/gpt-x', 0, 3, { latency: [120, 180, 900] });
  rec('team-a', 'gpt-x', 'p/gpt-x', 0, 1, { status: 502, cost: 0,
    prompt: 0, completion: 0, latency: 40, error: 'upstream_failed' });
  rec('team-a', 'fast', 'q/fast', 1, 2, { cost: 0.25, latency: 60 });
  rec('team-b', 'gpt-x', 'p/gpt-x', 3, 4, { cost: 1, latency: 2500,
                                            prompt: 1000 });
  rec('team-b', 'gpt-x', null, 0, 1, { status: 429, cost: 0, prompt: 0,
    completion: 0, latency: 2, error: 'rate_limit_exceeded' });
  rec(null, 'fast', 'q/fast', 0, 1, { cost: 0.125, latency: 70 });
  // any key may send any model name: the page shows it as text
  rec('team-b', XSS_MODEL, '<b id="xss">d</b>', 0, 1, { cost: 0.01 });
  rec('team-b', 'old', 'p/old', 10, 1, { cost: 100 });  // outside 7 days

  const q = (s) => s === null || s === undefined ? 'NULL'
    : `'${String(s).replace(/'/g, "''")}'`;
  const rows = records.map((r) => `(gen_random_uuid(), ${q(r.time
    .toISOString())}, ${q(r.hash)}, ${q(r.alias)}, ${q(r.model)},`
    + ` ${q(r.deployment)}, 'openai', 'chat/completions', false,`
    + ` ${r.status}, ${r.prompt}, ${r.completion},`
    + ` ${r.prompt + r.completion}, ${r.cost}, ${r.latency}, NULL, 1, 0,`
    + ` ${q(r.error)})`);
  psqlStdin(`INSERT INTO llmproxy_usage VALUES ${rows.join(',\n')};`);
  // in packs, as the gateways store their records (schema 10)
  psqlStdin("SELECT llmproxy_usage_pack_rows('infinity');");
}

function psqlStdin(sql) {
  const r = spawnSync('psql', [pg.url, '-Atq', '-v', 'ON_ERROR_STOP=1'],
                      { encoding: 'utf8', input: sql });
  if (r.status !== 0) throw new Error('psql: ' + r.stderr);
  return r.stdout.trim();
}

// what the page must show, from the records themselves
function expected(hash, days = 7) {
  const today = new Date().toISOString().slice(0, 10);
  const since = new Date(Date.parse(today) - (days - 1) * DAY);
  const rs = records.filter((r) => r.time >= since
    && (hash === undefined || r.hash === hash));
  const sum = (f, list = rs) => list.reduce((a, r) => a + f(r), 0);
  const by = (f) => {
    const m = new Map();
    for (const r of rs) {
      const k = f(r);
      m.set(k, [...(m.get(k) || []), r]);
    }
    return m;
  };
  return {
    rs,
    requests: rs.length,
    errors: rs.filter((r) => r.status >= 400).length,
    cost: sum((r) => r.cost),
    prompt: sum((r) => r.prompt),
    completion: sum((r) => r.completion),
    models: by((r) => r.model),
    keys: by((r) => r.alias || '(master key)'),
    deployments: by((r) => r.model + '|' + (r.deployment || '')),
  };
}

const close = (a, b, what) => assert.ok(Math.abs(Number(a) - b) < 1e-9,
  `${what}: ${a} != ${b}`);

before(async () => {
  pg = await startPostgres();
  mock = await createMock({ name: 'cool', mode: 'fail429',
                            retryAfter: 300 });
  uiPort = await freePort();
  // a second server of the same nginx serves the page and its data, as
  // configs/nginx.conf does
  gw = await startGateway({
    database: pg.url,
    workers: 2,
    // records come from seed() only: the request that puts a deployment
    // into cooldown leaves none
    httpExtra: `llmproxy_usage_records off;
    server {
        listen 127.0.0.1:${uiPort};
        location / { llmproxy; }
        location /llmproxy/ui/ {
            alias ${UI}/;
            types { text/html html; text/css css; application/javascript js; }
            default_type application/octet-stream;
            add_header X-Content-Type-Options nosniff;
            add_header Content-Security-Policy "default-src 'self'; frame-ancestors 'none'";
            add_header Referrer-Policy no-referrer;
        }
        location /llmproxy/ui/api/ { llmproxy; }
    }`,
    config: {
      providers: {
        cool: { api_base: mock.url, interfaces: ['openai'],
                models: { 'cool-model': {} } },
      },
      settings: { num_retries: 0, cooldown_seconds: 300 },
    },
  });
  for (const [alias, extra] of [['team-a', ['--max-budget', '10',
                                            '--budget-duration', '30d',
                                            '--rpm', '60']],
                                ['team-b', []]]) {
    const r = gw.ctl(['key', 'create', '--alias', alias, ...extra]);
    assert.strictEqual(r.status, 0, r.stderr);
    const key = r.stdout.trim();
    keys[alias] = { key, hash: crypto.createHash('sha256').update(key)
      .digest('hex') };
  }
  seed();
  psqlStdin(`UPDATE llmproxy_keys SET spend = 1.75
             WHERE alias = 'team-a';`);

  // the keys reach the zone within a poll
  for (let i = 0; i < 100; i++) {
    if ((await api('live', keys['team-b'].key)).status === 200) break;
    await sleep(100);
  }

  // one deployment in cooldown: its provider answered 429
  const r = await raw(gw.url + '/v1/chat/completions', {
    method: 'POST',
    headers: { authorization: 'Bearer ' + gw.masterKey,
               'content-type': 'application/json' },
    body: JSON.stringify({ model: 'cool-model',
                           messages: [{ role: 'user', content: 'hi' }] }) });
  assert.ok(r.status >= 400, 'the 429 provider failed: ' + r.status);

  fs.mkdirSync(ARTEFACTS, { recursive: true });
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'llmproxy-chromium-'));
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
           '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync',
           `--user-data-dir=${profile}`],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
  const problems = gw ? gw.problems() : [];
  if (gw) await gw.stop();
  if (mock) await mock.close();
  if (pg) pg.destroy();
  assert.deepStrictEqual(problems, []);
});

const uiURL = () => `http://127.0.0.1:${uiPort}/llmproxy/ui/`;

function api(name, key, headers = {}) {
  return raw(`http://127.0.0.1:${uiPort}/llmproxy/ui/api/${name}`, {
    headers: key ? { authorization: 'Bearer ' + key, ...headers }
                 : headers });
}

test('every endpoint refuses a missing or wrong key', async () => {
  for (const name of ['summary', 'summary?days=30', 'live', 'nothing']) {
    for (const [what, res] of [
      ['no key', await api(name)],
      ['wrong key', await api(name, 'sk-wrong-' + 'x'.repeat(40))],
      ['master key plus one', await api(name, gw.masterKey + 'x')],
      ['x-api-key wrong', await api(name, null, { 'x-api-key': 'sk-no' })],
    ]) {
      assert.strictEqual(res.status, 401, `${name}, ${what}: ${res.text}`);
      assert.ok(!/"since"|"cooldowns"|team-/.test(res.text), res.text);
    }
  }
  // a revoked key is refused too
  const r = gw.ctl(['key', 'create', '--alias', 'gone']);
  const gone = r.stdout.trim();
  assert.strictEqual(gw.ctl(['key', 'revoke', 'gone']).status, 0);
  await sleep(1200);
  assert.strictEqual((await api('summary', gone)).status, 401);
  // the page itself needs no key; its data does
  const page = await raw(uiURL());
  assert.strictEqual(page.status, 200);
  assert.match(page.text, /llmproxy usage/);
  assert.strictEqual((await api('summary?days=0', gw.masterKey)).status,
                     400);
  // a database without migration 5 says what to do
  psqlStdin('ALTER TABLE llmproxy_usage_daily RENAME TO daily_away;');
  const old = await api('summary', gw.masterKey);
  psqlStdin('ALTER TABLE daily_away RENAME TO llmproxy_usage_daily;');
  assert.strictEqual(old.status, 503, old.text);
  assert.match(old.body.error.message, /llmproxyctl migrate/);
  assert.strictEqual((await raw(uiURL() + 'api/summary', { method: 'POST',
    headers: { authorization: 'Bearer ' + gw.masterKey } })).status, 405);
});

test('the master key: every key\'s usage, from the daily totals',
async () => {
  const s = (await api('summary?days=7', gw.masterKey)).body;
  const e = expected(undefined);
  assert.strictEqual(s.totals.requests, e.requests);
  assert.strictEqual(s.totals.errors, e.errors);
  close(s.totals.cost, e.cost, 'cost');
  assert.strictEqual(s.totals.prompt_tokens, e.prompt);
  assert.strictEqual(s.totals.completion_tokens, e.completion);
  assert.strictEqual(s.days.length, 7);
  assert.deepStrictEqual(s.keys.map((k) => k.name).sort(),
                         [...e.keys.keys()].sort());
  for (const k of s.keys) {
    close(k.cost, e.keys.get(k.name).reduce((a, r) => a + r.cost, 0),
          k.name);
  }
  // the latency of one deployment: 120, 180, 900 and 40 ms
  const l = s.latency.find((x) => x.deployment === 'p/gpt-x'
                                  && x.requests === 8);
  assert.ok(l, JSON.stringify(s.latency));
  assert.strictEqual(l.errors, 1);
  assert.ok(l.p95_ms >= 2000 && l.p95_ms <= 3000, 'p95 ' + l.p95_ms);
  // the budget of team-a and when it resets
  const b = s.budgets.find((x) => x.name === 'team-a');
  assert.strictEqual(b.max_budget, 10);
  close(b.spend, 1.75, 'spend');
  assert.ok(Date.parse(b.budget_reset_at) > Date.now() + 29 * DAY);
  assert.deepStrictEqual(s.errors.map((x) => x.error).sort(),
                         ['rate_limit_exceeded', 'upstream_failed']);
  // the cooldown, from the zone
  const live = (await api('live', gw.masterKey)).body;
  assert.strictEqual(live.master, true);
  assert.ok(live.cooldowns.some((c) => c.deployment === 'cool/cool-model'),
            JSON.stringify(live));
  // a whole year: the record of 10 days ago counts as well
  const y = (await api('summary?days=365', gw.masterKey)).body;
  assert.strictEqual(y.totals.requests, expected(undefined, 365).requests);
  assert.strictEqual(y.days.length, 365);
});

test('a virtual key sees only its own usage, budget and errors',
async () => {
  const res = await api('summary?days=30', keys['team-a'].key);
  assert.strictEqual(res.status, 200, res.text);
  const s = res.body;
  const e = expected(keys['team-a'].hash, 30);
  assert.strictEqual(s.totals.requests, e.requests);
  close(s.totals.cost, e.cost, 'cost');
  assert.deepStrictEqual(s.keys.map((k) => k.name), ['team-a']);
  assert.deepStrictEqual(s.budgets.map((k) => k.name), ['team-a']);
  assert.deepStrictEqual(s.errors.map((x) => x.error), ['upstream_failed']);
  assert.ok(!res.text.includes('team-b') && !res.text.includes('master')
            && !res.text.includes(keys['team-b'].hash.slice(0, 16)),
            res.text);
  const live = (await api('live', keys['team-a'].key)).body;
  assert.strictEqual(live.master, false);
  assert.strictEqual(live.key, 'team-a');
  assert.deepStrictEqual(live.cooldowns, []);
  // a key over its budget still sees what it spent
  psqlStdin("UPDATE llmproxy_keys SET spend = 12 WHERE alias = 'team-a';");
  await sleep(1200);
  const over = await api('summary', keys['team-a'].key);
  assert.strictEqual(over.status, 200, over.text);
  close(over.body.budgets[0].spend, 12, 'spend over budget');
  psqlStdin("UPDATE llmproxy_keys SET spend = 1.75 WHERE alias = 'team-a';");
});

async function signIn(page, key) {
  const t0 = Date.now();
  await page.goto(uiURL(), { waitUntil: 'load' });
  await page.waitForSelector('#key', { visible: true });
  await page.type('#key', key);
  await Promise.all([
    page.click('#signin button[type=submit]'),
    page.waitForSelector('body[data-state=ready]', { timeout: 10000 }),
  ]);
  return Date.now() - t0;
}

// what the page shows: totals, table cells (raw values) and the charts
function readPage(page) {
  return page.evaluate(() => {
    const v = (id) => document.getElementById(id).dataset.value;
    const rows = (id) => [...document.querySelectorAll(`#${id} tbody tr`)]
      .filter((tr) => !tr.classList.contains('empty'))
      .map((tr) => [...tr.cells].map((td) => td.dataset.value));
    const chart = (id) => {
      const el = document.getElementById(id);
      const c = el.querySelector('canvas');
      return { series: JSON.parse(el.dataset.series || '[]'),
               canvas: c ? [c.width, c.height] : null,
               box: c ? [c.getBoundingClientRect().width,
                         c.getBoundingClientRect().height] : null,
               legend: [...el.querySelectorAll('.u-legend .u-series')]
                 .map((s) => s.textContent) };
    };
    return {
      cost: v('t-cost'), requests: v('t-requests'), errors: v('t-errors'),
      tokens: v('t-tokens'), costText: document.getElementById('t-cost')
        .textContent,
      who: document.getElementById('who').textContent,
      models: rows('models'), keys: rows('keys'), budgets: rows('budgets'),
      latency: rows('latency'), errorRows: rows('errors'),
      cooldowns: rows('cooldowns'),
      cooldownShown: !document.getElementById('cooldown-box').hidden,
      // each day's stack: its first series is drawn as the sum of all
      stacks: window.llmproxyDashboard.charts['chart-model']
        ? [...window.llmproxyDashboard.charts['chart-model'].data[1]]
        : null,
      charts: { model: chart('chart-model'), key: chart('chart-key'),
                latency: chart('chart-latency') },
      text: document.body.innerText,
      url: location.href,
      stored: Object.keys(sessionStorage),
      scrollWidth: document.documentElement.scrollWidth,
    };
  });
}

function assertDrawn(c, names, what) {
  assert.deepStrictEqual([...c.series].sort(), [...names].sort(), what);
  assert.ok(c.canvas && c.canvas[0] > 200 && c.canvas[1] > 100,
            `${what}: canvas ${c.canvas}`);
  assert.ok(c.box[0] > 200 && c.box[1] > 100, `${what}: box ${c.box}`);
}

test('in the browser, the master key sees every key, charts drawn',
async () => {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 1000 });
  const ms = await signIn(page, gw.masterKey);
  const p = await readPage(page);
  const e = expected(undefined);
  process.stdout.write(`# page load and sign-in: ${ms} ms\n`);

  assert.match(p.who, /master key/);
  close(p.cost, e.cost, 'total cost');
  assert.strictEqual(p.costText, '$' + e.cost.toFixed(4));
  assert.strictEqual(Number(p.requests), e.requests);
  assert.strictEqual(Number(p.errors), e.errors);
  assert.strictEqual(p.tokens, `${e.prompt}/${e.completion}`);
  assert.deepStrictEqual(p.keys.map((r) => r[0]).sort(),
                         [...e.keys.keys()].sort());
  for (const [name, rs] of e.models) {
    const row = p.models.find((r) => r[0] === name);
    assert.ok(row, name);
    assert.strictEqual(Number(row[1]), rs.length, name);
    close(row[4], rs.reduce((a, r) => a + r.cost, 0), name);
  }
  assert.strictEqual(p.latency.length, e.deployments.size);
  assert.strictEqual(p.errorRows.length, 2);
  assert.ok(p.cooldownShown);
  assert.deepStrictEqual(p.cooldowns.map((r) => r[0]), ['cool/cool-model']);
  const budget = p.budgets.find((r) => r[0] === 'team-a');
  close(budget[1], 1.75, 'budget spend');
  close(budget[3], 0.175, 'budget used');

  assertDrawn(p.charts.model, [...e.models.keys()], 'chart by model');
  assertDrawn(p.charts.key, [...e.keys.keys()], 'chart by key');
  assertDrawn(p.charts.latency, ['p50', 'p95'], 'latency chart');
  assert.ok(p.charts.model.legend.some((l) => l.includes('gpt-x')));
  const perDay = new Array(7).fill(0);
  const today = Date.parse(new Date().toISOString().slice(0, 10));
  for (const r of e.rs) {
    const day = Date.parse(r.time.toISOString().slice(0, 10));
    perDay[6 - Math.round((today - day) / DAY)] += r.cost;
  }
  p.stacks.forEach((v, i) => close(v, perDay[i], 'spend of day ' + i));

  // names are text, never markup
  assert.ok(p.text.includes(XSS_MODEL));
  assert.deepStrictEqual(await page.evaluate(() => [
    window.__xss === undefined,
    document.querySelectorAll('#xss, main img').length]), [true, 0]);

  // the key is in this tab's session only, never in the URL
  assert.deepStrictEqual(p.stored, ['llmproxy.key']);
  assert.ok(!p.url.includes(gw.masterKey));
  await page.screenshot({ path: path.join(ARTEFACTS,
                                          'dashboard-master.png'),
                          fullPage: true });

  // the requests view and another period redraw the same series
  await page.select('#metric', 'requests');
  await page.select('#period', '365');
  await page.waitForFunction((n) => document.getElementById('t-requests')
    .dataset.value === String(n), {}, expected(undefined, 365).requests);
  const y = await readPage(page);
  assertDrawn(y.charts.model, [...expected(undefined, 365).models.keys()],
              'a year by model');

  // a phone's width: one column, nothing wider than the screen
  await page.setViewport({ width: 390, height: 844 });
  await sleep(300);
  const phone = await readPage(page);
  assert.ok(phone.scrollWidth <= 390, 'scroll width ' + phone.scrollWidth);
  assert.ok(phone.charts.model.box[0] <= 390);
  await page.screenshot({ path: path.join(ARTEFACTS, 'dashboard-phone.png'),
                          fullPage: true });
  await page.close();
});

test('in the browser, a virtual key sees itself only', async () => {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 1000 });
  await signIn(page, keys['team-a'].key);
  const p = await readPage(page);
  const e = expected(keys['team-a'].hash);
  assert.match(p.who, /team-a/);
  close(p.cost, e.cost, 'cost');
  assert.strictEqual(Number(p.requests), e.requests);
  assert.deepStrictEqual(p.keys.map((r) => r[0]), ['team-a']);
  assert.deepStrictEqual(p.budgets.map((r) => r[0]), ['team-a']);
  assert.deepStrictEqual(p.errorRows.map((r) => r[5]), ['upstream_failed']);
  assert.ok(!p.cooldownShown);
  assert.ok(!/team-b|master key/.test(p.text), p.text);
  assertDrawn(p.charts.key, ['team-a'], 'chart by key');
  assertDrawn(p.charts.model, [...e.models.keys()], 'chart by model');
  await page.screenshot({ path: path.join(ARTEFACTS,
                                          'dashboard-virtual-key.png'),
                          fullPage: true });

  // a wrong key gets the sign-in form back, with the reason
  await page.click('#signout');
  await page.type('#key', 'sk-not-a-key');
  await page.click('#signin button[type=submit]');
  await page.waitForFunction(() => document.body.dataset.state
    === 'signed-out' && document.getElementById('signin-error').textContent);
  const msg = await page.$eval('#signin-error', (el) => el.textContent);
  assert.match(msg, /invalid API key/);
  assert.deepStrictEqual(await page.evaluate(() =>
    Object.keys(sessionStorage)), []);
  await page.close();
});

test('records the gateway writes reach the daily totals in their batch',
async () => {
  const ok = await createMock({ name: 'ok',
    usage: { prompt_tokens: 1000, completion_tokens: 100 } });
  const gw2 = await startGateway({
    database: pg.url, workers: 2, httpExtra: 'llmproxy_usage_flush 100ms;',
    config: { providers: { ok: { api_base: ok.url, interfaces: ['openai'],
      models: { 'priced-model': { input_cost_per_million: 3,
                                  output_cost_per_million: 15 } } } } },
  });
  try {
    for (let i = 0; i < 100; i++) {
      const r = await raw(gw2.url + '/llmproxy/ui/api/live', {
        headers: { authorization: 'Bearer ' + keys['team-b'].key } });
      if (r.status === 200) break;
      await sleep(100);
    }
    for (let i = 0; i < 5; i++) {
      const r = await raw(gw2.url + '/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: 'Bearer ' + keys['team-b'].key,
                   'content-type': 'application/json' },
        body: JSON.stringify({ model: 'priced-model',
          messages: [{ role: 'user', content: 'hi' }] }) });
      assert.strictEqual(r.status, 200, r.text);
    }
    let row = '';
    for (let i = 0; i < 100 && row !== '5|5'; i++) {
      await sleep(100);
      row = pg.psql("SELECT (SELECT count(*) FROM llmproxy_usage WHERE"
        + " model = 'priced-model') || '|' || (SELECT coalesce(sum(requests),"
        + " 0) FROM llmproxy_usage_daily WHERE model = 'priced-model')");
    }
    assert.strictEqual(row, '5|5', 'records | daily requests');
    const s = (await api('summary?days=1', keys['team-b'].key)).body;
    const m = s.models.find((x) => x.name === 'priced-model');
    close(m.cost, 5 * (1000 * 3 + 100 * 15) / 1e6, 'cost');
    assert.strictEqual(m.prompt_tokens, 5000);
    assert.ok(s.latency.some((l) => l.deployment === 'ok/priced-model'));
  } finally {
    await gw2.stop();
    await ok.close();
  }
});

// a pack of three days ago no reader can decode: an error record, every
// field right but its time, so that a reader that decodes it fails
// whichever field it tests first
function brokenPack() {
  const line = ['0'.repeat(32), 'not-a-number', '', '', '1', '', '1', '1',
                '0', '502', '0', '0', '0', '0', '1', '', '1', '0', '', '0',
                '0', '0', '0', '0', '0'].join('\t');
  return `INSERT INTO llmproxy_usage_packs VALUES (now() - interval
    '3 days', now() - interval '3 days', 1, '{broken}', '${line}');`;
}

test('reports read only the records of their period: a pack of three '
     + 'days ago is not decoded', async () => {
  // a pack no reader can decode, of three days ago: whole days of a
  // report come from the daily totals, the recent errors from the last
  // day's records; a query on the view llmproxy_usage would decode it and
  // fail
  psqlStdin(brokenPack());
  try {
    assert.throws(() => pg.psql('SELECT count(*) FROM llmproxy_usage'),
                  /invalid input syntax/);
    const since = Date.now() - 7 * DAY;
    const rs = records.filter((r) => r.time >= since);
    const u = gw.ctl(['usage', '--since', '7d', '--by', 'model',
                      '--json']);
    assert.strictEqual(u.status, 0, u.stderr);
    // the seeded records, by model (the test before added priced-model)
    const got = JSON.parse(u.stdout).rows
      .filter((x) => x.model !== 'priced-model');
    const want = new Map();
    for (const r of rs) {
      want.set(r.model, [...(want.get(r.model) || []), r]);
    }
    assert.deepStrictEqual(got.map((x) => x.model).sort(),
                           [...want.keys()].sort());
    for (const x of got) {
      const list = want.get(x.model);
      assert.strictEqual(x.requests, list.length, x.model);
      close(x.cost, list.reduce((a, r) => a + r.cost, 0), x.model);
    }
    // the dashboard's recent errors, for the master key and a virtual one
    const all = await api('summary?days=7', gw.masterKey);
    assert.strictEqual(all.status, 200, all.text);
    assert.deepStrictEqual(all.body.errors.map((x) => x.error).sort(),
                           ['rate_limit_exceeded', 'upstream_failed']);
    const mine = await api('summary?days=30', keys['team-a'].key);
    assert.strictEqual(mine.status, 200, mine.text);
    assert.deepStrictEqual(mine.body.errors.map((x) => x.error),
                           ['upstream_failed']);
  } finally {
    psqlStdin("DELETE FROM llmproxy_usage_packs WHERE strings = '{broken}';");
  }
});

test('a gateway on a database of schema 9 (no packs yet): the recent '
     + 'errors from its table llmproxy_usage; migrated to 10 while it runs, '
     + 'through llmproxy_usage_between()', async () => {
  // migrations 1 to 9 as llmproxyctl applied them before schema 10;
  // llmproxyctl itself would migrate the database to 10
  const pg9 = await startPostgres();
  let gw9;
  try {
    const dir = path.join(ROOT, 'configs', 'schema');
    const files = fs.readdirSync(dir).filter((f) => /^00\d_.*\.sql$/.test(f))
      .sort();
    assert.strictEqual(files.length, 9);
    for (const f of files) {
      const r = spawnSync('psql', [pg9.url, '-Atq', '-v', 'ON_ERROR_STOP=1',
                                   '-f', path.join(dir, f)],
                          { encoding: 'utf8' });
      assert.strictEqual(r.status, 0, f + ': ' + r.stderr);
    }
    pg9.psql(`CREATE TABLE llmproxy_schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now());
      INSERT INTO llmproxy_schema_migrations (version, name)
      VALUES ${files.map((f) => `(${parseInt(f, 10)}, `
                          + `'${f.replace(/\.sql$/, '')}')`).join(', ')}`);
    assert.strictEqual(pg9.psql("SELECT relkind FROM pg_class WHERE relname"
                                + " = 'llmproxy_usage'"), 'r');
    pg9.psql(`INSERT INTO llmproxy_usage (request_id, created_at, model,
        interface, endpoint, stream, status, prompt_tokens,
        completion_tokens, total_tokens, cost, latency_ms, attempts,
        fallbacks, error)
      VALUES (gen_random_uuid(), now() - interval '1 hour', 'm9', 'openai',
        'chat/completions', false, 502, 0, 0, 0, 0, 5, 1, 0, 'from_nine'),
       (gen_random_uuid(), now() - interval '2 days', 'm9', 'openai',
        'chat/completions', false, 502, 0, 0, 0, 0, 5, 1, 0, 'too_old')`);
    gw9 = await startGateway({ database: pg9.url, workers: 1,
                               httpExtra: 'llmproxy_usage_records off;' });
    const r = await raw(gw9.url + '/llmproxy/ui/api/summary?days=7', {
      headers: { authorization: 'Bearer ' + gw9.masterKey } });
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(r.body.errors.map((x) => x.error),
                           ['from_nine']);
    assert.strictEqual(r.body.totals.requests, 2);
    // migrated to schema 10 while the gateway runs: its connections find
    // llmproxy_usage_between() and no longer decode every pack (an old
    // one that cannot be decoded would fail the summary)
    const m = spawnSync(path.join(ROOT, 'build', 'llmproxyctl'),
                        ['migrate'], { encoding: 'utf8',
                        env: { ...process.env,
                               LLMPROXY_DATABASE_URL: pg9.url } });
    assert.strictEqual(m.status, 0, m.stderr);
    pg9.psql(brokenPack());
    const r10 = await raw(gw9.url + '/llmproxy/ui/api/summary?days=7', {
      headers: { authorization: 'Bearer ' + gw9.masterKey } });
    assert.strictEqual(r10.status, 200, r10.text);
    assert.deepStrictEqual(r10.body.errors.map((x) => x.error),
                           ['from_nine']);
    assert.deepStrictEqual(gw9.problems(), []);
  } finally {
    if (gw9) await gw9.stop();
    pg9.destroy();
  }
});
