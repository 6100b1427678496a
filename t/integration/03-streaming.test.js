'use strict';
// Streaming: chunks reach the client as the provider sends them.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const OpenAI = require('openai');
const { startGateway } = require('../lib/gateway');
const { createMock } = require('../lib/mock');

let gw, slow, client;

before(async () => {
  slow = await createMock({ name: 'slow', delay: 200, chunks: 5 });
  gw = await startGateway({
    config: { providers: { slow: { api_base: slow.url,
      interfaces: ['openai'], models: { streamer: { model: 'up-s' } } } } },
  });
  client = new OpenAI({ baseURL: gw.baseURL, apiKey: gw.masterKey,
                        maxRetries: 0 });
});

after(async () => {
  const problems = gw.problems();
  await gw.stop();
  await slow.close();
  assert.deepStrictEqual(problems, []);
});

test('SSE chunks are forwarded as they arrive', async () => {
  const t0 = Date.now();
  const times = [];
  let text = '';
  const stream = await client.chat.completions.create({ model: 'streamer',
    messages: [{ role: 'user', content: 'x' }], stream: true });
  for await (const chunk of stream) {
    times.push(Date.now() - t0);
    text += chunk.choices[0]?.delta?.content || '';
    assert.strictEqual(chunk.model, 'up-s');
  }
  assert.strictEqual(text, 'c0c1c2c3c4');
  assert.ok(times.length >= 5);
  assert.ok(times[times.length - 1] - times[0] >= 600,
            `first chunk at ${times[0]} ms, last at ${times.at(-1)} ms`);
});

test('the stream reaches the client unchanged', async () => {
  const r = await fetch(gw.baseURL + '/chat/completions', {
    method: 'POST', headers: { authorization: 'Bearer ' + gw.masterKey },
    body: JSON.stringify({ model: 'streamer', stream: true,
                           messages: [] }) });
  assert.strictEqual(r.status, 200);
  assert.match(r.headers.get('content-type'), /text\/event-stream/);
  const text = await r.text();
  assert.match(text, /data: \[DONE\]\n\n$/);
  assert.strictEqual((text.match(/^data: /gm) || []).length, 7);
});
