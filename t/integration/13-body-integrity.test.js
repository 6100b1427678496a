'use strict';
// One reading of the request body, the provider's (issue 11): a key held
// to one model cannot reach another, and a stream cannot go unbilled, by
// writing a member the gateway acts on twice, with escapes in its name, or
// under a name some parsers fold to it.  The mock provider parses bodies
// as the real ones do (JSON.parse: escapes decoded, the last duplicate
// wins), so what it received is what a provider would have served.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const OpenAI = require('openai');
const Anthropic = require('@anthropic-ai/sdk');
const { GoogleGenAI } = require('@google/genai');
const { startGateway, sleep, assertOpenAIError } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock } = require('../mocks/openai-mock');

let pg, gw, mock, key;

// the Gemini provider's key (the mock wants one) is stored encrypted
process.env.LLMPROXY_SALT_KEY = 'body-integrity-test-salt';

before(async () => {
  pg = await startPostgres();
  mock = await createMock({ name: 'b' });
  const priced = { input_cost_per_million: 100,
                   output_cost_per_million: 100 };
  gw = await startGateway({
    database: pg.url,
    httpExtra: 'llmproxy_usage_flush 100ms;',
    config: {
      providers: {
        po: { api_base: mock.url, interfaces: ['openai'], models: {
          allowed: { model: 'up-allowed', ...priced },
          secret: { model: 'up-secret' } } },
        pa: { api_base: mock.url, interfaces: ['anthropic'], models: {
          'a-allowed': { model: 'up-a-allowed', ...priced },
          'a-secret': { model: 'up-a-secret' } } },
        pg: { api_base: mock.url, interfaces: ['gemini'], api_key: 'gk',
          models: {
          'g-allowed': { model: 'up-g-allowed' },
          'g-secret': { model: 'up-g-secret' } } },
      },
    },
  });
  key = create('--alias', 'held', '--models', 'allowed,a-allowed,g-allowed');
  await until(async () => (await chat(key, { model: 'allowed',
                                             messages: MSG })).status === 200);
});

after(async () => {
  const problems = gw ? gw.problems() : [];
  if (gw) await gw.stop();
  if (mock) await mock.close();
  if (pg) pg.destroy();
  assert.deepStrictEqual(problems, []);
});

const MSG = [{ role: 'user', content: 'hi' }];

function create(...args) {
  const r = gw.ctl(['key', 'create', ...args]);
  assert.strictEqual(r.status, 0, r.stderr);
  return r.stdout.trim();
}

async function until(fn, ms = 5000) {
  const t0 = Date.now();
  for (;;) {
    try {
      if (await fn()) return;
    } catch (e) { /* not yet */ }
    if (Date.now() - t0 > ms) throw new Error('not within ' + ms + ' ms');
    await sleep(100);
  }
}

// raw HTTP: the bodies below are not what JSON.stringify can write
async function post(path, body, headers) {
  const r = await fetch(gw.url + path, { method: 'POST', body,
    headers: { 'content-type': 'application/json', ...headers } });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
  return { status: r.status, headers: r.headers, text, body: json };
}

const openai = (k, path, body) => post(path, body,
  { authorization: 'Bearer ' + k });
const chat = (k, obj) => openai(k, '/v1/chat/completions',
                                JSON.stringify(obj));
const anthropic = (path, body) => post(path, body,
  { 'x-api-key': key, 'anthropic-version': '2023-06-01' });
const gemini = (path, body) => post(path, body, { 'x-goog-api-key': key });

// `{"model":"A",` + rest: the gateway's reading stops at the first model
const withModel = (first, second, rest) =>
  `{"model":"${first}",${second},${rest}}`;

// a refusal: 400, nothing sent to the provider
async function refused(send, shape, what) {
  const before = mock.requests.length;
  const r = await send();
  if (shape === 'openai') {
    assertOpenAIError(r, 400, what);
  } else if (shape === 'anthropic') {
    assert.strictEqual(r.status, 400, `${what}: ${r.status} ${r.text}`);
    assert.strictEqual(r.body.type, 'error', what);
    assert.strictEqual(r.body.error.type, 'invalid_request_error', what);
    assert.strictEqual(typeof r.body.error.message, 'string', what);
  } else {
    assert.strictEqual(r.status, 400, `${what}: ${r.status} ${r.text}`);
    assert.strictEqual(r.body.error.code, 400, what);
    assert.strictEqual(r.body.error.status, 'INVALID_ARGUMENT', what);
  }
  assert.strictEqual(mock.requests.length, before,
    `${what}: reached the provider as ${JSON.stringify(mock.requests
      .slice(before).map((q) => q.raw))}`);
  return r;
}

const SECOND_MODELS = {
  'an escaped name': (m) => `"mod\\u0065l":"${m}"`,
  'a plain duplicate': (m) => `"model":"${m}"`,
  'an upper-case name': (m) => `"Model":"${m}"`,
  'a name with a NUL': (m) => `"model\\u0000":"${m}"`,
};

test('OpenAI: a second model member is refused on every endpoint',
async () => {
  const rests = {
    '/v1/chat/completions': '"messages":[{"role":"user","content":"hi"}]',
    '/v1/completions': '"prompt":"hi"',
    '/v1/embeddings': '"input":"hi"',
    '/v1/responses': '"input":"hi"',
  };
  for (const [path, rest] of Object.entries(rests)) {
    for (const [how, second] of Object.entries(SECOND_MODELS)) {
      const r = await refused(() => openai(key, path,
        withModel('allowed', second('secret'), rest)), 'openai',
      `${path}, ${how}`);
      assert.match(r.body.error.code, /^(duplicate|ambiguous)_member$/);
      assert.match(r.body.error.message, /model|control character/);
    }
  }
  // and the same bodies with one model are served, by the one allowed
  for (const [path, rest] of Object.entries(rests)) {
    const r = await openai(key, path, `{"model":"allowed",${rest}}`);
    assert.strictEqual(r.status, 200, `${path}: ${r.text}`);
    assert.strictEqual(mock.requests.at(-1).body.model, 'up-allowed');
  }
});

test('an escaped model name is the model: checked, and rewritten',
async () => {
  let r = await openai(key, '/v1/chat/completions',
    '{"\\u006dodel":"secret","messages":[{"role":"user","content":"hi"}]}');
  assert.strictEqual(r.status, 403, r.text);
  r = await openai(key, '/v1/chat/completions',
    '{"m\\u006fdel":"allowed","messages":[{"role":"user","content":"hi"}]}');
  assert.strictEqual(r.status, 200, r.text);
  assert.strictEqual(mock.requests.at(-1).body.model, 'up-allowed');
});

// a provider that decoded a "compressed" body would read other JSON than
// the gateway checked (a body can be valid JSON and a valid raw deflate
// stream at once): the body goes as the gateway read it, unlabelled
test('Content-Encoding is not passed on', async () => {
  for (const ce of ['deflate', 'gzip', 'br']) {
    const r = await post('/v1/chat/completions',
      '{"model":"allowed","messages":[]}',
      { authorization: 'Bearer ' + key, 'content-encoding': ce });
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual(mock.requests.at(-1).headers['content-encoding'],
                       undefined, ce);
  }
});

test('model names the gateway and a provider could read apart are refused',
async () => {
  for (const name of ['allowed\\u0000secret', 'allowed\\nx', 'allowed\\u0085',
                      'allowed\\ud800']) {
    await refused(() => openai(key, '/v1/chat/completions',
      `{"model":"${name}","messages":[]}`), 'openai', name);
  }
  await refused(() => openai(key, '/v1/chat/completions',
    Buffer.from('{"model":"allowed\xff","messages":[]}', 'latin1')),
  'openai', 'invalid UTF-8');
});

test('Anthropic: messages and count_tokens refuse a second model',
async () => {
  const rest = '"max_tokens":5,"messages":[{"role":"user","content":"hi"}]';
  for (const path of ['/v1/messages', '/v1/messages/count_tokens']) {
    for (const [how, second] of Object.entries(SECOND_MODELS)) {
      await refused(() => anthropic(path,
        withModel('a-allowed', second('a-secret'), rest)), 'anthropic',
      `${path}, ${how}`);
    }
    const r = await anthropic(path, `{"model":"a-allowed",${rest}}`);
    assert.strictEqual(r.status, 200, `${path}: ${r.text}`);
    assert.strictEqual(mock.requests.at(-1).body.model, 'up-a-allowed');
  }
});

test('Gemini: a model in the body is the checked one, or refused',
async () => {
  const contents = '"contents":[{"role":"user","parts":[{"text":"hi"}]}]';
  const base = '/v1beta/models/g-allowed:';

  // generateContent: a "model" member reaches the provider as the URL's
  mock.reset();
  await gemini(base + 'generateContent',
    `{"model":"models/up-g-secret",${contents}}`);
  assert.strictEqual(mock.requests[0].body.model, 'models/up-g-allowed');

  // countTokens: generateContentRequest.model too
  mock.reset();
  await gemini(base + 'countTokens', '{"generateContentRequest":'
    + `{"model":"models/up-g-secret",${contents}}}`);
  assert.strictEqual(mock.requests[0].body.generateContentRequest.model,
                     'models/up-g-allowed');

  // batchEmbedContents: every model of the body, in any order
  mock.reset();
  const part = '"content":{"parts":[{"text":"hi"}]}';
  const rb = await gemini(base + 'batchEmbedContents',
    `{"requests":[{"model":"models/a",${part}},{${part},"mod\\u0065l":`
    + `"models/b"}],"model":"models/up-g-secret"}`);
  assert.strictEqual(rb.status, 200, rb.text);
  assert.deepStrictEqual([mock.requests[0].body.model,
    ...mock.requests[0].body.requests.map((q) => q.model)],
  Array(3).fill('models/up-g-allowed'), mock.requests[0].raw);

  // embedContent, batchEmbedContents' requests[]: a second model refused
  for (const [how, second] of Object.entries(SECOND_MODELS)) {
    await refused(() => gemini(base + 'embedContent',
      withModel('models/g-allowed', second('models/up-g-secret'),
                '"content":{"parts":[{"text":"hi"}]}')),
    'gemini', `embedContent, ${how}`);
    await refused(() => gemini(base + 'batchEmbedContents',
      '{"requests":[' + withModel('models/g-allowed',
        second('models/up-g-secret'), '"content":{"parts":[{"text":"hi"}]}')
      + ']}'), 'gemini', `batchEmbedContents, ${how}`);
    await refused(() => gemini(base + 'countTokens',
      '{"generateContentRequest":' + withModel('models/g-allowed',
        second('models/up-g-secret'), contents) + '}'),
    'gemini', `countTokens, ${how}`);
  }
  await refused(() => gemini(base + 'countTokens',
    `{"generate_content_request":{"model":"models/up-g-secret",${contents}}}`),
  'gemini', 'countTokens, generate_content_request');
  await refused(() => gemini(base + 'batchEmbedContents',
    '{"requests":[],"requ\\u0065sts":[]}'), 'gemini', 'requests twice');

  // the SDK's own calls still work, with the model written by the gateway
  const g = new GoogleGenAI({ apiKey: key,
    httpOptions: { baseUrl: gw.url } });
  mock.reset();
  const e = await g.models.embedContent({ model: 'g-allowed',
    contents: ['a', 'b'] });
  assert.strictEqual(e.embeddings.length, 2);
  assert.ok(mock.requests[0].body.requests.every((q) =>
    q.model === 'models/up-g-allowed'), mock.requests[0].raw);
  const c = await g.models.countTokens({ model: 'g-allowed',
                                         contents: 'hi' });
  assert.strictEqual(typeof c.totalTokens, 'number');
  const t = await g.models.generateContent({ model: 'g-allowed',
                                             contents: 'hi' });
  assert.match(t.text, /hello/);
});

// a key with a budget that one answer exceeds: a stream the gateway
// serves must be billed, so the request after it is refused with 429
async function billedOrRefused(body, expect, what) {
  const k = create('--max-budget', '0.00001');
  // a body with no model costs nothing: 400 once the gateway knows the key
  await until(async () => (await openai(k, '/v1/chat/completions', '{}'))
    .status === 400);
  if (expect === 'refused') {
    const r = await refused(() => openai(k, '/v1/chat/completions', body),
                            'openai', what);
    assert.match(r.body.error.code,
                 /^((duplicate|ambiguous)_member|invalid_stream)$/, what);
    return;
  }
  const r = await openai(k, '/v1/chat/completions', body);
  assert.strictEqual(r.status, 200, `${what}: ${r.text}`);
  assert.match(r.text, /^data: /, `${what}: not a stream`);
  const sent = mock.requests.at(-1);
  assert.strictEqual(sent.body.stream_options.include_usage, true,
    `${what}: the provider was not asked for usage: ${sent.raw}`);
  let next;
  for (let i = 0; i < 20; i++) {
    next = await chat(k, { model: 'allowed', messages: MSG });
    if (next.status === 429) break;
    await sleep(100);
  }
  assert.strictEqual(next.status, 429, `${what}: the stream was not billed`);
}

test('streams: an escaped or odd stream member cannot skip billing',
async () => {
  const m = '"model":"allowed","messages":[{"role":"user","content":"hi"}]';
  const cases = [
    ['billed', 'an escaped stream name', `{${m},"stre\\u0061m":true}`],
    ['billed', 'include_usage only in a string', `{${m},"stream":true,`
      + '"stream_options":{"x":"\\"include_usage\\":true"}}'],
    ['billed', 'include_usage false', `{${m},"stream":true,`
      + '"stream_options":{"include_usage":false}}'],
    ['billed', 'stream_options before the model',
     '{"stream_options":{"include_usage":null},"stream":true,' + m + '}'],
    ['refused', 'include_usage twice', `{${m},"stream":true,`
      + '"stream_options":{"include_usage":true,"include_usage":false}}'],
    ['refused', 'an escaped second include_usage', `{${m},"stream":true,`
      + '"stream_options":{"include_usage":true,'
      + '"include\\u005fusage":false}}'],
    ['refused', 'stream_options twice', `{${m},"stream":true,`
      + '"stream_options":{"include_usage":true},"stream_options":{}}'],
    ['refused', 'streamOptions', `{${m},"stream":true,"stream_options":`
      + '{"include_usage":true},"streamOptions":{"include_usage":false}}'],
    ['refused', 'stream twice', `{${m},"stream":false,"stream":true}`],
    ['refused', 'stream as a number', `{${m},"stream":1}`],
    ['refused', 'stream as a string', `{${m},"stream":"true"}`],
  ];
  for (const [expect, what, body] of cases) {
    await billedOrRefused(body, expect, what);
  }
});

// before issue 11 this stream was billed too, from the held answer: but
// held, not relayed as it came, as the gateway did not see a stream
test('Anthropic: an escaped stream name is a stream, relayed and billed',
async () => {
  const k = create('--max-budget', '0.00001');
  await until(async () => (await openai(k, '/v1/chat/completions', '{}'))
    .status === 400);
  const r = await post('/v1/messages', '{"model":"a-allowed","max_tokens":5,'
    + '"messages":[{"role":"user","content":"hi"}],"str\\u0065am":true}',
  { 'x-api-key': k, 'anthropic-version': '2023-06-01' });
  assert.strictEqual(r.status, 200, r.text);
  assert.match(r.text, /^event: message_start/);
  assert.strictEqual(r.headers.get('x-llmproxy-response-cost'), null,
                     'held as a non-streamed answer (cost in its headers)');
  let next;
  for (let i = 0; i < 20; i++) {
    next = await chat(k, { model: 'allowed', messages: MSG });
    if (next.status === 429) break;
    await sleep(100);
  }
  assert.strictEqual(next.status, 429, 'the stream was not billed');
});

test('the SDKs: streamed usage is asked for, counted and hidden as before',
async () => {
  const o = new OpenAI({ baseURL: gw.baseURL, apiKey: key, maxRetries: 0 });
  for (const so of [undefined, { include_usage: false },
                    { include_usage: true }]) {
    mock.reset();
    const s = await o.chat.completions.create({ model: 'allowed',
      messages: MSG, stream: true, ...(so ? { stream_options: so } : {}) });
    let usage = null, text = '';
    for await (const c of s) {
      if (c.usage) usage = c.usage;
      text += (c.choices[0] && c.choices[0].delta.content) || '';
    }
    assert.match(text, /c0/);
    const sent = mock.requests[0];
    assert.strictEqual(sent.body.stream_options.include_usage, true,
                       sent.raw);
    assert.strictEqual((sent.raw.match(/include_usage/g) || []).length, 1,
                       sent.raw);
    assert.strictEqual(!!usage, !!(so && so.include_usage),
                       JSON.stringify(so));
  }
  const a = new Anthropic({ baseURL: gw.url, apiKey: key, maxRetries: 0 });
  const m = await a.messages.create({ model: 'a-allowed', max_tokens: 5,
                                      messages: MSG });
  assert.strictEqual(m.type, 'message');
  const st = await a.messages.create({ model: 'a-allowed', max_tokens: 5,
                                       messages: MSG, stream: true });
  let n = 0;
  for await (const ev of st) n += ev.type === 'message_stop';
  assert.strictEqual(n, 1);
  const ct = await a.messages.countTokens({ model: 'a-allowed',
                                           messages: MSG });
  assert.strictEqual(typeof ct.input_tokens, 'number');
});
