'use strict';
// Routing (SPEC §6): weighted round-robin, retries within a group, fallback
// models, what is never retried, cooldown shared by all workers, 502/504.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const OpenAI = require('openai');
const { startGateway, sleep } = require('../lib/gateway');
const { createMock, closedPort } = require('../lib/mock');

let gw, client, m;

before(async () => {
  m = {};
  for (const name of ['ok', 'ok2', 'w3', 'w1', 'bad500', 'bad429', 'hang',
                      'garbage', 'cool', 'coolok']) {
    m[name] = await createMock({ name });
  }
  m.bad500.mode = 'fail500';
  m.bad429.mode = 'fail429';
  m.hang.mode = 'hang';
  m.garbage.mode = 'garbage';
  const closed = await closedPort();
  const p = (url, models, extra = {}) => ({ api_base: url,
    interfaces: ['openai'], models, ...extra });

  gw = await startGateway({
    config: {
      providers: {
        ok: p(m.ok.url, { good: {}, mixed: {} }),
        ok2: p(m.ok2.url, { good2: {} }),
        w3: p(m.w3.url, { weighted: { weight: 3 } }),
        w1: p(m.w1.url, { weighted: { weight: 1 } }),
        bad500: p(m.bad500.url, { mixed: {}, only500: {}, dead: {} }),
        bad429: p(m.bad429.url, { only429: {} }),
        closed: p(`http://127.0.0.1:${closed}`, { onlyclosed: {} }),
        hang: p(m.hang.url, { onlyhang: {}, hangalone: {} }),
        garbage: p(m.garbage.url, { onlygarbage: {} }),
        cool: p(m.cool.url, { cooling: {} }),
        coolok: p(m.coolok.url, { cooling: {} }),
      },
      fallbacks: {
        only500: ['good'], only429: ['good'], onlyclosed: ['good'],
        onlyhang: ['good'], onlygarbage: ['good'], dead: ['onlyclosed'],
      },
      settings: { num_retries: 1, allowed_fails: 2, cooldown_seconds: 3,
                  request_timeout_seconds: 1 },
    },
  });
  client = new OpenAI({ baseURL: gw.baseURL, apiKey: gw.masterKey,
                        maxRetries: 0 });
});

after(async () => {
  const problems = gw.problems();
  await gw.stop();
  for (const k of Object.keys(m)) await m[k].close();
  assert.deepStrictEqual(problems, []);
});

const chat = (model, extra = {}) => client.chat.completions.create({
  model, messages: [{ role: 'user', content: 'hi' }], ...extra,
}).withResponse();

test('weighted round-robin spreads 3:1', async () => {
  m.w3.reset(); m.w1.reset();
  for (let i = 0; i < 40; i++) await chat('weighted');
  const a = m.w3.requests.length, b = m.w1.requests.length;
  assert.strictEqual(a + b, 40);
  assert.ok(a >= 25 && a <= 35, `w3 got ${a}, w1 got ${b}`);
});

test('a failing deployment is retried on another of its group',
  async () => {
    let retried = 0;
    for (let i = 0; i < 6; i++) {
      const { data, response } = await chat('mixed');
      assert.strictEqual(data.choices[0].message.content, 'hello from ok');
      assert.strictEqual(response.headers.get('x-llmproxy-model'), 'ok/mixed');
      retried += Number(response.headers.get('x-llmproxy-attempted-retries'));
    }
    assert.ok(retried >= 1, 'some requests hit the 500 first');
  });

for (const [model, mock] of [['only500', 'bad500'], ['only429', 'bad429'],
                             ['onlyclosed', null], ['onlyhang', 'hang'],
                             ['onlygarbage', 'garbage']]) {
  test(`fallback after ${model}`, async () => {
    const { data, response } = await chat(model);
    assert.strictEqual(data.choices[0].message.content, 'hello from ok');
    assert.strictEqual(response.headers.get('x-llmproxy-model'), 'ok/good');
    assert.strictEqual(response.headers.get('x-llmproxy-attempted-fallbacks'),
                       '1');
    if (mock) assert.ok(m[mock].requests.length >= 1);
  });
}

test('a stream that fails before its first byte falls back', async () => {
  const stream = await client.chat.completions.create({ model: 'only500',
    messages: [{ role: 'user', content: 'x' }], stream: true });
  let text = '';
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content || '';
  }
  assert.strictEqual(text, 'c0c1c2c3c4');
});

test('everything failing gives 502 in the OpenAI shape', async () => {
  const r = await fetch(gw.baseURL + '/chat/completions', {
    method: 'POST', headers: { authorization: 'Bearer ' + gw.masterKey },
    body: JSON.stringify({ model: 'bad500/dead', messages: [] }) });
  const body = await r.json();
  assert.strictEqual(r.status, 502, JSON.stringify(body));
  assert.strictEqual(typeof body.error.message, 'string');
  assert.match(body.error.message, /every deployment/);
  assert.strictEqual(r.headers.get('x-llmproxy-attempted-fallbacks'), '1');
  assert.ok(r.headers.get('x-llmproxy-request-id'));
});

test('a hanging upstream with no fallback gives 504', async () => {
  const t0 = Date.now();
  await assert.rejects(chat('hangalone'), (e) => e.status === 504);
  assert.ok(Date.now() - t0 < 5000);
});

test('cooldown: a failing deployment is skipped by every worker',
  async () => {
    m.cool.mode = 'fail500';
    m.cool.reset(); m.coolok.reset();
    // enough requests that both workers route some of them
    for (let i = 0; i < 20; i++) {
      const { data } = await chat('cooling');
      assert.strictEqual(data.choices[0].message.content,
                         'hello from coolok');
    }
    const failed = m.cool.requests.length;
    assert.ok(failed >= 2 && failed <= 6,
              `cool got ${failed} requests before cooling down`);
    m.cool.reset();
    for (let i = 0; i < 20; i++) await chat('cooling');
    assert.strictEqual(m.cool.requests.length, 0, 'skipped while cooling');

    const st = JSON.parse(gw.ctl(['status', '--json']).stdout);
    assert.ok(st.cooldowns.some((c) => c.deployment === 'cool/cooling'));

    m.cool.mode = 'ok';
    await sleep(3200);
    m.cool.reset();
    for (let i = 0; i < 20; i++) await chat('cooling');
    assert.ok(m.cool.requests.length > 0, 'back after the cooldown');
  });

test('a 429 cools the deployment down at once', async () => {
  m.bad429.reset();
  await chat('only429');
  const first = m.bad429.requests.length;
  assert.ok(first >= 1);
  for (let i = 0; i < 6; i++) await chat('only429');
  assert.strictEqual(m.bad429.requests.length, first,
                     'not tried again during retry-after');
});
