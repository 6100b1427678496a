'use strict';
// Routing (SPEC §4, §6): aliases, PROVIDER/MODEL, weighted round-robin,
// retries within a group, fallback models on 5xx/429/connect error/timeout/
// garbage (also for streams), what is never retried, 502/504, and cooldown
// shared by every worker.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const OpenAI = require('openai');
const { startGateway, sleep, assertOpenAIError } = require('../lib/gateway');
const { createMock, freePort } = require('../mocks/openai-mock');
const { postJSON, oneConnection } = require('../lib/http');

const COOLDOWN = 5;       // settings.cooldown_seconds
const ALLOWED_FAILS = 3;  // settings.allowed_fails
const RETRY_AFTER = 2;    // what the 429 mocks send

let gw, client, m;

before(async () => {
  m = {};
  for (const name of ['ok', 'w3', 'w1', 'bad500', 'bad429', 'hang',
                      'garbage', 'cool', 'coolok', 'rl', 'rlok', 'solo',
                      'bad400']) {
    m[name] = await createMock({ name, retryAfter: RETRY_AFTER });
  }
  m.bad500.mode = 'fail500';
  m.bad429.mode = 'fail429';
  m.rl.mode = 'fail429';
  m.hang.mode = 'hang';
  m.garbage.mode = 'garbage';
  m.bad400.mode = 'badRequest400';
  const closed = await freePort();
  const p = (url, models, extra = {}) => ({ api_base: url,
    interfaces: ['openai'], models, ...extra });

  gw = await startGateway({
    config: {
      providers: {
        ok: p(m.ok.url, { good: { model: 'good-up' }, mixed: {} }),
        w3: p(m.w3.url, { weighted: {} }, { weight: 3 }),
        w1: p(m.w1.url, { weighted: { weight: 1 } }),
        bad500: p(m.bad500.url, { mixed: {}, only500: {}, dead: {},
                                  chain: {}, nofb500: {} }),
        bad429: p(m.bad429.url, { only429: {} }),
        closed: p(`http://127.0.0.1:${closed}`, { onlyclosed: {} }),
        hang: p(m.hang.url, { onlyhang: {}, hangalone: {} }),
        garbage: p(m.garbage.url, { onlygarbage: {} }),
        cool: p(m.cool.url, { cooling: {} }),
        coolok: p(m.coolok.url, { cooling: {} }),
        rl: p(m.rl.url, { limited: {} }),
        rlok: p(m.rlok.url, { limited: {} }),
        solo: p(m.solo.url, { solo: {} }),
        bad400: p(m.bad400.url, { only400: {} }),
      },
      aliases: { 'alias-good': 'good', 'alias-direct': 'w1/weighted',
                 'alias500': 'only500' },
      fallbacks: {
        only500: ['good'], only429: ['good'], onlyclosed: ['good'],
        onlyhang: ['good'], onlygarbage: ['good'], only400: ['good'],
        dead: ['onlyclosed'], chain: ['nofb500', 'good'],
      },
    },
    settings: { num_retries: 1, allowed_fails: ALLOWED_FAILS,
                cooldown_seconds: COOLDOWN, request_timeout_seconds: 1 },
  });
  client = new OpenAI({ baseURL: gw.baseURL, apiKey: gw.masterKey,
                        maxRetries: 0, timeout: 30000 });
});

after(async () => {
  if (!gw) return;
  const problems = gw.problems();
  await gw.stop();
  for (const k of Object.keys(m)) await m[k].close();
  assert.deepStrictEqual(problems, [], 'error.log alerts/crashes');
});

const chat = (model, extra = {}) => client.chat.completions.create({
  model, messages: [{ role: 'user', content: 'hi' }], ...extra,
}).withResponse();

const post = (model, opts) => postJSON(gw.baseURL + '/chat/completions',
  gw.masterKey, { model, messages: [{ role: 'user', content: 'hi' }] }, opts);

// requests over fresh connections, 4 at a time, until both workers have
// served at least `each` of them; returns {responses, byPid}
async function acrossWorkers(model, { min = 20, max = 200, each = 3 } = {}) {
  const pids = gw.workerPids();
  const start = gw.accessLog().length;
  const responses = [];
  let byPid = {};
  while (responses.length < max) {
    responses.push(...await Promise.all([0, 1, 2, 3].map(() => post(model))));
    await sleep(20);    // the access log line is written after the answer
    byPid = {};
    for (const l of gw.accessLog().slice(start)) {
      byPid[l.pid] = (byPid[l.pid] || 0) + 1;
    }
    if (responses.length >= min && pids.every((p) => (byPid[p] || 0) >= each)) {
      break;
    }
  }
  assert.ok(pids.every((p) => (byPid[p] || 0) >= each),
            `both workers ${pids} should have served requests: `
            + JSON.stringify(byPid));
  return { responses, byPid };
}

test('aliases and PROVIDER/MODEL addressing', async () => {
  m.ok.reset();
  const { data, response } = await chat('alias-good');
  assert.strictEqual(data.choices[0].message.content, 'hello from ok');
  assert.strictEqual(response.headers.get('x-llmproxy-model'), 'ok/good');
  assert.strictEqual(m.ok.requests[0].body.model, 'good-up');

  const direct = await chat('ok/good');
  assert.strictEqual(direct.response.headers.get('x-llmproxy-model'),
                     'ok/good');

  m.w3.reset(); m.w1.reset();
  for (let i = 0; i < 6; i++) {
    const r = await chat('w3/weighted');
    assert.strictEqual(r.response.headers.get('x-llmproxy-model'),
                       'w3/weighted');
  }
  assert.strictEqual(m.w3.requests.length, 6);
  assert.strictEqual(m.w1.requests.length, 0);
  for (let i = 0; i < 6; i++) {
    const r = await chat('alias-direct');
    assert.strictEqual(r.data.choices[0].message.content, 'hello from w1');
    assert.strictEqual(r.response.headers.get('x-llmproxy-model'),
                       'w1/weighted');
  }
  assert.strictEqual(m.w3.requests.length, 6);
  assert.strictEqual(m.w1.requests.length, 6);
  assert.strictEqual(m.w1.requests[0].body.model, 'weighted');
});

test('weighted round-robin spreads 3:1 over 40 requests', async () => {
  m.w3.reset(); m.w1.reset();
  for (let i = 0; i < 40; i++) {
    const { response } = await chat('weighted');
    assert.match(response.headers.get('x-llmproxy-model'),
                 /^w[13]\/weighted$/);
  }
  const a = m.w3.requests.length, b = m.w1.requests.length;
  assert.strictEqual(a + b, 40, 'every request reached exactly one mock');
  assert.ok(a >= 25 && a <= 35, `w3 (weight 3) got ${a}, w1 got ${b}`);
});

test('a failing deployment is retried on another of its group',
  async () => {
    m.bad500.reset(); m.ok.reset();
    let hitBad = 0;
    for (let i = 0; i < 6; i++) {
      const before = m.bad500.requests.length;
      const { data, response } = await chat('mixed');
      assert.strictEqual(data.choices[0].message.content, 'hello from ok');
      assert.strictEqual(response.headers.get('x-llmproxy-model'), 'ok/mixed');
      assert.strictEqual(response.headers.get('x-llmproxy-attempted-fallbacks'),
                         '0');
      const retries = Number(response.headers.get(
        'x-llmproxy-attempted-retries'));
      if (m.bad500.requests.length > before) {
        hitBad++;
        assert.ok(retries >= 1, `request ${i} hit the 500 first but `
                  + `x-llmproxy-attempted-retries is ${retries}`);
      } else {
        assert.strictEqual(retries, 0, `request ${i} was not retried`);
      }
    }
    assert.ok(hitBad >= 1, 'round-robin sent some requests to the bad one');
    assert.strictEqual(m.ok.requests.length, 6);
  });

for (const [model, mock, what] of [
  ['only500', 'bad500', 'a 500'], ['only429', 'bad429', 'a 429'],
  ['onlyclosed', null, 'a closed port'],
  ['onlyhang', 'hang', 'a timeout (upstream never answers)'],
  ['onlygarbage', 'garbage', 'garbage instead of HTTP'],
]) {
  test(`fallback to the next model after ${what}`, async () => {
    const before = mock ? m[mock].requests.length : 0;
    m.ok.reset();
    const { data, response } = await chat(model);
    assert.strictEqual(data.choices[0].message.content, 'hello from ok');
    assert.strictEqual(response.headers.get('x-llmproxy-model'), 'ok/good');
    assert.strictEqual(response.headers.get('x-llmproxy-attempted-fallbacks'),
                       '1');
    assert.strictEqual(m.ok.requests.length, 1);
    assert.strictEqual(m.ok.requests[0].body.model, 'good-up',
                       'the fallback sees its own upstream model name');
    if (mock) {
      assert.ok(m[mock].requests.length > before,
                `${mock} was tried first`);
      assert.strictEqual(m[mock].requests.at(-1).body.model, model);
    }
  });
}

test('fallbacks are tried in order; an alias uses its model\'s fallbacks',
  async () => {
    m.ok.reset();
    const before = m.bad500.requests.length;
    const { data, response } = await chat('chain');
    assert.strictEqual(data.choices[0].message.content, 'hello from ok');
    assert.strictEqual(response.headers.get('x-llmproxy-model'), 'ok/good');
    assert.strictEqual(response.headers.get('x-llmproxy-attempted-fallbacks'),
                       '2');
    const tried = m.bad500.requests.slice(before).map((q) => q.body.model);
    assert.ok(tried.includes('chain') && tried.includes('nofb500'),
              'tried: ' + tried.join(','));
    assert.ok(tried.indexOf('chain') < tried.indexOf('nofb500'));

    const a = await chat('alias500');
    assert.strictEqual(a.response.headers.get('x-llmproxy-model'), 'ok/good');
    assert.strictEqual(a.response.headers.get(
      'x-llmproxy-attempted-fallbacks'), '1');
  });

test('an upstream 400 is returned as it is: no retry, no fallback',
  async () => {
    m.bad400.reset(); m.ok.reset();
    const r = await post('only400');
    assert.strictEqual(r.status, 400, r.text);
    assert.deepStrictEqual(r.body, { error: { message: 'bad input from bad400',
      type: 'invalid_request_error', code: 'bad' } });
    assert.strictEqual(m.bad400.requests.length, 1, 'tried exactly once');
    assert.strictEqual(m.ok.requests.length, 0, 'no fallback');
  });

test('a stream whose deployment fails before the first byte falls back',
  async () => {
    for (const model of ['only500', 'onlyclosed']) {
      m.ok.reset();
      const { data: stream, response } = await client.chat.completions.create({
        model, messages: [{ role: 'user', content: 'x' }], stream: true,
      }).withResponse();
      assert.strictEqual(response.status, 200);
      assert.strictEqual(response.headers.get('x-llmproxy-model'), 'ok/good',
                         model);
      assert.strictEqual(response.headers.get(
        'x-llmproxy-attempted-fallbacks'), '1', model);
      let text = '';
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content || '';
      }
      assert.strictEqual(text, 'c0c1c2c3c4', model);
      assert.strictEqual(m.ok.requests.length, 1);
      assert.strictEqual(m.ok.requests[0].body.stream, true);
    }
  });

test('everything failing gives 502 in the OpenAI shape', async () => {
  const r = await post('dead');
  assertOpenAIError(r, 502, 'dead -> onlyclosed');
  assert.strictEqual(r.headers['x-llmproxy-attempted-fallbacks'], '1');
  const sdk = await chat('dead').catch((e) => e);
  assert.ok(sdk instanceof OpenAI.APIError && sdk.status === 502,
            String(sdk));
});

test('a hanging upstream with no fallback gives 504', async () => {
  const r = await post('hangalone');
  assertOpenAIError(r, 504, 'hangalone');
  await assert.rejects(chat('hangalone'), (e) => e.status === 504);
});

test('cooldown: after allowed_fails the deployment is skipped by every '
     + 'worker, and comes back after cooldown_seconds', async () => {
  m.cool.mode = 'fail500';
  m.cool.reset(); m.coolok.reset();
  // phase 1: one connection, so one worker sees every failure
  const agent = oneConnection();
  for (let i = 0; i < 20 && m.cool.requests.length < ALLOWED_FAILS; i++) {
    const r = await post('cooling', { agent });
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual(r.headers['x-mock-name'], 'coolok');
  }
  agent.destroy();
  assert.strictEqual(m.cool.requests.length, ALLOWED_FAILS,
                     'round-robin sent requests to the failing deployment');
  const cooledAt = m.cool.requests.at(-1).time;

  const st = gw.ctl(['status', '--json']);
  assert.strictEqual(st.status, 0, st.stderr);
  const status = JSON.parse(st.stdout);
  assert.ok(status.cooldowns.some((c) => c.deployment === 'cool/cooling'),
            'status lists the cooldown: ' + st.stdout);

  // phase 2: fresh connections that both workers serve
  const { responses, byPid } = await acrossWorkers('cooling');
  for (const r of responses) {
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual(r.headers['x-mock-name'], 'coolok');
  }
  const during = m.cool.requests.filter((q) =>
    q.time > cooledAt && q.time < cooledAt + (COOLDOWN - 0.5) * 1000);
  assert.strictEqual(during.length, 0, `the cooling deployment got `
    + `${during.length} requests during its cooldown (served by workers `
    + `${JSON.stringify(byPid)})`);

  // after the cooldown it is used again
  m.cool.mode = 'ok';
  const wait = cooledAt + COOLDOWN * 1000 + 500 - Date.now();
  if (wait > 0) await sleep(wait);
  m.cool.reset();
  for (let i = 0; i < 20 && m.cool.requests.length === 0; i++) {
    await post('cooling');
  }
  assert.ok(m.cool.requests.length > 0, 'back after the cooldown');
});

test('a 429 cools the deployment down at once, for retry-after',
  async () => {
    m.rl.reset(); m.rlok.reset();
    const agent = oneConnection();
    for (let i = 0; i < 10 && m.rl.requests.length === 0; i++) {
      const r = await post('limited', { agent });
      assert.strictEqual(r.status, 200, r.text);
      assert.strictEqual(r.headers['x-mock-name'], 'rlok');
    }
    agent.destroy();
    assert.strictEqual(m.rl.requests.length, 1, 'one 429 was enough');
    const at = m.rl.requests[0].time;
    const { responses } = await acrossWorkers('limited', { min: 12 });
    for (const r of responses) {
      assert.strictEqual(r.status, 200, r.text);
      assert.strictEqual(r.headers['x-mock-name'], 'rlok');
    }
    const during = m.rl.requests.filter((q) =>
      q.time > at && q.time < at + (RETRY_AFTER - 0.3) * 1000);
    assert.strictEqual(during.length, 0,
                       'no request during the upstream\'s retry-after');
    // and it is tried again once the cooldown is over
    m.rl.mode = 'ok';
    const t0 = Date.now();
    while (m.rl.requests.length === 1 && Date.now() - t0 < 15000) {
      await post('limited');
      await sleep(100);
    }
    assert.ok(m.rl.requests.length > 1, 'back after the cooldown');
  });

test('when every deployment of a group cools down, one is still tried',
  async () => {
    m.solo.mode = 'fail500';
    m.solo.reset();
    for (let i = 0; i < 10 && m.solo.requests.length < ALLOWED_FAILS; i++) {
      const r = await post('solo');
      assertOpenAIError(r, 502, 'solo failing');
    }
    m.solo.mode = 'ok';
    const before = m.solo.requests.length;
    const r = await post('solo');
    assert.strictEqual(r.status, 200, 'tried rather than failing outright: '
                       + r.text);
    assert.strictEqual(r.headers['x-mock-name'], 'solo');
    assert.strictEqual(m.solo.requests.length, before + 1);
  });
