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
const { startGateway, NGINX, MODULE } = require('../lib/gateway');
const { createMock } = require('../lib/mock');

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
                        maxRetries: 0 });
});

after(async () => {
  const problems = gw.problems();
  await gw.stop();
  await mock.close();
  assert.deepStrictEqual(problems, []);
});

test('a sync takes effect without reload, in-flight streams finish',
  async () => {
    const pids = gw.workerPids();
    const stream = await client.chat.completions.create({ model: 'm1',
      messages: [], stream: true });
    const collected = (async () => {
      let text = '';
      for await (const c of stream) text += c.choices[0]?.delta?.content || '';
      return text;
    })();

    const cfg = base(mock.url);
    cfg.aliases = { newalias: 'm1' };
    const r = gw.sync(cfg);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /\+ alias newalias/);
    assert.match(r.stdout, /applied \(generation \d+\)/);

    const res = await client.chat.completions.create({ model: 'newalias',
                                                       messages: [] });
    assert.strictEqual(res.choices[0].message.content, 'hello from p');
    assert.strictEqual(await collected, 'c0c1c2c3c4c5c6c7');
    assert.deepStrictEqual(gw.workerPids(), pids);
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
  const r = gw.sync(bad);
  assert.strictEqual(r.status, 1);
  assert.match(r.stderr, /providers\.p\.models\.m1\.acess_groups: unknown field/);
  assert.match(r.stderr, /providers\.q\.\$extend: unknown provider "nothere"/);
  assert.match(r.stderr, /aliases\.a: unknown model "missing"/);
  assert.match(r.stderr, /nothing applied/);
  const res = await client.chat.completions.create({ model: 'newalias',
                                                     messages: [] });
  assert.strictEqual(res.choices[0].message.content, 'hello from p');

  const syntax = gw.sync('{"providers": {');
  assert.strictEqual(syntax.status, 1);
  assert.match(syntax.stderr, /invalid JSON/);
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

test('a restarted gateway serves the last good config', async () => {
  await gw.stop({ keep: true });
  await gw.start();
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
