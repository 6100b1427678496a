'use strict';
// The usage chunk the gateway asks for on a client's behalf (SPEC section
// 4: every stream is billed) never reaches a client that did not ask for
// it, however the provider's writes cut the stream: the gateway cuts the
// chunk out of the buffer it read when its events are whole, and takes
// the events one by one when one is split between two reads.  Each case:
// the client gets the provider's bytes minus that one event, exactly, and
// the usage is counted ($llmproxy_completion_tokens in the access log).
// A raw mock, as the official mocks write every event on its own.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const { startGateway, sleep } = require('../lib/gateway');

const ev = (o) => 'data: ' + JSON.stringify(o) + '\n\n';
const chunk = (i, extra = {}) => ev({ id: 'c', object: 'chat.completion.chunk',
  model: 'up', choices: [{ index: 0, delta: { content: 'tok' + i },
  finish_reason: null }], ...extra });
const usage = (n) => ev({ id: 'c', object: 'chat.completion.chunk',
  model: 'up', choices: [], usage: { prompt_tokens: 5,
  completion_tokens: n, total_tokens: 5 + n } });
const DONE = 'data: [DONE]\n\n';

// writes of each case, a pause between two; `want`: what the client gets
const U = usage(42);
const CASES = {
  'one-write': [chunk(0) + chunk(1) + U + DONE],
  'usage-alone': [chunk(0) + chunk(1), U, DONE],
  'usage-split': [chunk(0), U.slice(0, 40), U.slice(40) + DONE],
  'usage-then-done': [chunk(0) + chunk(1), U + DONE],
  'usage-mid': [chunk(0) + U + chunk(1), DONE],
  // "usage": null in every chunk, as OpenAI sends once asked for usage
  'usage-null': [chunk(0, { usage: null }) + chunk(1, { usage: null }),
                 U + DONE],
  'split-elsewhere': [chunk(0).slice(0, 30), chunk(0).slice(30) + U,
                      chunk(1) + DONE],
};

let mock, gw;

before(async () => {
  mock = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', async () => {
      const b = JSON.parse(body);
      assert.strictEqual(b.stream_options.include_usage, true);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const writes = CASES[b.model.replace(/^up-/, '')];
      for (let i = 0; i < writes.length; i++) {
        if (i) await sleep(60);
        if (i === writes.length - 1) res.end(writes[i]);
        else res.write(writes[i]);
      }
    });
  });
  await new Promise((r) => mock.listen(0, '127.0.0.1', r));
  const models = {};
  for (const name of Object.keys(CASES)) {
    models[name] = { model: 'up-' + name };
  }
  gw = await startGateway({
    httpExtra: "log_format usage '$uri $status $llmproxy_model "
               + "$llmproxy_completion_tokens';\n"
               + '    access_log __DIR__/usage.log usage;',
    config: {
      providers: {
        raw: { api_base: `http://127.0.0.1:${mock.address().port}`,
               interfaces: ['openai'], models },
      },
    },
  });
});

after(async () => {
  const problems = gw ? gw.problems() : [];
  if (gw) await gw.stop();
  if (mock) mock.close();
  assert.deepStrictEqual(problems, []);
});

async function completionTokens(model) {
  for (let i = 0; i < 50; i++) {
    let text = '';
    try {
      text = fs.readFileSync(path.join(gw.dir, 'usage.log'), 'utf8');
    } catch (e) { /* not yet */ }
    const line = text.split('\n').find((l) => l.split(' ')[2] === model);
    if (line) return Number(line.split(' ')[3]);
    await sleep(100);
  }
  return null;
}

for (const [name, writes] of Object.entries(CASES)) {
  test(`the usage chunk is cut from the stream: ${name}`, async () => {
    const r = await fetch(gw.baseURL + '/chat/completions', {
      method: 'POST', headers: { authorization: 'Bearer ' + gw.masterKey,
                                 'content-type': 'application/json' },
      body: JSON.stringify({ model: name, stream: true,
                             messages: [{ role: 'user', content: 'x' }] }) });
    assert.strictEqual(r.status, 200);
    const text = await r.text();
    assert.strictEqual(text, writes.join('').replace(U, ''));
    assert.strictEqual(await completionTokens(name), 42);
  });
}

test('a client that asked for the usage chunk gets it, in every case',
  async () => {
    for (const [name, writes] of Object.entries(CASES)) {
      const r = await fetch(gw.baseURL + '/chat/completions', {
        method: 'POST', headers: { authorization: 'Bearer ' + gw.masterKey,
                                   'content-type': 'application/json' },
        body: JSON.stringify({ model: name, stream: true,
          stream_options: { include_usage: true },
          messages: [{ role: 'user', content: 'x' }] }) });
      assert.strictEqual(r.status, 200);
      assert.strictEqual(await r.text(), writes.join(''), name);
    }
  });
