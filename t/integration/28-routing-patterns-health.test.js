'use strict';
// Model patterns in a provider's models ("*", "claude-*"; SPEC §4), the
// bridge's own model list in /v1/models, per-deployment health checks,
// upstream failures labelled with the deployment that failed, and refused
// keys logged below [error].  Real nginx, real PostgreSQL, the openai SDK.

const http = require('node:http');
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const OpenAI = require('openai');
const { startGateway, sleep, until } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock } = require('../mocks/openai-mock');
const { postJSON } = require('../lib/http');

const BRIDGE_KEY = 'sk-bridge-secret-0123456789abcdef';
// llmproxyctl stores the bridge's key encrypted; the gateway decrypts it
process.env.LLMPROXY_SALT_KEY = 'ab'.repeat(32);

// A bridge such as CLIProxyAPI: any model name, its own list at
// GET /v1/models (behind its key); names with "fail" answer 500.
function startBridge(name, models) {
  const st = { name, requests: [], models, down: false };
  const server = http.createServer((req, res) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      let body = {};
      try { body = JSON.parse(Buffer.concat(parts).toString('utf8')); }
      catch (e) { /* GET */ }
      st.requests.push({ method: req.method, url: req.url,
                         headers: req.headers, body });
      const send = (status, obj) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(obj));
      };
      if (req.headers.authorization !== 'Bearer ' + BRIDGE_KEY) {
        return send(401, { error: { message: 'bad key' } });
      }
      if (st.down) return send(500, { error: { message: 'account expired' } });
      if (req.method === 'GET' && req.url === '/v1/models') {
        return send(200, { object: 'list', data: st.models.map((id) => ({
          id, object: 'model', created: 1, owned_by: 'bridge' })) });
      }
      if (req.method === 'POST' && req.url === '/v1/chat/completions') {
        if (/fail/.test(body.model)) {
          return send(500, { error: { message: 'no such account' } });
        }
        return send(200, { id: 'c1', object: 'chat.completion', created: 1,
          model: body.model, choices: [{ index: 0, finish_reason: 'stop',
            message: { role: 'assistant',
                       content: `${name} serves ${body.model}` } }],
          usage: { prompt_tokens: 2, completion_tokens: 3,
                   total_tokens: 5 } });
      }
      return send(404, { error: { message: 'no route' } });
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({ st, url: `http://127.0.0.1:${server.address().port}`,
              close: () => new Promise((r) => {
                server.closeAllConnections(); server.close(() => r());
              }) });
  }));
}

let pg, gw, bridge, exact, broken;

const config = () => ({
  providers: {
    bridge: {
      api_base: bridge.url, interfaces: ['openai'], api_key: BRIDGE_KEY,
      access_groups: ['team'],
      models: {
        '*': { input_cost_per_million: 1, output_cost_per_million: 2 },
        'claude-*': { access_groups: ['claude'] },
        'gpt-admin': { access_groups: ['admins'] },
        'gpt-4*': {},      // no prices: the shipped list's, name by name
      },
    },
    exact: { api_base: exact.url, interfaces: ['openai'],
             access_groups: ['team'], models: { 'claude-sonnet-x': {} } },
    broken: { api_base: broken.url, interfaces: ['openai'],
              access_groups: ['team'], models: { 'broken-exact': {} } },
  },
  aliases: { fast: 'claude-fast-1' },
  fallbacks: { 'broken-exact': ['claude-fb-2'],
               'claude-fail-1': ['claude-sonnet-x'] },
  settings: { num_retries: 0, allowed_fails: 100 },
});

before(async () => {
  pg = await startPostgres();
  bridge = await startBridge('bridge', ['bridge-model-a', 'claude-bridge-b',
                                        'gpt-admin']);
  exact = await createMock({ name: 'exact' });
  broken = await createMock({ name: 'broken', mode: 'fail500' });
  gw = await startGateway({ database: pg.url, config: config() });
});

after(async () => {
  const problems = gw ? gw.problems() : [];
  if (gw) await gw.stop();
  for (const m of [bridge, exact, broken]) if (m) await m.close();
  if (pg) pg.destroy();
  assert.deepStrictEqual(problems, []);
});

const sdk = (key) => new OpenAI({ baseURL: gw.baseURL, apiKey: key,
                                  maxRetries: 0 });
const chat = (key, model) => sdk(key).chat.completions.create({
  model, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
const post = (key, model) => postJSON(gw.baseURL + '/chat/completions', key,
  { model, messages: [{ role: 'user', content: 'hi' }] });

function createKey(...args) {
  const r = gw.ctl(['key', 'create', ...args]);
  assert.strictEqual(r.status, 0, r.stderr);
  return r.stdout.trim();
}

const lastBody = (m) => m.st.requests[m.st.requests.length - 1].body;

test('"*" passes a model the config does not name to the bridge', async () => {
  const { data, response } = await chat(gw.masterKey, 'brand-new-model-7');
  assert.strictEqual(data.choices[0].message.content,
                     'bridge serves brand-new-model-7');
  assert.strictEqual(lastBody(bridge).model, 'brand-new-model-7');
  assert.strictEqual(response.headers.get('x-llmproxy-model'), 'bridge/*');
  // the pattern's prices apply: 2 * 1 + 3 * 2 per million
  assert.strictEqual(Number(response.headers.get('x-llmproxy-response-cost')),
                     0.000008);

  // a pattern without prices: the shipped price list's for the name
  // (gpt-4.1: 2 and 8 per million), else unpriced (no cost header)
  const listed = await chat(gw.masterKey, 'gpt-4.1');
  assert.strictEqual(listed.response.headers.get('x-llmproxy-model'),
                     'bridge/gpt-4*');
  assert.strictEqual(
    Number(listed.response.headers.get('x-llmproxy-response-cost')),
    0.000028);
  const unlisted = await chat(gw.masterKey, 'gpt-4-brand-new');
  assert.strictEqual(unlisted.response.headers.get('x-llmproxy-model'),
                     'bridge/gpt-4*');
  assert.strictEqual(
    unlisted.response.headers.get('x-llmproxy-response-cost'), null);

  // PROVIDER/NAME through the deployment's pattern "bridge/*"
  const direct = await chat(gw.masterKey, 'bridge/other-new-1');
  assert.strictEqual(lastBody(bridge).model, 'other-new-1');
  assert.strictEqual(direct.data.choices[0].message.content,
                     'bridge serves other-new-1');

  // a pattern itself is not a model, and names that could be read as a
  // path or another model are refused, not passed on
  for (const bad of ['*', 'claude-*', 'a/../b', 'x y', '/lead']) {
    const r = await post(gw.masterKey, bad);
    assert.strictEqual(r.status, 404, bad + ': ' + r.text);
  }
});

test('an exact name wins over "claude-*", which wins over "*"',
     async () => {
  const a = await chat(gw.masterKey, 'claude-sonnet-x');
  assert.strictEqual(a.data.choices[0].message.content, 'hello from exact');
  assert.strictEqual(a.response.headers.get('x-llmproxy-model'),
                     'exact/claude-sonnet-x');

  const b = await chat(gw.masterKey, 'claude-other');
  assert.strictEqual(b.response.headers.get('x-llmproxy-model'),
                     'bridge/claude-*');
  assert.strictEqual(lastBody(bridge).model, 'claude-other');
});

test('access groups of the matching pattern hold for a virtual key',
     async () => {
  const team = createKey('--alias', 'team-key', '--access-groups', 'team');
  const claude = createKey('--alias', 'claude-key', '--access-groups',
                           'claude');
  await until(async () => (await post(team, 'brand-new-1')).status === 200);

  // "*" is the team's; "claude-*" (more specific) is not, although "*"
  // would match "claude-other" too
  assert.strictEqual((await post(team, 'brand-new-1')).status, 200);
  assert.strictEqual((await post(team, 'claude-other')).status, 403);
  assert.strictEqual((await post(team, 'bridge/claude-other')).status, 403);
  assert.strictEqual((await post(claude, 'claude-other')).status, 200);
  assert.strictEqual((await post(claude, 'brand-new-1')).status, 403);

  // the exact admin model: not through a pattern, not by another spelling
  // a lenient bridge would take for it
  // (the log is kept whole: the gateway's own GET /v1/models of the
  // bridge, checked by a later test, may come at any time)
  const seen = bridge.st.requests.length;
  for (const name of ['gpt-admin', 'bridge/gpt-admin']) {
    assert.strictEqual((await post(team, name)).status, 403, name);
  }
  for (const name of ['GPT-Admin', 'models/gpt-admin', 'BRIDGE/gpt-admin']) {
    const r = await post(team, name);
    assert.strictEqual(r.status, 404, name + ': ' + r.text);
  }
  assert.deepStrictEqual(bridge.st.requests.slice(seen)
    .filter((q) => q.method !== 'GET'), []);

  // /v1/models/{id} of a passed-through name follows the same rules
  const one = await fetch(gw.baseURL + '/models/claude-zzz',
                          { headers: { authorization: 'Bearer ' + team } });
  assert.strictEqual(one.status, 404);
  const two = await fetch(gw.baseURL + '/models/claude-zzz',
                          { headers: { authorization: 'Bearer ' + claude } });
  assert.strictEqual(two.status, 200);
  assert.strictEqual((await two.json()).id, 'claude-zzz');
});

test('aliases and fallbacks to names only a pattern matches', async () => {
  const a = await chat(gw.masterKey, 'fast');
  assert.strictEqual(lastBody(bridge).model, 'claude-fast-1');
  assert.strictEqual(a.data.choices[0].message.content,
                     'bridge serves claude-fast-1');

  const b = await chat(gw.masterKey, 'broken-exact');
  assert.strictEqual(b.data.choices[0].message.content,
                     'bridge serves claude-fb-2');
  assert.strictEqual(b.response.headers.get('x-llmproxy-attempted-fallbacks'),
                     '1');

  // a fallback of a patterned name: the bridge fails it, the exact one
  // answers
  const c = await chat(gw.masterKey, 'claude-fail-1');
  assert.strictEqual(c.data.choices[0].message.content, 'hello from exact');
  assert.strictEqual(c.response.headers.get('x-llmproxy-model'),
                     'exact/claude-sonnet-x');
});

test('llmproxyctl refuses a pattern with an upstream name', async () => {
  const cfg = config();
  cfg.providers.bridge.models['gemini-*'] = { model: 'gemini-pro' };
  const r = gw.sync(cfg);
  assert.notStrictEqual(r.status, 0);
  assert.match(r.stderr, /providers\.bridge\.models\.gemini-\*\.model: a pattern/);
  cfg.providers.bridge.models['gemini-*'] = {};
  cfg.aliases.bad = 'nothing matches/..';
  cfg.aliases.many = 'claude-*';
  cfg.fallbacks['claude-*'] = ['*'];      // keyed by a pattern: fine
  const r2 = gw.sync(cfg);
  assert.notStrictEqual(r2.status, 0);
  assert.match(r2.stderr, /aliases\.bad: unknown model/);
  assert.match(r2.stderr, /aliases\.many: "claude-\*" is a pattern/);
  assert.match(r2.stderr, /fallbacks\.claude-\*: "\*" is a pattern/);
  assert.ok(!/fallbacks\.claude-\*: unknown/.test(r2.stderr), r2.stderr);

  const cfg3 = config();
  cfg3.settings.health_check_interval_seconds = 0.5;
  const r3 = gw.sync(cfg3);
  assert.notStrictEqual(r3.status, 0);
  assert.match(r3.stderr, /settings\.health_check_interval_seconds: expected 0 \(off\) or at least 1/);
});

async function metrics() {
  return (await fetch(gw.url + '/metrics')).text();
}

const value = (text, series) => {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line ? Number(line.slice(series.length + 1)) : undefined;
};

test('upstream failures are labelled with the deployment that failed',
     async () => {
  const k = createKey('--alias', 'labels', '--access-groups',
                    'team,claude');
  await until(async () => (await post(k, 'claude-sonnet-x')).status === 200);
  for (let i = 0; i < 3; i++) {
    const r = await post(k, 'broken-exact');
    assert.strictEqual(r.status, 200, r.text);
  }
  const failed = 'llmproxy_upstream_failures_total{model="broken-exact",'
    + 'deployment="broken/broken-exact",key="labels"}';
  const answered = 'llmproxy_upstream_failures_total{model="broken-exact",'
    + 'deployment="bridge/claude-*",key="labels"}';
  const text = await until(async () => {
    const t = await metrics();
    return value(t, failed) === 3 ? t : null;
  });
  assert.strictEqual(value(text, answered), 0);
});

test('refused keys are logged at info, not error', async () => {
  const before = gw.errorLog().length;
  const bad = 'sk-' + 'x'.repeat(40);
  for (let i = 0; i < 3; i++) {
    assert.strictEqual((await post(bad, 'claude-sonnet-x')).status, 401);
  }
  await sleep(100);
  const lines = gw.errorLog().slice(before).split('\n')
    .filter((l) => /refused|invalid API key/.test(l));
  assert.ok(lines.length >= 3, 'refused keys logged: ' + lines.join('\n'));
  for (const l of lines) {
    assert.match(l, /\[info\]/);
    assert.ok(!l.includes(bad), 'the key is not logged');
  }
});

const listModels = async (key) => {
  const r = await fetch(gw.baseURL + '/models',
                        { headers: { authorization: 'Bearer ' + key } });
  assert.strictEqual(r.status, 200);
  return (await r.json()).data.map((m) => m.id);
};

test('/v1/models lists what the bridge reports, as the key may see it',
     async () => {
  // fetched off the event loop after the config was loaded
  const all = await until(async () => {
    const ids = await listModels(gw.masterKey);
    return ids.includes('bridge-model-a') ? ids : null;
  });
  assert.ok(all.includes('claude-bridge-b'), all.join());
  assert.ok(all.includes('claude-sonnet-x'), all.join());
  assert.ok(all.includes('fast'), all.join());
  assert.strictEqual(all.filter((id) => id === 'gpt-admin').length, 1,
                     'listed once: ' + all.join());
  assert.ok(!all.some((id) => id.includes('*')), 'no pattern: ' + all.join());
  const models = bridge.st.requests.filter((q) => q.method === 'GET');
  assert.ok(models.length >= 1);
  assert.strictEqual(models[0].url, '/v1/models');

  const team = createKey('--alias', 'lister', '--access-groups', 'team');
  const ids = await until(async () => {
    const r = await listModels(team);
    return r.includes('bridge-model-a') ? r : null;
  });
  assert.ok(!ids.includes('claude-bridge-b'), 'claude-* is not the team\'s');
  assert.ok(!ids.includes('gpt-admin'), 'admins only');

  const anthropic = await fetch(gw.url + '/v1/models', { headers: {
    'x-api-key': gw.masterKey, 'anthropic-version': '2023-06-01' } });
  const body = await anthropic.json();
  assert.ok(body.data.some((m) => m.id === 'bridge-model-a'));
});

test('a health check cools a failing deployment down before users hit it',
     async () => {
  const sick = await createMock({ name: 'sick', mode: 'fail500' });
  const well = await createMock({ name: 'well' });
  try {
    const cfg = config();
    cfg.providers.sick = { api_base: sick.url, interfaces: ['openai'],
                           models: { hc: {} } };
    cfg.providers.well = { api_base: well.url, interfaces: ['openai'],
                           models: { hc: {} } };
    cfg.settings.health_check_interval_seconds = 1;
    cfg.settings.cooldown_seconds = 1;
    await gw.configure(cfg);

    const admin = async () => {
      const r = await fetch(gw.url + '/llmproxy/admin/health', {
        headers: { authorization: 'Bearer ' + gw.masterKey } });
      assert.strictEqual(r.status, 200);
      return r.json();
    };
    const health = await until(async () => {
      const h = await admin();
      const by = Object.fromEntries((h.deployments || [])
        .map((d) => [d.deployment, d]));
      return by['sick/hc'] && by['well/hc'] ? by : null;
    });
    assert.strictEqual(health['sick/hc'].healthy, false);
    assert.strictEqual(health['sick/hc'].status, 500);
    assert.strictEqual(health['well/hc'].healthy, true);
    assert.strictEqual(health['bridge/*'].healthy, true, 'models endpoint');
    // the health check is a tiny request
    const probe = well.requests.find((q) =>
      q.headers['user-agent'] === 'llmproxy-health');
    assert.ok(probe, 'well was checked');
    assert.strictEqual(probe.body.max_tokens, 1);
    assert.strictEqual(probe.body.model, 'hc');

    // the first user requests: none reaches the sick one (without the
    // check, round-robin sends the first to "sick/hc", the first by id)
    for (let i = 0; i < 4; i++) {
      const { response } = await chat(gw.masterKey, 'hc');
      assert.strictEqual(response.headers.get('x-llmproxy-model'), 'well/hc');
      assert.strictEqual(
        response.headers.get('x-llmproxy-attempted-retries'), '0');
    }
    const users = sick.requests.filter((q) =>
      q.headers['user-agent'] !== 'llmproxy-health');
    assert.deepStrictEqual(users, []);

    // /metrics and llmproxyctl status show it; no secret anywhere
    const text = await metrics();
    assert.strictEqual(value(text,
      'llmproxy_deployment_healthy{deployment="sick/hc"}'), 0);
    assert.strictEqual(value(text,
      'llmproxy_deployment_healthy{deployment="well/hc"}'), 1);
    const st = gw.ctl(['status', '--json']);
    assert.strictEqual(st.status, 0, st.stderr);
    const deps = Object.fromEntries(JSON.parse(st.stdout).deployment_list
      .map((d) => [d.id, d]));
    assert.strictEqual(deps['sick/hc'].health, 'unhealthy');
    assert.strictEqual(deps['well/hc'].health, 'healthy');
    const plain = gw.ctl(['status']);
    assert.match(plain.stdout, /sick\/hc\s.*unhealthy/);
    const doc = JSON.stringify(await admin());
    assert.ok(!doc.includes(BRIDGE_KEY) && !text.includes(BRIDGE_KEY)
              && !st.stdout.includes(BRIDGE_KEY));

    // it recovers: checked healthy again, users get it again
    sick.mode = 'ok';
    await until(async () => {
      const h = await admin();
      return h.deployments.find((d) => d.deployment === 'sick/hc').healthy;
    });
    await until(async () => {
      const { response } = await chat(gw.masterKey, 'hc');
      return response.headers.get('x-llmproxy-model') === 'sick/hc';
    }, 6000);
  } finally {
    await sick.close();
    await well.close();
  }
});
