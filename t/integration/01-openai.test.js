'use strict';
// The OpenAI interface through the official `openai` SDK (SPEC §5, §6.6):
// pass-through with model and credential rewriting, response headers,
// every endpoint with and without /v1, models and health, errors in
// OpenAI's shape with SPEC statuses, and a gateway that survives bad input
// and bad upstreams with the same worker processes.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const OpenAI = require('openai');
const { startGateway, assertCleanErrorLog, raw, assertOpenAIError } =
  require('../lib/gateway');
const { createMock } = require('../mocks/openai-mock');
const { postJSON } = require('../lib/http');

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
          headers: { 'X-Extra': 'yes', 'X-Team': 'blue' },
          models: { 'gpt-test': { model: 'upstream-gpt',
                                  input_cost_per_million: 1.25,
                                  output_cost_per_million: 10 },
                    'embed-test': {} },
        },
        // api_base ending in /v1, and with a path prefix
        mockV1: { api_base: mock.url + '/v1', interfaces: ['openai'],
                  api_key: 'sk-upstream-secret',
                  models: { 'gpt-v1': { model: 'upstream-gpt' } } },
        mockPrefix: { api_base: mock.url + '/proxy/openai',
                      interfaces: ['openai'], api_key: 'sk-upstream-secret',
                      models: { 'gpt-prefix': {} } },
      },
      aliases: { 'gpt-alias': 'gpt-test' },
    },
    settings: { num_retries: 1, allowed_fails: 3, cooldown_seconds: 5,
                request_timeout_seconds: 5 },
  });
  client = new OpenAI({ baseURL: gw.baseURL, apiKey: gw.masterKey,
                        maxRetries: 0, timeout: 30000 });
  pids = gw.workerPids();
  assert.strictEqual(pids.length, 2, 'two workers run');
});

after(async () => {
  if (!gw) return;
  const problems = gw.problems();
  await gw.stop();
  await mock.close();
  assert.deepStrictEqual(problems, [], 'error.log alerts/crashes');
});

function assertNoClientKey(seen) {
  for (const [k, v] of Object.entries(seen.headers)) {
    assert.ok(!String(v).includes(gw.masterKey),
              `the client key reached the provider in header ${k}`);
  }
  assert.ok(!seen.url.includes(gw.masterKey), 'client key in upstream URL');
  assert.ok(!seen.raw.includes(gw.masterKey), 'client key in upstream body');
}

test('chat completion: upstream model name, provider key, extra headers',
  async () => {
    mock.reset();
    const { data, response } = await client.chat.completions.create({
      model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }],
      temperature: 0.5,
    }).withResponse();
    assert.strictEqual(data.choices[0].message.content, 'hello from A');
    assert.strictEqual(data.model, 'upstream-gpt');
    assert.deepStrictEqual(data.usage, { prompt_tokens: 11,
      completion_tokens: 7, total_tokens: 18 });
    assert.strictEqual(response.headers.get('x-mock-name'), 'A');

    assert.strictEqual(mock.requests.length, 1);
    const seen = mock.requests[0];
    assert.strictEqual(seen.method, 'POST');
    assert.strictEqual(seen.path, '/v1/chat/completions');
    assert.strictEqual(seen.body.model, 'upstream-gpt');
    assert.deepStrictEqual(seen.body.messages,
                           [{ role: 'user', content: 'hi' }]);
    assert.strictEqual(seen.body.temperature, 0.5, 'other fields kept');
    assert.strictEqual(seen.headers.authorization,
                       'Bearer sk-upstream-secret');
    assert.strictEqual(seen.headers['x-extra'], 'yes');
    assert.strictEqual(seen.headers['x-team'], 'blue');
    assertNoClientKey(seen);

    const id = response.headers.get('x-llmproxy-request-id');
    assert.ok(id && id.length > 0, 'x-llmproxy-request-id');
    assert.strictEqual(response.headers.get('x-llmproxy-model'),
                       'mockA/gpt-test');
    assert.strictEqual(response.headers.get('x-llmproxy-attempted-fallbacks'),
                       '0');
    assert.strictEqual(response.headers.get('x-llmproxy-attempted-retries'),
                       '0');
    assert.match(response.headers.get('x-llmproxy-overhead-duration-ms') || '',
                 /^\d+(\.\d+)?$/);
  });

test('the client key never reaches the provider, whatever carries it',
  async () => {
    const body = JSON.stringify({ model: 'gpt-test', messages: [] });
    const carriers = [
      { authorization: 'Bearer ' + gw.masterKey },
      { 'x-api-key': gw.masterKey }, { 'x-goog-api-key': gw.masterKey },
      { 'api-key': gw.masterKey }, { 'x-litellm-api-key': gw.masterKey },
    ];
    for (const h of carriers) {
      mock.reset();
      const r = await raw(gw.baseURL + '/chat/completions', { method: 'POST',
        headers: { 'content-type': 'application/json', ...h }, body });
      assert.strictEqual(r.status, 200, Object.keys(h)[0] + ': ' + r.text);
      assert.strictEqual(mock.requests.length, 1);
      assertNoClientKey(mock.requests[0]);
      assert.strictEqual(mock.requests[0].headers.authorization,
                         'Bearer sk-upstream-secret');
    }
    mock.reset();
    const r = await raw(gw.baseURL + '/chat/completions?key=' + gw.masterKey,
                        { method: 'POST', body });
    assert.strictEqual(r.status, 200, '?key=: ' + r.text);
    assertNoClientKey(mock.requests[0]);
  });

test('a client cannot pick the billed account or the method upstream',
  async () => {
    const body = JSON.stringify({ model: 'gpt-test', messages: [] });
    const picked = { 'openai-organization': 'org-attacker',
      'openai-project': 'proj-attacker', 'x-goog-user-project': 'attacker',
      'x-http-method-override': 'DELETE', 'x-http-method': 'DELETE',
      'x-method-override': 'DELETE' };
    mock.reset();
    const r = await raw(gw.baseURL + '/chat/completions', { method: 'POST',
      headers: { 'content-type': 'application/json',
                 authorization: 'Bearer ' + gw.masterKey,
                 'x-client-note': 'kept', ...picked }, body });
    assert.strictEqual(r.status, 200, r.text);
    const seen = mock.requests[0];
    for (const h of Object.keys(picked)) {
      assert.strictEqual(seen.headers[h], undefined, h + ' reached it');
    }
    assert.strictEqual(seen.headers['x-client-note'], 'kept');
    assert.strictEqual(seen.headers['x-extra'], 'yes', 'config headers');
  });

test('request ids are non-empty and unique per request', async () => {
  const ids = [];
  for (let i = 0; i < 5; i++) {
    const { response } = await client.chat.completions.create({
      model: 'gpt-test', messages: [] }).withResponse();
    ids.push(response.headers.get('x-llmproxy-request-id'));
    const h = await fetch(gw.url + '/health/liveliness');
    await h.arrayBuffer();
    ids.push(h.headers.get('x-llmproxy-request-id'));
  }
  for (const id of ids) assert.ok(id && id.length > 0, 'request id present');
  assert.strictEqual(new Set(ids).size, ids.length, 'ids: ' + ids.join(' '));
});

test('completions, embeddings and responses pass through', async () => {
  mock.reset();
  const c = await client.completions.create({ model: 'gpt-test',
                                              prompt: 'say hi' });
  assert.strictEqual(c.choices[0].text, 'hi');
  assert.strictEqual(c.model, 'upstream-gpt');
  const e = await client.embeddings.create({ model: 'embed-test',
                                             input: 'x' });
  assert.strictEqual(e.data[0].embedding.length, 3);
  assert.ok(Math.abs(e.data[0].embedding[0] - 0.1) < 1e-6);
  const r = await client.responses.create({ model: 'gpt-test', input: 'hi' });
  assert.strictEqual(r.output_text, 'hi');
  assert.deepStrictEqual(mock.requests.map((q) => q.path),
    ['/v1/completions', '/v1/embeddings', '/v1/responses']);
  assert.deepStrictEqual(mock.requests.map((q) => q.body.model),
    ['upstream-gpt', 'embed-test', 'upstream-gpt']);
  for (const q of mock.requests) {
    assert.strictEqual(q.headers.authorization, 'Bearer sk-upstream-secret');
    assertNoClientKey(q);
  }
});

test('every endpoint also works without the /v1 prefix', async () => {
  const auth = { authorization: 'Bearer ' + gw.masterKey,
                 'content-type': 'application/json' };
  const cases = [
    ['/chat/completions', { model: 'gpt-test', messages: [] }],
    ['/completions', { model: 'gpt-test', prompt: 'x' }],
    ['/embeddings', { model: 'embed-test', input: 'x' }],
    ['/responses', { model: 'gpt-test', input: 'x' }],
  ];
  for (const [p, body] of cases) {
    mock.reset();
    const r = await raw(gw.url + p, { method: 'POST', headers: auth,
                                      body: JSON.stringify(body) });
    assert.strictEqual(r.status, 200, p + ': ' + r.text);
    assert.strictEqual(r.headers.get('x-mock-name'), 'A', p);
    assert.ok(r.headers.get('x-llmproxy-request-id'), p);
    assert.strictEqual(mock.requests.length, 1, p);
    assert.strictEqual(mock.requests[0].path, '/v1' + p);
  }
  const m = await raw(gw.url + '/models', { headers: auth });
  assert.strictEqual(m.status, 200, '/models: ' + m.text);
  assert.strictEqual(m.body.object, 'list');
});

test('api_base with /v1 or a path prefix: the endpoint path is appended',
  async () => {
    mock.reset();
    const a = await client.chat.completions.create({ model: 'gpt-v1',
                                                     messages: [] });
    assert.strictEqual(a.choices[0].message.content, 'hello from A');
    const b = await client.embeddings.create({ model: 'gpt-prefix',
                                               input: 'x' });
    assert.strictEqual(b.data.length, 1);
    assert.deepStrictEqual(mock.requests.map((q) => q.path),
      ['/v1/chat/completions', '/proxy/openai/v1/embeddings']);
  });

test('request ids are unique across both workers', async () => {
  const ids = [];
  for (let i = 0; i < 10; i++) {
    const rs = await Promise.all([0, 1, 2, 3].map(() => postJSON(
      gw.baseURL + '/chat/completions', gw.masterKey,
      { model: 'gpt-test', messages: [] })));
    for (const r of rs) {
      assert.strictEqual(r.status, 200, r.text);
      ids.push(r.headers['x-llmproxy-request-id']);
    }
  }
  await new Promise((res) => setTimeout(res, 100));
  const pidsSeen = new Set(gw.accessLog().map((l) => l.pid));
  assert.ok(pidsSeen.size >= 2, 'both workers answered some');
  assert.ok(ids.every(Boolean));
  assert.strictEqual(new Set(ids).size, ids.length, 'duplicate request ids');
});

test('GET /v1/models lists models and aliases; /v1/models/{id}',
  async () => {
    const ids = [];
    for await (const m of client.models.list()) {
      ids.push(m.id);
      assert.strictEqual(m.object, 'model');
    }
    assert.deepStrictEqual(ids.sort(), ['embed-test', 'gpt-alias',
                                        'gpt-prefix', 'gpt-test', 'gpt-v1']);
    const one = await client.models.retrieve('gpt-test');
    assert.strictEqual(one.id, 'gpt-test');
    assert.strictEqual(one.object, 'model');
    const alias = await client.models.retrieve('gpt-alias');
    assert.strictEqual(alias.id, 'gpt-alias');
    await assert.rejects(client.models.retrieve('nope'),
                         (e) => e.status === 404);
    const r = await raw(gw.baseURL + '/models');
    assertOpenAIError(r, 401, 'GET /v1/models without key');
  });

test('health endpoints answer 200 without a key', async () => {
  for (const p of ['/health/liveliness', '/health/readiness']) {
    const r = await raw(gw.url + p);
    assert.strictEqual(r.status, 200, p + ': ' + r.text);
    assert.ok(r.headers.get('x-llmproxy-request-id'), p);
  }
});

test('errors use the OpenAI shape and SPEC statuses', async () => {
  const auth = { authorization: 'Bearer ' + gw.masterKey,
                 'content-type': 'application/json' };
  const post = (body, headers = auth, p = '/v1/chat/completions') =>
    raw(gw.url + p, { method: 'POST', headers, body });
  const ok = '{"model":"gpt-test","messages":[]}';

  assertOpenAIError(await post(ok, { 'content-type': 'application/json' }),
                    401, 'no key');
  assertOpenAIError(await post(ok, { authorization: 'Bearer sk-wrong' }),
                    401, 'wrong key');
  assertOpenAIError(await post(ok, { authorization: 'Bearer '
                                     + gw.masterKey + 'x' }),
                    401, 'master key with a suffix');
  assertOpenAIError(await post(ok, { authorization: 'Bearer ' }),
                    401, 'empty bearer');
  assertOpenAIError(await post('{"model":"nope","messages":[]}'), 404,
                    'unknown model');
  assertOpenAIError(await post('{"model":"mockA/nope","messages":[]}'), 404,
                    'unknown PROVIDER/MODEL');
  assertOpenAIError(await post('{"model": "gpt-test", "messages": [}'), 400,
                    'malformed JSON');
  assertOpenAIError(await post('{"model": "gpt-test", "messa'), 400,
                    'truncated JSON');
  assertOpenAIError(await post('{"messages":[]}'), 400, 'no model');
  assertOpenAIError(await post('{"model":42,"messages":[]}'), 400,
                    'non-string model');
  assertOpenAIError(await post('{"model":null,"messages":[]}'), 400,
                    'null model');
  assertOpenAIError(await post(''), 400, 'empty body');
  assertOpenAIError(await post('[1,2]'), 400, 'array body');
  assertOpenAIError(await post('{"model":"gpt-test"} trailing'), 400,
                    'trailing garbage');
  assertOpenAIError(await post(JSON.stringify({ model: 'gpt-test',
    messages: [{ role: 'user', content: 'x'.repeat(1100000) }] })), 413,
  'body over llmproxy_max_body_size');
  assertOpenAIError(await raw(gw.url + '/v1/unknown', { method: 'POST',
    headers: auth, body: ok }), 404, 'unknown path');
  assertOpenAIError(await raw(gw.url + '/nothing/here', { headers: auth }),
                    404, 'unknown path, GET');
  const get = await raw(gw.baseURL + '/chat/completions', { headers: auth });
  assertOpenAIError(get, get.status === 404 ? 404 : 405,
                    'GET on a POST endpoint');
});

test('the SDK sees typed errors', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'nope',
    messages: [] }), (e) => e instanceof OpenAI.NotFoundError);
  const bad = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-bad',
                           maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model: 'gpt-test',
    messages: [] }), (e) => e instanceof OpenAI.AuthenticationError);
  await assert.rejects(client.chat.completions.create({ model: 'gpt-test',
    messages: [{ role: 'user', content: 'y'.repeat(1100000) }] }),
  (e) => e.status === 413);
});

test('non-streamed responses carry the cost of the request', async () => {
  const { response } = await client.chat.completions.create({
    model: 'gpt-test', messages: [] }).withResponse();
  // usage 11 prompt + 7 completion tokens at 1.25 / 10 USD per million
  const cost = Number(response.headers.get('x-llmproxy-response-cost'));
  assert.ok(Math.abs(cost - (11 * 1.25 + 7 * 10) / 1e6) < 1e-9,
            'x-llmproxy-response-cost: '
            + response.headers.get('x-llmproxy-response-cost'));
  assert.match(response.headers.get('x-llmproxy-key-spend') || '',
               /^\d+(\.\d+)?(e-?\d+)?$/, 'x-llmproxy-key-spend');
});

test('a body near the size limit reaches the provider intact', async () => {
  // bigger than nginx keeps in memory: read back from a temp file
  mock.reset();
  const content = 'z'.repeat(900 * 1024);
  const r = await client.chat.completions.create({ model: 'gpt-test',
    messages: [{ role: 'user', content }] });
  assert.strictEqual(r.choices[0].message.content, 'hello from A');
  assert.strictEqual(mock.requests.length, 1);
  assert.strictEqual(mock.requests[0].body.messages[0].content, content);
  assert.strictEqual(mock.requests[0].body.model, 'upstream-gpt');
});

test('a chunked request body is read whole', async () => {
  mock.reset();
  const parts = ['{"model":', '"gpt-test",', '"messages":[{"role":"user",',
                 '"content":"chunked"}]}'];
  const body = new ReadableStream({
    async pull(c) {
      if (parts.length === 0) return c.close();
      c.enqueue(new TextEncoder().encode(parts.shift()));
      await new Promise((r) => setTimeout(r, 20));
    },
  });
  const r = await raw(gw.baseURL + '/chat/completions', { method: 'POST',
    headers: { authorization: 'Bearer ' + gw.masterKey,
               'content-type': 'application/json' },
    body, duplex: 'half' });
  assert.strictEqual(r.status, 200, r.text);
  assert.strictEqual(mock.requests[0].body.messages[0].content, 'chunked');
});

test('a large response passes intact', async () => {
  const big = 'abcdefghij'.repeat(200 * 1024);   // 2 MB
  mock.content = big;
  try {
    const r = await client.chat.completions.create({ model: 'gpt-test',
                                                     messages: [] });
    assert.strictEqual(r.choices[0].message.content.length, big.length);
    assert.ok(r.choices[0].message.content === big, 'content differs');
  } finally {
    mock.content = undefined;
  }
});

test('the ?key= parameter and the key never reach the logs', async () => {
  const r = await raw(gw.baseURL + '/chat/completions?key=' + gw.masterKey,
    { method: 'POST', body: '{"model":"nope-404","messages":[]}' });
  assert.strictEqual(r.status, 404, r.text);
  await new Promise((res) => setTimeout(res, 200));
  const access = require('node:fs').readFileSync(gw.dir + '/access.log',
                                                 'utf8');
  const leaks = [
    ...gw.errorLog().split('\n').filter((l) => l.includes(gw.masterKey))
      .map((l) => 'error.log: ' + l),
    ...access.split('\n').filter((l) => l.includes(gw.masterKey))
      .map((l) => 'access.log ($request): ' + l),
  ];
  assert.deepStrictEqual(leaks, [], 'the master key was logged');
});

test('an upstream 400 is returned as it is, never retried', async () => {
  mock.reset();
  mock.mode = 'badRequest400';
  try {
    const r = await raw(gw.baseURL + '/chat/completions', { method: 'POST',
      headers: { authorization: 'Bearer ' + gw.masterKey },
      body: JSON.stringify({ model: 'gpt-test', messages: [] }) });
    assert.strictEqual(r.status, 400, r.text);
    assert.deepStrictEqual(r.body, { error: { message: 'bad input from A',
      type: 'invalid_request_error', code: 'bad' } });
    assert.ok(r.headers.get('x-llmproxy-request-id'));
    assert.strictEqual(mock.requests.length, 1, 'exactly one upstream try');
    mock.reset();
    await assert.rejects(client.chat.completions.create({ model: 'gpt-test',
      messages: [] }), (e) => e instanceof OpenAI.BadRequestError
        && /bad input from A/.test(e.message));
    assert.strictEqual(mock.requests.length, 1, 'exactly one upstream try');
  } finally {
    mock.mode = 'ok';
  }
});

test('bad upstreams (garbage, cut-off body) do not hurt the workers',
  async () => {
    const call = () => fetch(gw.baseURL + '/chat/completions', {
      method: 'POST', headers: { authorization: 'Bearer ' + gw.masterKey },
      body: JSON.stringify({ model: 'gpt-test', messages: [] }) })
      .then(async (res) => ({ status: res.status, text: await res.text(),
                              id: res.headers.get('x-llmproxy-request-id') }))
      .catch((e) => ({ error: e }));
    try {
      mock.mode = 'garbage';
      for (let i = 0; i < 4; i++) {
        const r = await call();
        assert.strictEqual(r.status, 502, JSON.stringify(r));
        assert.ok(r.id, 'x-llmproxy-request-id on the 502');
        assert.ok(JSON.parse(r.text).error, r.text);
      }
      mock.mode = 'closeMid';
      for (let i = 0; i < 4; i++) {
        const r = await call();
        // either the gateway noticed before answering (502) or it had sent
        // the headers already and the client sees a cut-off body
        if (!r.error) {
          assert.ok(r.status === 502 || r.text.length < 2000,
                    JSON.stringify(r));
        }
      }
    } finally {
      mock.mode = 'ok';
    }
    // the same workers still serve, in both the SDK and raw form
    for (let i = 0; i < 6; i++) {
      const ok = await client.chat.completions.create({ model: 'gpt-test',
                                                        messages: [] });
      assert.strictEqual(ok.choices[0].message.content, 'hello from A');
    }
    const h = await raw(gw.url + '/health/liveliness');
    assert.strictEqual(h.status, 200);
    assert.deepStrictEqual(gw.workerPids(), pids, 'no worker was replaced');
  });
