'use strict';
// Streaming (SPEC §5): SSE chunks reach the client as the provider sends
// them, unchanged but for the model name; usage chunks pass; a client that
// goes away mid-stream does not hurt the gateway.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const OpenAI = require('openai');
const { startGateway, sleep } = require('../lib/gateway');
const { createMock } = require('../mocks/openai-mock');

let gw, slow, cut, client, pids;

before(async () => {
  slow = await createMock({ name: 'slow', delay: 200, chunks: 5 });
  cut = await createMock({ name: 'cut', mode: 'closeMid' });
  gw = await startGateway({
    config: { providers: {
      slow: { api_base: slow.url, api_key: 'sk-up-s', interfaces: ['openai'],
              models: { streamer: { model: 'up-s' }, cutter: {} } },
      cut: { api_base: cut.url, interfaces: ['openai'],
             models: { cutter: {} } } },
    fallbacks: { cutter: ['streamer'] } },
    settings: { request_timeout_seconds: 10 },
  });
  client = new OpenAI({ baseURL: gw.baseURL, apiKey: gw.masterKey,
                        maxRetries: 0, timeout: 30000 });
  pids = gw.workerPids();
});

after(async () => {
  if (!gw) return;
  const problems = gw.problems();
  await gw.stop();
  await slow.close();
  await cut.close();
  assert.deepStrictEqual(problems, [], 'error.log alerts/crashes');
});

test('SDK stream: chunks arrive as they are sent, content reassembled',
  async () => {
    slow.reset();
    const t0 = Date.now();
    const times = [];
    let text = '';
    const { data: stream, response } = await client.chat.completions.create({
      model: 'streamer', messages: [{ role: 'user', content: 'x' }],
      stream: true }).withResponse();
    assert.ok(response.headers.get('x-llmproxy-request-id'));
    assert.strictEqual(response.headers.get('x-llmproxy-model'),
                       'slow/streamer');
    for await (const chunk of stream) {
      times.push(Date.now() - t0);
      text += chunk.choices[0]?.delta?.content || '';
      assert.strictEqual(chunk.model, 'up-s');
    }
    assert.strictEqual(text, 'c0c1c2c3c4');
    assert.ok(times.length >= 6, `${times.length} chunks`);
    // the mock spends 4 x 200 ms between its first and its last chunk; a
    // gateway that buffers delivers them all at once
    assert.ok(times.at(-1) - times[0] >= 600,
              `first chunk at ${times[0]} ms, last at ${times.at(-1)} ms`);
    assert.strictEqual(slow.requests.length, 1);
    assert.strictEqual(slow.requests[0].body.stream, true);
    assert.strictEqual(slow.requests[0].body.model, 'up-s');
    assert.strictEqual(slow.requests[0].headers.authorization,
                       'Bearer sk-up-s');
  });

test('stream_options.include_usage: the usage chunk reaches the client',
  async () => {
    slow.reset();
    const stream = await client.chat.completions.create({
      model: 'streamer', messages: [{ role: 'user', content: 'x' }],
      stream: true, stream_options: { include_usage: true } });
    let usage = null, text = '';
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content || '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.strictEqual(text, 'c0c1c2c3c4');
    assert.deepStrictEqual(usage, { prompt_tokens: 11, completion_tokens: 5,
                                    total_tokens: 16 });
    assert.deepStrictEqual(slow.requests[0].body.stream_options,
                           { include_usage: true });
  });

test('the SSE stream reaches the client unchanged', async () => {
  const r = await fetch(gw.baseURL + '/chat/completions', {
    method: 'POST', headers: { authorization: 'Bearer ' + gw.masterKey,
                               'content-type': 'application/json' },
    body: JSON.stringify({ model: 'streamer', stream: true,
                           messages: [] }) });
  assert.strictEqual(r.status, 200);
  assert.match(r.headers.get('content-type'), /text\/event-stream/);
  assert.ok(r.headers.get('x-llmproxy-request-id'));
  const text = await r.text();
  assert.match(text, /data: \[DONE\]\n\n$/);
  const events = text.split('\n\n').filter(Boolean);
  assert.strictEqual(events.length, 7, text);
  for (const e of events.slice(0, -1)) {
    const obj = JSON.parse(e.replace(/^data: /, ''));
    assert.strictEqual(obj.object, 'chat.completion.chunk');
  }
});

test('a client that leaves mid-stream does not hurt the gateway',
  async () => {
    for (let i = 0; i < 3; i++) {
      const ac = new AbortController();
      const stream = await client.chat.completions.create({
        model: 'streamer', messages: [], stream: true },
      { signal: ac.signal });
      let n = 0;
      try {
        for await (const chunk of stream) {
          if (chunk && ++n === 2) ac.abort();
        }
      } catch (e) { /* the SDK may or may not throw on abort */ }
      assert.strictEqual(n, 2, 'stopped after the second chunk');
    }
    await sleep(1500);   // let the upstream streams end
    const r = await client.chat.completions.create({ model: 'streamer',
                                                     messages: [] });
    assert.strictEqual(r.choices[0].message.content, 'hello from slow');
    assert.deepStrictEqual(gw.workerPids(), pids, 'no worker was replaced');
  });

test('many concurrent streams all arrive whole', async () => {
  const one = async () => {
    const stream = await client.chat.completions.create({
      model: 'streamer', messages: [], stream: true });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content || '';
    return text;
  };
  const texts = await Promise.all(Array.from({ length: 30 }, one));
  for (const t of texts) assert.strictEqual(t, 'c0c1c2c3c4');
});

test('an upstream that dies mid-stream: the client sees the stream end, '
     + 'nothing is retried after the first byte', async () => {
  cut.reset(); slow.reset();
  // only the cut deployment: PROVIDER/MODEL
  const r = await fetch(gw.baseURL + '/chat/completions', {
    method: 'POST', headers: { authorization: 'Bearer ' + gw.masterKey },
    body: JSON.stringify({ model: 'cut/cutter', stream: true,
                           messages: [] }) });
  assert.strictEqual(r.status, 200);
  let text = '';
  try { text = await r.text(); } catch (e) { /* cut off: fine */ }
  assert.ok(!/data: \[DONE\]/.test(text), 'no [DONE] from a cut stream');
  assert.strictEqual(cut.requests.length, 1, 'not retried');
  assert.strictEqual(slow.requests.length, 0, 'no fallback after bytes');
  const ok = await client.chat.completions.create({ model: 'streamer',
                                                    messages: [] });
  assert.strictEqual(ok.choices[0].message.content, 'hello from slow');
  assert.deepStrictEqual(gw.workerPids(), pids, 'no worker was replaced');
});
