'use strict';
// Streams billed and ended honestly, and timeouts that let fallback work
// (issues 13 and 14; SPEC sections 4 and 8), with the official SDKs
// against real nginx and PostgreSQL:
//
// - a client that leaves a stream is billed: the gateway reads the
//   provider's stream on (llmproxy_stream_drain_timeout) for its usage,
//   or estimates the output from the text streamed and marks the record;
//   the record says 499 client_closed;
// - a stream the provider cuts or stalls ends with the error event of the
//   client's interface, which each SDK raises, and its record carries the
//   error code;
// - first_byte_timeout_seconds makes a hanging provider a failed attempt,
//   so the fallback answers in seconds, while an answer that started in
//   time may take longer to arrive whole.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const OpenAI = require('openai');
const Anthropic = require('@anthropic-ai/sdk');
const { GoogleGenAI } = require('@google/genai');
const { startGateway, until } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock } = require('../mocks/openai-mock');

const IN_PRICE = 3, OUT_PRICE = 15;           // USD per million tokens
const PRICES = { input_cost_per_million: IN_PRICE,
                 output_cost_per_million: OUT_PRICE };
const cost = (p, c) => (p * IN_PRICE + c * OUT_PRICE) / 1e6;
const DRAIN_MS = 3000;

let pg, gw, key, m = {};

before(async () => {
  pg = await startPostgres();
  // 30 chunks 40 ms apart: the stream goes on for a second after the
  // client left, then sends its usage
  m.long = await createMock({ name: 'long', delay: 40, chunks: 30,
    usage: { prompt_tokens: 100, completion_tokens: 300 } });
  // the same, but its usage never comes
  m.nousage = await createMock({ name: 'nousage', delay: 40, chunks: 30,
                                 noUsage: true });
  // longer than the drain: cut when it runs out
  m.endless = await createMock({ name: 'endless', delay: 50, chunks: 400,
    usage: { prompt_tokens: 100, completion_tokens: 400 } });
  m.anthropic = await createMock({ name: 'anth', delay: 40,
    content: 'abcd'.repeat(30),
    usage: { prompt_tokens: 50, completion_tokens: 77 } });
  m.cut = await createMock({ name: 'cut', mode: 'closeMid' });
  m.stall = await createMock({ name: 'stall', mode: 'stall' });
  m.hang = await createMock({ name: 'hang', mode: 'hang' });
  m.quick = await createMock({ name: 'quick' });
  m.slowbody = await createMock({ name: 'slowbody', mode: 'slowBody',
                                  delay: 1500 });
  const ALL = ['openai', 'anthropic', 'gemini'];
  gw = await startGateway({
    database: pg.url,
    workers: 1,
    httpExtra: 'llmproxy_usage_flush 100ms; llmproxy_stream_drain_timeout '
               + DRAIN_MS + 'ms;',
    config: {
      providers: {
        long: { api_base: m.long.url, interfaces: ['openai'],
                models: { 'long-o': PRICES } },
        nousage: { api_base: m.nousage.url, interfaces: ['openai'],
                   models: { 'nousage-o': PRICES } },
        endless: { api_base: m.endless.url, interfaces: ['openai'],
                   models: { 'endless-o': PRICES } },
        anth: { api_base: m.anthropic.url, interfaces: ['anthropic'],
                models: { 'claude-a': PRICES } },
        cut: { api_base: m.cut.url, interfaces: ['openai'],
               models: { 'cut-o': PRICES } },
        // a model's own idle timeout over the settings' 30 s
        stall: { api_base: m.stall.url, interfaces: ALL,
                 models: { 'stall-o': { stream_idle_timeout_seconds: 1 } } },
        // a model's own first-byte timeout over the settings' 30 s
        hang: { api_base: m.hang.url, interfaces: ALL,
                models: { slowpoke: { first_byte_timeout_seconds: 1 } } },
        quick: { api_base: m.quick.url, interfaces: ['openai'],
                 models: { quick: {} } },
        slowbody: { api_base: m.slowbody.url, interfaces: ['openai'],
                    models: { slowbody: { first_byte_timeout_seconds: 1 } } },
      },
      fallbacks: { slowpoke: ['quick'] },
      settings: { num_retries: 0, first_byte_timeout_seconds: 30,
                  stream_idle_timeout_seconds: 30 },
    },
  });
  const r = gw.ctl(['key', 'create', '--alias', 'streams']);
  assert.strictEqual(r.status, 0, r.stderr);
  key = r.stdout.trim();
  await until(async () => {
    try {
      await openai().chat.completions.create({ model: 'quick',
        messages: [{ role: 'user', content: 'hi' }] });
      return true;
    } catch (e) { return false; }
  });
});

after(async () => {
  const problems = gw ? gw.problems() : [];
  if (gw) await gw.stop();
  for (const x of Object.values(m)) await x.close();
  if (pg) pg.destroy();
  assert.deepStrictEqual(problems, []);
});

const openai = () => new OpenAI({ baseURL: gw.baseURL, apiKey: key,
                                  maxRetries: 0 });
const anthropic = () => new Anthropic({ baseURL: gw.url, apiKey: key,
                                        maxRetries: 0 });
const gemini = () => new GoogleGenAI({ apiKey: key,
                                       httpOptions: { baseUrl: gw.url } });

// status|prompt|completion|cost|error|estimated|latency_ms of a request
async function record(id) {
  const row = await until(() => pg.psql(
    'SELECT status, prompt_tokens, completion_tokens, cost,'
    + " coalesce(error, ''), usage_estimated, latency_ms"
    + ` FROM llmproxy_usage WHERE request_id = '${id}'`));
  const [status, prompt, completion, c, error, estimated, latency] =
    row.split('|');
  return { status: Number(status), prompt: Number(prompt),
           completion: Number(completion), cost: Number(c), error,
           estimated: estimated === 't', latency: Number(latency) };
}

const spend = () => Number(pg.psql(
  "SELECT spend FROM llmproxy_keys WHERE alias = 'streams'"));

// an OpenAI stream the client aborts after `after` chunks
async function leaveOpenAI(model, after = 2) {
  const ac = new AbortController();
  const { data: stream, response } = await openai().chat.completions.create(
    { model, stream: true, messages: [{ role: 'user', content: 'hi' }] },
    { signal: ac.signal }).withResponse();
  let n = 0;
  try {
    for await (const c of stream) {
      assert.ok(c.choices);
      if (++n === after) ac.abort();
    }
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIUserAbortError
              || e.name === 'AbortError', String(e));
  }
  assert.strictEqual(n, after, 'the client left after ' + after + ' chunks');
  return response.headers.get('x-llmproxy-request-id');
}

test('a client that leaves an OpenAI stream before its usage chunk is '
     + 'billed with the provider\'s usage, status 499', async () => {
  const before = spend();
  const id = await leaveOpenAI('long-o');
  const r = await record(id);
  assert.deepStrictEqual([r.status, r.error, r.prompt, r.completion,
                          r.estimated],
                         [499, 'client_closed', 100, 300, false]);
  assert.strictEqual(r.cost, cost(100, 300));
  // the mock went on to the end: the gateway read it
  assert.ok(r.latency >= 900 && r.latency < DRAIN_MS, 'latency '
            + r.latency);
  await until(() => Math.abs(spend() - before - cost(100, 300)) < 1e-9);
});

test('a stream whose usage never comes: the output is estimated from the '
     + 'text streamed, and the record says so', async () => {
  const id = await leaveOpenAI('nousage-o');
  const r = await record(id);
  // the text of c0 ... c29 is 80 bytes: 20 tokens; the prompt estimated
  // from the request body
  assert.deepStrictEqual([r.status, r.error, r.completion, r.estimated],
                         [499, 'client_closed', 20, true]);
  assert.ok(r.prompt > 0, 'prompt estimated: ' + r.prompt);
  assert.ok(r.cost > 0, 'cost ' + r.cost);
});

test('the drain is bounded: a stream longer than '
     + 'llmproxy_stream_drain_timeout is closed then, billed as estimated',
async () => {
  const id = await leaveOpenAI('endless-o');
  const r = await record(id);
  assert.deepStrictEqual([r.status, r.error, r.estimated],
                         [499, 'client_closed', true]);
  // about 3 s of a chunk every 50 ms: some 60 chunks of 3 or 4 bytes
  assert.ok(r.completion >= 20 && r.completion < 200,
            'completion ' + r.completion);
  assert.ok(r.latency >= DRAIN_MS && r.latency < DRAIN_MS + 2000,
            'latency ' + r.latency);
});

// an Anthropic stream the client aborts after two text deltas
async function leaveAnthropic(model) {
  const ac = new AbortController();
  const { data: stream, response } = await anthropic().messages.create({
    model, max_tokens: 100, stream: true,
    messages: [{ role: 'user', content: 'hi' }] },
  { signal: ac.signal }).withResponse();
  let deltas = 0;
  try {
    for await (const ev of stream) {
      if (ev.type === 'content_block_delta' && ++deltas === 2) ac.abort();
    }
  } catch (e) {
    assert.ok(e instanceof Anthropic.APIUserAbortError
              || e.name === 'AbortError', String(e));
  }
  assert.strictEqual(deltas, 2);
  return response.headers.get('x-llmproxy-request-id');
}

test('an Anthropic stream left early is billed with its output tokens',
async () => {
  let r = await record(await leaveAnthropic('claude-a'));
  assert.deepStrictEqual([r.status, r.error, r.prompt, r.completion,
                          r.estimated],
                         [499, 'client_closed', 50, 77, false]);
  assert.strictEqual(r.cost, cost(50, 77));

  // translated from an OpenAI-style provider: its usage chunk is read
  r = await record(await leaveAnthropic('long-o'));
  assert.deepStrictEqual([r.status, r.error, r.prompt, r.completion,
                          r.estimated],
                         [499, 'client_closed', 100, 300, false]);
});

test('a stream the provider cuts: each SDK raises the error event, the '
     + 'record has the code', async () => {
  const ids = [];

  // OpenAI, passed through
  let chunks = 0;
  const { data: s1, response: r1 } = await openai().chat.completions.create({
    model: 'cut-o', stream: true,
    messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  await assert.rejects((async () => {
    for await (const c of s1) { assert.ok(c.choices); chunks++; }
  })(), (e) => {
    assert.ok(e instanceof OpenAI.APIError, 'an APIError: ' + e);
    assert.match(e.message, /cut short/);
    assert.strictEqual(e.code, 'upstream_truncated');
    return true;
  });
  assert.strictEqual(chunks, 2, 'the chunks before the cut came');
  ids.push(r1.headers.get('x-llmproxy-request-id'));

  // Anthropic, translated from the OpenAI-style provider
  const { data: s2, response: r2 } = await anthropic().messages.create({
    model: 'cut-o', max_tokens: 50, stream: true,
    messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  await assert.rejects((async () => {
    for await (const ev of s2) assert.ok(ev.type);
  })(), (e) => {
    assert.ok(e instanceof Anthropic.APIError, 'an APIError: ' + e);
    assert.strictEqual(e.error.type, 'error');
    assert.strictEqual(e.error.error.type, 'api_error');
    assert.match(e.error.error.message, /cut short/);
    return true;
  });
  ids.push(r2.headers.get('x-llmproxy-request-id'));

  // Gemini, translated
  const s3 = await gemini().models.generateContentStream({ model: 'cut-o',
    contents: 'hi' });
  await assert.rejects((async () => {
    for await (const c of s3) assert.ok(c);
  })(), (e) => {
    assert.strictEqual(e.name, 'ApiError', String(e));
    assert.strictEqual(e.status, 502);
    assert.match(e.message, /cut short/);
    return true;
  });

  for (const id of ids) {
    const r = await record(id);
    assert.deepStrictEqual([r.status, r.error], [200, 'upstream_truncated']);
  }
  assert.strictEqual(await until(() => pg.psql("SELECT status || '|' || "
    + "error FROM llmproxy_usage WHERE model = 'cut-o' AND "
    + "interface = 'gemini'")), '200|upstream_truncated');
});

test('an idle stream ends with the error event after '
     + 'stream_idle_timeout_seconds, recorded as such', async () => {
  const t0 = Date.now();
  const { data: stream, response } = await openai().chat.completions.create({
    model: 'stall-o', stream: true,
    messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  let chunks = 0;
  await assert.rejects((async () => {
    for await (const c of stream) { assert.ok(c.choices); chunks++; }
  })(), (e) => {
    assert.ok(e instanceof OpenAI.APIError, 'an APIError: ' + e);
    assert.strictEqual(e.code, 'stream_idle_timeout');
    assert.match(e.message, /stalled/);
    return true;
  });
  const took = Date.now() - t0;
  assert.strictEqual(chunks, 2);
  assert.ok(took >= 900 && took < 5000, 'ended after ' + took + ' ms');
  const r = await record(response.headers.get('x-llmproxy-request-id'));
  assert.deepStrictEqual([r.status, r.error], [200, 'stream_idle_timeout']);

  // the Anthropic SDK raises it too
  const { data: s2 } = await anthropic().messages.create({
    model: 'stall-o', max_tokens: 50, stream: true,
    messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  await assert.rejects((async () => {
    for await (const ev of s2) assert.ok(ev.type);
  })(), (e) => {
    assert.ok(e instanceof Anthropic.APIError, 'an APIError: ' + e);
    assert.match(e.error.error.message, /stalled/);
    return true;
  });
});

test('a hanging provider: the fallback answers within the first-byte '
     + 'timeout, not the request timeout', async () => {
  const t0 = Date.now();
  const { data, response } = await openai().chat.completions.create({
    model: 'slowpoke', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  const took = Date.now() - t0;
  assert.strictEqual(data.choices[0].message.content, 'hello from quick');
  assert.strictEqual(response.headers.get('x-llmproxy-model'), 'quick/quick');
  assert.strictEqual(response.headers.get('x-llmproxy-attempted-fallbacks'),
                     '1');
  assert.ok(took >= 900 && took < 4000, 'answered after ' + took + ' ms');
  assert.ok(m.hang.requests.length >= 1, 'the hanging provider was tried');

  // streamed, through the Anthropic SDK
  const t1 = Date.now();
  const stream = await anthropic().messages.create({ model: 'slowpoke',
    max_tokens: 50, stream: true,
    messages: [{ role: 'user', content: 'hi' }] });
  let text = '';
  for await (const ev of stream) {
    if (ev.type === 'content_block_delta') text += ev.delta.text;
  }
  assert.ok(text.length > 0);
  assert.ok(Date.now() - t1 < 4000, 'streamed after ' + (Date.now() - t1));
});

test('the first-byte timeout covers only the wait for the first byte: an '
     + 'answer that starts in time may take longer to arrive', async () => {
  const t0 = Date.now();
  const data = await openai().chat.completions.create({ model: 'slowbody',
    messages: [{ role: 'user', content: 'hi' }] });
  assert.strictEqual(data.choices[0].message.content, 'hello from slowbody');
  assert.ok(Date.now() - t0 >= 1400, 'the body took its 1.5 s');
  assert.strictEqual(m.slowbody.requests.length, 1, 'not retried');
});
