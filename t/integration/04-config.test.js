'use strict';
// Config changes (SPEC §9): llmproxyctl sync validates, plans and pushes;
// workers switch without dropping in-flight requests; a broken config
// never reaches the gateway; a restart comes back with the last good one;
// nginx -t refuses wrong directives with file and line.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const OpenAI = require('openai');
const crypto = require('node:crypto');
const { startGateway, NGINX, MODULE, raw, assertOpenAIError } =
  require('../lib/gateway');
const { createMock } = require('../mocks/openai-mock');
const { postJSON } = require('../lib/http');

let gw, mock, client;

const base = (url) => ({
  providers: {
    p: { api_base: url, interfaces: ['openai'], api_key: 'sk-up-1',
         models: { m1: {} } },
  },
  settings: { request_timeout_seconds: 5 },
});

before(async () => {
  mock = await createMock({ name: 'p', delay: 150, chunks: 8 });
  gw = await startGateway({ config: base(mock.url) });
  client = new OpenAI({ baseURL: gw.baseURL, apiKey: gw.masterKey,
                        maxRetries: 0, timeout: 30000 });
});

after(async () => {
  if (!gw) return;
  const problems = gw.problems();
  await gw.stop();
  await mock.close();
  assert.deepStrictEqual(problems, [], 'error.log alerts/crashes');
});

function status() {
  const r = gw.ctl(['status', '--json']);
  assert.strictEqual(r.status, 0, 'llmproxyctl status: ' + r.stderr);
  return JSON.parse(r.stdout);
}

// a stream of 8 chunks 150 ms apart, read to the end in the background
async function slowStream(model = 'm1') {
  const stream = await client.chat.completions.create({ model,
    messages: [], stream: true });
  const done = (async () => {
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content || '';
    return text;
  })();
  return { done };   // not a promise itself, so `await slowStream()` does
}                    // not wait for the end

test('a sync takes effect without reload, in-flight streams finish',
  async () => {
    const pids = gw.workerPids();
    await assert.rejects(client.chat.completions.create({ model: 'newalias',
      messages: [] }), (e) => e.status === 404, 'not there before the sync');
    const gen = status().generation;
    mock.reset();
    mock.delay = 400;    // a 3 s stream
    const collected = (await slowStream()).done;
    mock.delay = 150;

    const cfg = base(mock.url);
    cfg.aliases = { newalias: 'm1' };
    let streamDone = false;
    collected.then(() => { streamDone = true; }, () => {});
    const t0 = Date.now();
    const r = await gw.syncAsync(cfg);
    const syncMs = Date.now() - t0;
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /\+ alias newalias/);
    assert.match(r.stdout, /applied \(generation \d+\)/);

    const res = await client.chat.completions.create({ model: 'newalias',
                                                       messages: [] });
    assert.strictEqual(res.choices[0].message.content, 'hello from p');
    assert.strictEqual(mock.requests.length, 2);
    if (syncMs < 2000) {
      assert.ok(!streamDone, 'the new alias answered while the stream that '
                + 'started before the sync was still running');
    }
    assert.strictEqual(await collected, 'c0c1c2c3c4c5c6c7');
    assert.ok(status().generation > gen, 'generation went up');
    // every worker has it: fresh connections land on both
    for (let i = 0; i < 10; i++) {
      const r = await postJSON(gw.baseURL + '/chat/completions',
        gw.masterKey, { model: 'newalias', messages: [] });
      assert.strictEqual(r.status, 200, r.text);
    }
    assert.deepStrictEqual(gw.workerPids(), pids, 'no reload, no new workers');
  });

test('the plan: --dry-run, without --force, --prune, --only', async () => {
  const cfg = base(mock.url);
  cfg.aliases = { newalias: 'm1', other: 'm1' };
  cfg.providers.p.models.m1 = { model: 'changed-upstream' };

  let r = gw.sync(cfg, ['--dry-run']);
  assert.strictEqual(r.status, 0, r.stderr);
  assert.match(r.stdout, /\+ alias other/);
  assert.match(r.stdout, /~ model p\/m1 \((differs|changed)/);
  assert.match(r.stdout, /dry run: nothing applied/);

  r = gw.sync(cfg, []);
  assert.strictEqual(r.status, 0, r.stderr);
  mock.reset();
  await client.chat.completions.create({ model: 'other', messages: [] });
  assert.strictEqual(mock.requests[0].body.model, 'm1', 'change kept out');

  r = gw.sync(cfg, ['--force', '--only', 'models']);
  assert.strictEqual(r.status, 0, r.stderr);
  assert.match(r.stdout, /~ model p\/m1\n/);
  mock.reset();
  await client.chat.completions.create({ model: 'm1', messages: [] });
  assert.strictEqual(mock.requests[0].body.model, 'changed-upstream');
  assert.strictEqual(mock.requests[0].headers.authorization,
                     'Bearer sk-up-1', 'the provider key survived');

  delete cfg.aliases.other;
  r = gw.sync(cfg, ['--prune']);
  assert.match(r.stdout, /- alias other/);
  await assert.rejects(client.chat.completions.create({ model: 'other',
    messages: [] }), (e) => e.status === 404);

  r = gw.sync(cfg, ['--only', 'bogus']);
  assert.notStrictEqual(r.status, 0);
});

test('a broken config is refused with every problem listed', async () => {
  const bad = {
    providers: {
      p: { api_base: mock.url, interfaces: ['openai'],
           models: { m1: { acess_groups: ['x'] } } },
      q: { $extend: 'nothere' },
    },
    aliases: { a: 'missing' },
  };
  const before = status();
  const r = gw.sync(bad);
  assert.notStrictEqual(r.status, 0);
  assert.match(r.stderr, /^\S+: \S.*$/m, 'problems listed as path: reason');
  assert.match(r.stderr, /providers\.p\.models\.m1\.acess_groups: unknown field/);
  assert.match(r.stderr, /providers\.q\.\$extend: unknown provider "nothere"/);
  assert.match(r.stderr, /aliases\.a: unknown model "missing"/);
  assert.match(r.stderr, /nothing applied/);
  const res = await client.chat.completions.create({ model: 'newalias',
                                                     messages: [] });
  assert.strictEqual(res.choices[0].message.content, 'hello from p');

  const syntax = gw.sync('{"providers": {');
  assert.notStrictEqual(syntax.status, 0);
  assert.match(syntax.stderr, /invalid JSON/);

  const typo = base(mock.url);
  typo.setings = { num_retries: 2 };
  const t = gw.sync(typo);
  assert.notStrictEqual(t.status, 0, 'an unknown top-level field is refused');
  assert.match(t.stderr, /setings: unknown field/);

  const after = status();
  assert.strictEqual(after.generation, before.generation, 'nothing pushed');
  assert.strictEqual(after.config_sha256, before.config_sha256);
  const again = await client.chat.completions.create({ model: 'newalias',
                                                       messages: [] });
  assert.strictEqual(again.choices[0].message.content, 'hello from p');
});

test('the admin API needs the master key and refuses a bad config',
  async () => {
    const before = status();
    const admin = (p, init = {}) => raw(gw.url + '/llmproxy/admin/' + p, init);
    const auth = { authorization: 'Bearer ' + gw.masterKey };

    for (const headers of [{}, { authorization: 'Bearer sk-wrong' }]) {
      assertOpenAIError(await admin('status', { headers }), 401,
                        'status ' + JSON.stringify(headers));
      assertOpenAIError(await admin('config', { headers }), 401,
                        'GET config ' + JSON.stringify(headers));
      assertOpenAIError(await admin('config', { method: 'POST', headers,
        body: '{}' }), 401, 'POST config ' + JSON.stringify(headers));
    }

    const got = await admin('config', { headers: auth });
    assert.strictEqual(got.status, 200, got.text);
    assert.strictEqual(got.body.config_sha256, before.config_sha256);
    const prov = got.body.providers.find((x) => x.name === 'p');
    assert.ok(!('api_key' in prov), 'api_key is never read back');
    assert.strictEqual(prov.api_key_sha256, crypto.createHash('sha256')
      .update('sk-up-1').digest('hex'));
    assert.ok(!got.text.includes('sk-up-1'));

    for (const body of ['{"format":1}', 'not json', '{"format":99,'
        + '"providers":[],"deployments":[],"aliases":{},"fallbacks":{}}']) {
      const r = await admin('config', { method: 'POST', headers: auth, body });
      assertOpenAIError(r, 400, 'POST config ' + body);
      assert.strictEqual(r.body.error.code, 'invalid_config');
    }
    // a compiled config whose alias points nowhere
    const broken = JSON.parse(JSON.stringify(got.body));
    broken.aliases = { x: 'no-such-model' };
    const r = await admin('config', { method: 'POST', headers: auth,
                                      body: JSON.stringify(broken) });
    assertOpenAIError(r, 400, 'alias to nowhere');

    const after = status();
    assert.strictEqual(after.generation, before.generation);
    assert.strictEqual(after.config_sha256, before.config_sha256);
    const res = await client.chat.completions.create({ model: 'newalias',
                                                       messages: [] });
    assert.strictEqual(res.choices[0].message.content, 'hello from p');
  });

test('config.local.json is merged and env: secrets resolved', async () => {
  const cfg = base(mock.url);
  delete cfg.providers.p.api_key;
  fs.writeFileSync(path.join(gw.dir, 'config.local.json'), JSON.stringify({
    providers: { p: { api_key: 'env:LLMPROXY_TEST_SECRET' } } }));
  try {
    let r = gw.sync(cfg, ['--force'], {});
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr,
      /providers\.p\.api_key: environment variable LLMPROXY_TEST_SECRET/);
    r = gw.sync(cfg, ['--force'], { LLMPROXY_TEST_SECRET: 'sk-from-env' });
    assert.strictEqual(r.status, 0, r.stderr);
    assert.ok(!r.stdout.includes('sk-from-env'), 'secrets are not printed');
    mock.reset();
    await client.chat.completions.create({ model: 'm1', messages: [] });
    assert.strictEqual(mock.requests[0].headers.authorization,
                       'Bearer sk-from-env');
    const st = gw.ctl(['status', '--json']);
    assert.ok(!st.stdout.includes('sk-from-env'));
  } finally {
    fs.rmSync(path.join(gw.dir, 'config.local.json'), { force: true });
  }
});

test('nginx -s reload: in-flight streams finish, the config stays',
  async () => {
    const sha = status().config_sha256;
    const collected = (await slowStream()).done;
    const fresh = await gw.reload();
    assert.strictEqual(fresh.length, 2);
    assert.strictEqual(await collected, 'c0c1c2c3c4c5c6c7',
                       'the old worker finished the stream');
    const res = await client.chat.completions.create({ model: 'newalias',
                                                       messages: [] });
    assert.strictEqual(res.choices[0].message.content, 'hello from p');
    assert.strictEqual(status().config_sha256, sha);
  });

test('a restarted gateway serves the last good config', async () => {
  const sha = status().config_sha256;
  await gw.stop({ keep: true, how: 'stop' });   // nginx -s stop
  assert.ok(!gw.stopProblem, gw.stopProblem);
  await gw.start();                             // same state dir, no sync
  assert.strictEqual(status().config_sha256, sha);
  const r = await fetch(gw.url + '/health/readiness');
  assert.strictEqual(r.status, 200);
  const res = await client.chat.completions.create({ model: 'newalias',
                                                     messages: [] });
  assert.strictEqual(res.choices[0].message.content, 'hello from p');
});

test('nginx -t names the file and line of a wrong directive', () => {
  const conf = path.join(gw.dir, 'bad.conf');
  const cases = [
    ['llmproxy_zone bogus;', /invalid zone "bogus".*bad\.conf:4/],
    ['llmproxy_frobnicate on;', /unknown directive "llmproxy_frobnicate".*bad\.conf:4/],
    ['llmproxy_zone x:1k;', /too small.*bad\.conf:4/],
  ];
  for (const [line, re] of cases) {
    fs.writeFileSync(conf, `load_module ${MODULE};
events {}
http {
    ${line}
}
`);
    const r = spawnSync(NGINX, ['-t', '-p', gw.dir, '-c', conf, '-e',
                                '/dev/null'], { encoding: 'utf8' });
    assert.notStrictEqual(r.status, 0);
    assert.match(r.stderr, re);
  }
  fs.writeFileSync(conf, `load_module ${MODULE};
events {}
http { server { location / { llmproxy; } } }
`);
  const r = spawnSync(NGINX, ['-t', '-p', gw.dir, '-c', conf, '-e',
                              '/dev/null'], { encoding: 'utf8' });
  assert.match(r.stderr, /requires "llmproxy_zone".*bad\.conf:3/);
});
