'use strict';
// The OpenAI interface through the official `openai` SDK: pass-through,
// model and credential rewriting, headers, errors in OpenAI's shape, and
// a gateway that survives bad input with the same worker processes.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const OpenAI = require('openai');
const { startGateway } = require('../lib/gateway');
const { createMock } = require('../lib/mock');

let gw, mock, client, pids;

before(async () => {
  mock = await createMock({ name: 'A' });
  gw = await startGateway({
    config: {
      providers: {
        mockA: {
          api_base: mock.url,
          interfaces: ['openai'],
          api_key: 'sk-upstream-secret',
          headers: { 'X-Extra': 'yes' },
          models: { 'gpt-test': { model: 'upstream-gpt' },
                    'embed-test': {} },
        },
      },
      aliases: { 'gpt-alias': 'gpt-test' },
    },
  });
  client = new OpenAI({ baseURL: gw.baseURL, apiKey: gw.masterKey,
                        maxRetries: 0 });
  pids = gw.workerPids();
});

after(async () => {
  const problems = gw.problems();
  await gw.stop();
  await mock.close();
  assert.deepStrictEqual(problems, []);
});

test('chat completion passes through with the upstream model name',
  async () => {
    mock.reset();
    const { data, response } = await client.chat.completions.create({
      model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }],
    }).withResponse();
    assert.strictEqual(data.choices[0].message.content, 'hello from A');
    assert.strictEqual(data.model, 'upstream-gpt');
    assert.strictEqual(mock.requests.length, 1);
    const seen = mock.requests[0];
    assert.strictEqual(seen.body.model, 'upstream-gpt');
    assert.deepStrictEqual(seen.body.messages,
                           [{ role: 'user', content: 'hi' }]);
    assert.strictEqual(seen.url, '/v1/chat/completions');
    assert.strictEqual(seen.headers.authorization, 'Bearer sk-upstream-secret');
    assert.strictEqual(seen.headers['x-extra'], 'yes');
    for (const v of Object.values(seen.headers)) {
      assert.ok(!String(v).includes(gw.masterKey),
                'the client key must never reach the provider');
    }
    assert.match(response.headers.get('x-llmproxy-request-id'),
                 /^[0-9a-f-]{36}$/);
    assert.strictEqual(response.headers.get('x-llmproxy-model'),
                       'mockA/gpt-test');
    assert.strictEqual(response.headers.get('x-llmproxy-attempted-fallbacks'),
                       '0');
    assert.strictEqual(response.headers.get('x-llmproxy-attempted-retries'),
                       '0');
    assert.ok(response.headers.get('x-llmproxy-overhead-duration-ms') !== null);
  });

test('request ids are unique', async () => {
  const ids = new Set();
  for (let i = 0; i < 5; i++) {
    const r = await fetch(gw.url + '/health/liveliness');
    ids.add(r.headers.get('x-llmproxy-request-id'));
  }
  assert.strictEqual(ids.size, 5);
});

test('aliases and PROVIDER/MODEL resolve', async () => {
  for (const model of ['gpt-alias', 'mockA/gpt-test']) {
    mock.reset();
    const r = await client.chat.completions.create({
      model, messages: [{ role: 'user', content: 'x' }] });
    assert.strictEqual(r.model, 'upstream-gpt');
    assert.strictEqual(mock.requests[0].body.model, 'upstream-gpt');
  }
});

test('completions, embeddings and responses pass through', async () => {
  mock.reset();
  const c = await client.completions.create({ model: 'gpt-test',
                                              prompt: 'say hi' });
  assert.strictEqual(c.choices[0].text, 'hi');
  const e = await client.embeddings.create({ model: 'embed-test',
                                             input: 'x' });
  assert.strictEqual(e.data[0].embedding.length, 3);
  const r = await client.responses.create({ model: 'gpt-test', input: 'hi' });
  assert.strictEqual(r.output_text, 'hi');
  assert.deepStrictEqual(mock.requests.map((q) => q.url),
    ['/v1/completions', '/v1/embeddings', '/v1/responses']);
  assert.strictEqual(mock.requests[1].body.model, 'embed-test');
});

test('paths without /v1 work too', async () => {
  const r = await fetch(gw.url + '/chat/completions', {
    method: 'POST',
    headers: { authorization: 'Bearer ' + gw.masterKey,
               'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-test', messages: [] }) });
  assert.strictEqual(r.status, 200);
});

test('every key carrier is accepted', async () => {
  const body = JSON.stringify({ model: 'gpt-test', messages: [] });
  for (const h of ['x-api-key', 'x-goog-api-key', 'api-key',
                   'x-litellm-api-key']) {
    const r = await fetch(gw.baseURL + '/chat/completions', {
      method: 'POST', headers: { [h]: gw.masterKey }, body });
    assert.strictEqual(r.status, 200, h);
  }
  const r = await fetch(gw.baseURL + '/chat/completions?key=' + gw.masterKey,
                        { method: 'POST', body });
  assert.strictEqual(r.status, 200, '?key=');
});

test('models are listed with aliases', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepStrictEqual(ids.sort(), ['embed-test', 'gpt-alias', 'gpt-test']);
  const one = await client.models.retrieve('gpt-test');
  assert.strictEqual(one.id, 'gpt-test');
  await assert.rejects(client.models.retrieve('nope'),
                       (e) => e.status === 404);
});

test('health endpoints need no key', async () => {
  for (const p of ['/health/liveliness', '/health/readiness']) {
    const r = await fetch(gw.url + p);
    assert.strictEqual(r.status, 200, p);
  }
});

async function raw(path, init = {}) {
  const r = await fetch(gw.url + path, init);
  const text = await r.text();
  let body;
  try { body = JSON.parse(text); } catch (e) { body = text; }
  return { status: r.status, body, headers: r.headers };
}

function assertOpenAIError(res, status) {
  assert.strictEqual(res.status, status, JSON.stringify(res.body));
  assert.strictEqual(typeof res.body.error.message, 'string');
  assert.strictEqual(typeof res.body.error.type, 'string');
  assert.ok('code' in res.body.error);
  assert.ok(res.headers.get('x-llmproxy-request-id'));
}

test('errors use the OpenAI shape and SPEC statuses', async () => {
  const auth = { authorization: 'Bearer ' + gw.masterKey,
                 'content-type': 'application/json' };
  const post = (body, headers = auth) => raw('/v1/chat/completions',
    { method: 'POST', headers, body });

  assertOpenAIError(await post('{"model":"gpt-test"}', {}), 401);
  assertOpenAIError(await post('{"model":"gpt-test"}',
    { authorization: 'Bearer sk-wrong' }), 401);
  assertOpenAIError(await post('{"model":"nope","messages":[]}'), 404);
  assertOpenAIError(await post('{"model": "gpt-test", "messages": [}'), 400);
  assertOpenAIError(await post('{"model": "gpt-test", "messa'), 400);
  assertOpenAIError(await post('{"messages":[]}'), 400);
  assertOpenAIError(await post('{"model":42}'), 400);
  assertOpenAIError(await post(''), 400);
  assertOpenAIError(await post('[1,2]'), 400);
  assertOpenAIError(await post(JSON.stringify({ model: 'gpt-test',
    messages: [{ role: 'user', content: 'x'.repeat(1100000) }] })), 413);
  assertOpenAIError(await raw('/v1/unknown', { method: 'POST',
                                               headers: auth }), 404);
  assertOpenAIError(await raw('/v1/chat/completions', { headers: auth }),
                    405);
});

test('the SDK sees typed errors', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'nope',
    messages: [] }), (e) => e instanceof OpenAI.NotFoundError);
  const bad = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-bad',
                           maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model: 'gpt-test',
    messages: [] }), (e) => e instanceof OpenAI.AuthenticationError);
});

test('an upstream 400 is returned as it is, never retried', async () => {
  mock.reset();
  mock.mode = 'badRequest';
  try {
    await assert.rejects(client.chat.completions.create({ model: 'gpt-test',
      messages: [] }), (e) => e.status === 400
        && /bad input from A/.test(e.message));
    assert.strictEqual(mock.requests.length, 1);
  } finally {
    mock.mode = 'ok';
  }
});

test('bad upstreams do not hurt the workers', async () => {
  for (const mode of ['garbage', 'closeMid']) {
    mock.mode = mode;
    const r = await fetch(gw.baseURL + '/chat/completions', {
      method: 'POST', headers: { authorization: 'Bearer ' + gw.masterKey },
      body: JSON.stringify({ model: 'gpt-test', messages: [] }) })
      .then(async (res) => ({ status: res.status, text: await res.text() }))
      .catch((e) => ({ error: e }));
    if (mode === 'garbage') {
      assert.strictEqual(r.status, 502, JSON.stringify(r));
    } else {
      // headers were sent already: the client sees a cut-off body
      assert.ok(r.error || r.text.length < 2000);
    }
  }
  mock.mode = 'ok';
  const ok = await client.chat.completions.create({ model: 'gpt-test',
    messages: [] });
  assert.strictEqual(ok.choices[0].message.content, 'hello from A');
  assert.deepStrictEqual(gw.workerPids(), pids, 'no worker was replaced');
});
