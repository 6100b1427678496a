'use strict';
// The three interfaces (SPEC §5, issue 5): each official SDK (openai,
// @anthropic-ai/sdk, @google/genai) against providers speaking each
// interface: 9 pairs, non-streamed and streamed, text and a tool round.
// The mock provider refuses anything not in its own native format, so a
// pair passes only if the gateway passed it through (same interface) or
// translated it both ways.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const OpenAI = require('openai');
const Anthropic = require('@anthropic-ai/sdk');
const { GoogleGenAI } = require('@google/genai');
const { startGateway } = require('../lib/gateway');
const { createMock, closedPort } = require('../mocks/openai-mock');

const IFACES = ['openai', 'anthropic', 'gemini'];
const PROMPT = 21, COMPLETION = 13;
const NATIVE_PATH = {
  openai: /\/v1\/chat\/completions$/,
  anthropic: /\/v1\/messages$/,
  gemini: /\/v1beta\/models\/up-gemini:(stream)?[gG]enerateContent$/,
};

let gw, mock;

before(async () => {
  mock = await createMock({ name: 'x', content: 'hello from the provider',
    usage: { prompt_tokens: PROMPT, completion_tokens: COMPLETION } });
  const providers = {};
  for (const i of IFACES) {
    providers['p-' + i] = { api_base: mock.url, interfaces: [i],
      api_key: 'provider-secret-' + i,
      models: { ['m-' + i]: { model: 'up-' + i,
                              input_cost_per_million: 1000,
                              output_cost_per_million: 2000 } } };
  }
  // a provider nothing answers for, falling back to one of another style
  providers['p-dead'] = { api_base: 'http://127.0.0.1:' + await closedPort(),
    interfaces: ['anthropic'], models: { 'm-dead': {} } };
  gw = await startGateway({ config: { providers,
    fallbacks: { 'm-dead': ['m-gemini'] } } });
});

after(async () => {
  const problems = gw ? gw.problems() : [];
  if (gw) await gw.stop();
  if (mock) await mock.close();
  assert.deepStrictEqual(problems, []);
});

const weatherSchema = { type: 'object',
  properties: { city: { type: 'string' } }, required: ['city'] };

// each client SDK: text(model, stream) -> {text, prompt, completion}
//                  tool(model, stream) -> {name, args}
//                  round(model)        -> text after a tool result
const clients = {
  openai: {
    sdk: () => new OpenAI({ baseURL: gw.baseURL, apiKey: gw.masterKey,
                            maxRetries: 0 }),
    async text(model, stream) {
      const c = this.sdk();
      const messages = [{ role: 'system', content: 'be brief' },
                        { role: 'user', content: 'hi' }];
      if (!stream) {
        const r = await c.chat.completions.create({ model, messages,
                                                    max_tokens: 50 });
        assert.strictEqual(r.choices[0].finish_reason, 'stop');
        return { text: r.choices[0].message.content,
                 prompt: r.usage.prompt_tokens,
                 completion: r.usage.completion_tokens };
      }
      const s = await c.chat.completions.create({ model, messages,
        stream: true, stream_options: { include_usage: true } });
      let text = '', usage = null, finish = null;
      for await (const ch of s) {
        if (ch.usage) usage = ch.usage;
        for (const ch0 of ch.choices) {
          text += ch0.delta.content || '';
          finish = ch0.finish_reason || finish;
        }
      }
      assert.strictEqual(finish, 'stop');
      return { text, prompt: usage.prompt_tokens,
               completion: usage.completion_tokens };
    },
    tools: [{ type: 'function', function: { name: 'get_weather',
      description: 'weather of a city', parameters: weatherSchema } }],
    async tool(model, stream) {
      const c = this.sdk();
      const req = { model, tools: this.tools,
                    messages: [{ role: 'user', content: 'weather?' }] };
      if (!stream) {
        const r = await c.chat.completions.create(req);
        assert.strictEqual(r.choices[0].finish_reason, 'tool_calls');
        const call = r.choices[0].message.tool_calls[0];
        assert.ok(call.id);
        return { name: call.function.name,
                 args: JSON.parse(call.function.arguments) };
      }
      const s = await c.chat.completions.create({ ...req, stream: true });
      let name = '', args = '', finish = null;
      for await (const ch of s) {
        for (const ch0 of ch.choices) {
          for (const t of ch0.delta.tool_calls || []) {
            name += (t.function && t.function.name) || '';
            args += (t.function && t.function.arguments) || '';
          }
          finish = ch0.finish_reason || finish;
        }
      }
      assert.strictEqual(finish, 'tool_calls');
      return { name, args: JSON.parse(args) };
    },
    async round(model) {
      const r = await this.sdk().chat.completions.create({ model,
        tools: this.tools, messages: [
          { role: 'user', content: 'weather?' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_1',
            type: 'function', function: { name: 'get_weather',
                                          arguments: '{"city":"Paris"}' } }] },
          { role: 'tool', tool_call_id: 'call_1', content: 'sunny' }] });
      return r.choices[0].message.content;
    },
  },

  anthropic: {
    sdk: () => new Anthropic({ baseURL: gw.url, apiKey: gw.masterKey,
                               maxRetries: 0 }),
    async text(model, stream) {
      const c = this.sdk();
      const req = { model, max_tokens: 50, system: 'be brief',
                    messages: [{ role: 'user', content: 'hi' }] };
      if (!stream) {
        const r = await c.messages.create(req);
        assert.strictEqual(r.type, 'message');
        assert.strictEqual(r.stop_reason, 'end_turn');
        return { text: r.content.map((b) => b.text).join(''),
                 prompt: r.usage.input_tokens,
                 completion: r.usage.output_tokens };
      }
      const m = await c.messages.stream(req).finalMessage();
      assert.strictEqual(m.stop_reason, 'end_turn');
      return { text: m.content.map((b) => b.text).join(''),
               prompt: m.usage.input_tokens,
               completion: m.usage.output_tokens };
    },
    tools: [{ name: 'get_weather', description: 'weather of a city',
              input_schema: weatherSchema }],
    async tool(model, stream) {
      const c = this.sdk();
      const req = { model, max_tokens: 50, tools: this.tools,
                    messages: [{ role: 'user', content: 'weather?' }] };
      const m = stream ? await c.messages.stream(req).finalMessage()
                       : await c.messages.create(req);
      assert.strictEqual(m.stop_reason, 'tool_use');
      const call = m.content.find((b) => b.type === 'tool_use');
      assert.ok(call.id);
      return { name: call.name, args: call.input };
    },
    async round(model) {
      const m = await this.sdk().messages.create({ model, max_tokens: 50,
        tools: this.tools, messages: [
          { role: 'user', content: 'weather?' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1',
            name: 'get_weather', input: { city: 'Paris' } }] },
          { role: 'user', content: [{ type: 'tool_result',
            tool_use_id: 'toolu_1', content: 'sunny' }] }] });
      return m.content.map((b) => b.text || '').join('');
    },
  },

  gemini: {
    sdk: () => new GoogleGenAI({ apiKey: gw.masterKey,
                                 httpOptions: { baseUrl: gw.url } }),
    async text(model, stream) {
      const ai = this.sdk();
      const req = { model, contents: 'hi',
                    config: { systemInstruction: 'be brief',
                              maxOutputTokens: 50 } };
      if (!stream) {
        const r = await ai.models.generateContent(req);
        assert.strictEqual(r.candidates[0].finishReason, 'STOP');
        return { text: r.text, prompt: r.usageMetadata.promptTokenCount,
                 completion: r.usageMetadata.candidatesTokenCount };
      }
      let text = '', usage = null, finish = null;
      for await (const ch of await ai.models.generateContentStream(req)) {
        text += ch.text || '';
        if (ch.usageMetadata) usage = ch.usageMetadata;
        finish = (ch.candidates && ch.candidates[0].finishReason) || finish;
      }
      assert.strictEqual(finish, 'STOP');
      return { text, prompt: usage.promptTokenCount,
               completion: usage.candidatesTokenCount };
    },
    tools: [{ functionDeclarations: [{ name: 'get_weather',
      description: 'weather of a city', parameters: weatherSchema }] }],
    async tool(model, stream) {
      const ai = this.sdk();
      const req = { model, contents: 'weather?',
                    config: { tools: this.tools } };
      let calls = [];
      if (!stream) {
        calls = (await ai.models.generateContent(req)).functionCalls;
      } else {
        for await (const ch of await ai.models.generateContentStream(req)) {
          calls = calls.concat(ch.functionCalls || []);
        }
      }
      assert.strictEqual(calls.length, 1);
      return { name: calls[0].name, args: calls[0].args };
    },
    async round(model) {
      const r = await this.sdk().models.generateContent({ model,
        config: { tools: this.tools }, contents: [
          { role: 'user', parts: [{ text: 'weather?' }] },
          { role: 'model', parts: [{ functionCall: { name: 'get_weather',
                                                     args: { city: 'Paris' } } }] },
          { role: 'user', parts: [{ functionResponse: { name: 'get_weather',
            response: { forecast: 'sunny' } } }] }] });
      return r.text;
    },
  },
};

function lastRequest() {
  return mock.requests[mock.requests.length - 1];
}

for (const client of IFACES) {
  for (const provider of IFACES) {
    const model = 'm-' + provider;
    const pair = `${client} SDK -> ${provider} provider`;

    for (const stream of [false, true]) {
      const how = stream ? 'streamed' : 'not streamed';

      test(`${pair}: text, ${how}`, async () => {
        mock.reset();
        const r = await clients[client].text(model, stream);
        assert.strictEqual(r.text, 'hello from the provider');
        assert.strictEqual(r.prompt, PROMPT);
        assert.strictEqual(r.completion, COMPLETION);
        const req = lastRequest();
        assert.match(req.path, NATIVE_PATH[provider]);
        assert.strictEqual(req.raw.includes('gw-') || req.raw.includes(
          gw.masterKey), false, 'the client key reached the provider');
        // the provider's own credentials, where its interface has them
        const cred = { openai: req.headers.authorization,
                       anthropic: req.headers['x-api-key'],
                       gemini: req.headers['x-goog-api-key'] }[provider];
        assert.match(cred, new RegExp('provider-secret-' + provider));
        if (provider !== 'gemini') {
          assert.strictEqual(req.body.model, 'up-' + provider);
        }
      });

      test(`${pair}: tool call, ${how}`, async () => {
        mock.reset();
        const r = await clients[client].tool(model, stream);
        assert.strictEqual(r.name, 'get_weather');
        assert.deepStrictEqual(r.args, { city: 'Paris' });
        assert.match(lastRequest().path, NATIVE_PATH[provider]);
      });
    }

    test(`${pair}: a tool result goes back in the provider's format`,
    async () => {
      mock.reset();
      const text = await clients[client].round(model);
      assert.match(text, /^tool said: .*sunny/);
    });
  }
}

// -- the same gateway behaviour whatever the interfaces ----------------------

test('cost and usage are counted from every provider style', async () => {
  const cost = (PROMPT * 1000 + COMPLETION * 2000) / 1e6;
  for (const provider of IFACES) {
    const { response } = await clients.openai.sdk().chat.completions
      .create({ model: 'm-' + provider,
                messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    assert.strictEqual(Number(response.headers.get(
      'x-llmproxy-response-cost')), cost, provider);
    assert.strictEqual(response.headers.get('x-llmproxy-model'),
                       `p-${provider}/m-${provider}`);
  }
  // a stream from a Gemini provider to an Anthropic client: in the log
  await clients.anthropic.text('m-gemini', true);
  await new Promise((r) => setTimeout(r, 200));
  const line = gw.accessLog().pop();
  assert.ok(line, 'no access log line');
});

test('Gemini thinking tokens are billed as output', async () => {
  mock.state.thoughts = 5;
  try {
    const cost = (PROMPT * 1000 + (COMPLETION + 5) * 2000) / 1e6;
    const { data, response } = await clients.openai.sdk().chat.completions
      .create({ model: 'm-gemini',
                messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    assert.strictEqual(data.usage.completion_tokens, COMPLETION + 5);
    assert.strictEqual(Number(response.headers.get(
      'x-llmproxy-response-cost')), cost);
    // passed through to a Gemini client, the same cost
    const res = await fetch(gw.url + '/v1beta/models/m-gemini:generateContent',
      { method: 'POST', headers: { 'x-goog-api-key': gw.masterKey,
                                   'content-type': 'application/json' },
        body: JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }] }) });
    assert.strictEqual(res.status, 200);
    assert.strictEqual(Number(res.headers.get('x-llmproxy-response-cost')),
                       cost);
  } finally {
    mock.state.thoughts = 0;
  }
});

test('errors come in the client\'s own shape', async () => {
  // a wrong key
  const bad = { openai: new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-bad',
                                     maxRetries: 0 }),
                anthropic: new Anthropic({ baseURL: gw.url, apiKey: 'sk-bad',
                                           maxRetries: 0 }),
                gemini: new GoogleGenAI({ apiKey: 'sk-bad',
                                          httpOptions: { baseUrl: gw.url } }) };
  await assert.rejects(bad.anthropic.messages.create({ model: 'm-openai',
    max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }), (e) => {
    assert.strictEqual(e.status, 401);
    assert.strictEqual(e.error.type, 'error');
    assert.strictEqual(e.error.error.type, 'authentication_error');
    return true;
  });
  await assert.rejects(bad.gemini.models.generateContent({ model: 'm-openai',
    contents: 'hi' }), (e) => {
    assert.strictEqual(e.status, 401);
    const body = JSON.parse(e.message.replace(/^[^{]*/, ''));
    assert.strictEqual(body.error.code, 401);
    assert.strictEqual(body.error.status, 'UNAUTHENTICATED');
    return true;
  });

  // an unknown model
  const res = await fetch(gw.url + '/v1/messages', { method: 'POST',
    headers: { 'x-api-key': gw.masterKey, 'anthropic-version': '2023-06-01',
               'content-type': 'application/json' },
    body: JSON.stringify({ model: 'nope', max_tokens: 5,
                           messages: [{ role: 'user', content: 'hi' }] }) });
  assert.strictEqual(res.status, 404);
  assert.deepStrictEqual(Object.keys(await res.json()), ['type', 'error']);
  const g = await fetch(gw.url + '/v1beta/models/nope:generateContent', {
    method: 'POST', headers: { 'x-goog-api-key': gw.masterKey,
                               'content-type': 'application/json' },
    body: JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }] }) });
  assert.strictEqual(g.status, 404);
  assert.strictEqual((await g.json()).error.status, 'NOT_FOUND');

  // a provider's own 400, in another style, comes back in the client's
  mock.mode = 'badRequest400';
  try {
    await assert.rejects(clients.anthropic.sdk().messages.create({
      model: 'm-openai', max_tokens: 5,
      messages: [{ role: 'user', content: 'hi' }] }), (e) => {
      assert.strictEqual(e.status, 400);
      assert.strictEqual(e.error.type, 'error');
      assert.match(e.error.error.message, /bad input from x/);
      return true;
    });
  } finally {
    mock.mode = 'ok';
  }
});

test('fallback to a model of another interface: translated again',
async () => {
  mock.reset();
  const { data, response } = await clients.openai.sdk().chat.completions
    .create({ model: 'm-dead', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  assert.strictEqual(data.choices[0].message.content,
                     'hello from the provider');
  assert.strictEqual(response.headers.get('x-llmproxy-attempted-fallbacks'),
                     '1');
  assert.strictEqual(response.headers.get('x-llmproxy-model'),
                     'p-gemini/m-gemini');
  assert.match(lastRequest().path, NATIVE_PATH.gemini);
  // and from a Gemini client, whose first attempt is translated to
  // Anthropic and whose fallback is passed through
  const r = await clients.gemini.text('m-dead', true);
  assert.strictEqual(r.text, 'hello from the provider');
});

test('the model list in each SDK\'s shape', async () => {
  const all = ['m-anthropic', 'm-dead', 'm-gemini', 'm-openai'];
  const o = await clients.openai.sdk().models.list();
  assert.deepStrictEqual(o.data.map((m) => m.id).sort(), all);
  const a = await clients.anthropic.sdk().models.list();
  assert.deepStrictEqual(a.data.map((m) => m.id).sort(), all);
  assert.strictEqual(a.data[0].type, 'model');
  const g = await clients.gemini.sdk().models.list();
  const names = [];
  for await (const m of g) names.push(m.name);
  assert.deepStrictEqual(names.sort(), all.map((m) => 'models/' + m));
});

test('images reach every provider in its own form', async () => {
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9'
              + 'QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
  const found = {
    openai: (b) => b.messages.some((m) => Array.isArray(m.content)
      && m.content.some((c) => c.type === 'image_url'
                       && c.image_url.url === 'data:image/png;base64,' + png)),
    anthropic: (b) => b.messages.some((m) => Array.isArray(m.content)
      && m.content.some((c) => c.type === 'image' && c.source.type === 'base64'
                       && c.source.media_type === 'image/png'
                       && c.source.data === png)),
    gemini: (b) => b.contents.some((c) => c.parts.some((p) =>
      p.inlineData && p.inlineData.mimeType === 'image/png'
      && p.inlineData.data === png)),
  };
  const send = {
    openai: (model) => clients.openai.sdk().chat.completions.create({ model,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'what?' },
        { type: 'image_url',
          image_url: { url: 'data:image/png;base64,' + png } }] }] }),
    anthropic: (model) => clients.anthropic.sdk().messages.create({ model,
      max_tokens: 20, messages: [{ role: 'user', content: [
        { type: 'text', text: 'what?' },
        { type: 'image', source: { type: 'base64', media_type: 'image/png',
                                   data: png } }] }] }),
    gemini: (model) => clients.gemini.sdk().models.generateContent({ model,
      contents: [{ role: 'user', parts: [{ text: 'what?' },
        { inlineData: { mimeType: 'image/png', data: png } }] }] }),
  };
  for (const client of IFACES) {
    for (const provider of IFACES) {
      mock.reset();
      await send[client]('m-' + provider);
      assert.ok(found[provider](lastRequest().body),
                `${client} -> ${provider}: ${lastRequest().raw}`);
    }
  }
});

test('embedContent passes through to a Gemini provider', async () => {
  const r = await clients.gemini.sdk().models.embedContent({
    model: 'm-gemini', contents: 'hi' });
  assert.deepStrictEqual(r.embeddings[0].values, [0.1, 0.2, 0.3]);
  assert.match(lastRequest().path,
               /\/v1beta\/models\/up-gemini:(batchE|e)mbedContents?$/);
});

// Gemini's batchEmbedContents names the model again in each requests[]
// (the SDK's embedContent: "models/" + the name it was given); the mock,
// as the real API, refuses one that is not the URL's, so the gateway must
// write each attempt's upstream name there.  A gateway of its own: its
// aliases and fallbacks would change the model lists tested above.
test('batchEmbedContents: requests[].model is the upstream name, per attempt',
async () => {
  const bad = await createMock({ name: 'bad' });
  bad.mode = 'fail500';
  const g = await startGateway({ config: {
    providers: {
      'g-live': { api_base: mock.url, interfaces: ['gemini'], models: {
        embed: { model: 'text-embedding-004' },
        'embed-backup': { model: 'gemini-embedding-001' } } },
      'g-bad': { api_base: bad.url, interfaces: ['gemini'], models: {
        'embed-flaky': { model: 'flaky-embedding' } } },
      'o-only': { api_base: mock.url, interfaces: ['openai'], models: {
        'embed-openai': { model: 'text-embedding-3-small' } } } },
    aliases: { 'my-embed': 'embed' },
    fallbacks: { 'embed-flaky': ['embed-backup'] } } });
  const ai = new GoogleGenAI({ apiKey: g.masterKey,
                               httpOptions: { baseUrl: g.url } });
  const modelsOf = (req) => req.body.requests.map((q) => q.model);
  const texts = ['one', 'two', 'three'];
  try {
    // an alias and a public name, both other than the upstream name
    for (const model of ['my-embed', 'embed']) {
      mock.reset();
      const r = await ai.models.embedContent({ model, contents: texts,
        config: { taskType: 'RETRIEVAL_DOCUMENT' } });
      assert.strictEqual(r.embeddings.length, 3, model);
      assert.deepStrictEqual(r.embeddings[2].values, [0.1, 0.2, 0.3]);
      const req = lastRequest();
      assert.strictEqual(req.path,
        '/v1beta/models/text-embedding-004:batchEmbedContents');
      assert.deepStrictEqual(modelsOf(req),
                             Array(3).fill('models/text-embedding-004'));
      assert.deepStrictEqual(req.body.requests.map((q) =>
        [q.content.parts[0].text, q.taskType]),
        texts.map((t) => [t, 'RETRIEVAL_DOCUMENT']));
    }

    // the rest of the body goes as it came, byte for byte
    mock.reset();
    const raw = '{ "requests" : [\n {"content":{"parts":[{"text":"\\u00e9"}]},'
      + ' "model" : "models/my-embed" },\n {"model":"models/my-embed",'
      + '"content":{"parts":[{"text":"b"}]},"outputDimensionality":3} ] }';
    const res = await fetch(g.url + '/v1beta/models/my-embed:'
      + 'batchEmbedContents', { method: 'POST', body: raw,
      headers: { 'content-type': 'application/json',
                 'x-goog-api-key': g.masterKey } });
    assert.strictEqual(res.status, 200, await res.text());
    assert.strictEqual(lastRequest().raw, raw.replaceAll('models/my-embed',
                                          'models/text-embedding-004'));
    // and embedContent's own optional "model"
    const one = '{"model":"models/my-embed",'
      + '"content":{"parts":[{"text":"a"}]}}';
    const res1 = await fetch(g.url + '/v1beta/models/my-embed:embedContent',
      { method: 'POST', body: one,
        headers: { 'content-type': 'application/json',
                   'x-goog-api-key': g.masterKey } });
    assert.strictEqual(res1.status, 200, await res1.text());
    assert.strictEqual(lastRequest().path,
                       '/v1beta/models/text-embedding-004:embedContent');
    assert.strictEqual(lastRequest().raw, one.replace('models/my-embed',
                                          'models/text-embedding-004'));

    // the first deployment fails (tried again, then the fallback): its
    // bodies had its own name, the fallback's has the fallback's
    mock.reset();
    bad.reset();
    const f = await ai.models.embedContent({ model: 'embed-flaky',
                                             contents: ['x', 'y'] });
    assert.strictEqual(f.embeddings.length, 2);
    assert.strictEqual(f.sdkHttpResponse.headers[
      'x-llmproxy-attempted-fallbacks'], '1');
    assert.ok(bad.requests.length >= 1);
    for (const req of bad.requests) {
      assert.strictEqual(req.path,
        '/v1beta/models/flaky-embedding:batchEmbedContents');
      assert.deepStrictEqual(modelsOf(req),
                             Array(2).fill('models/flaky-embedding'));
    }
    assert.strictEqual(lastRequest().path,
      '/v1beta/models/gemini-embedding-001:batchEmbedContents');
    assert.deepStrictEqual(modelsOf(lastRequest()),
                           Array(2).fill('models/gemini-embedding-001'));

    // to a provider of another interface: not translated, a Gemini 400
    mock.reset();
    await assert.rejects(ai.models.embedContent({ model: 'embed-openai',
                                                  contents: texts }),
      (e) => {
        assert.strictEqual(e.status, 400);
        const body = JSON.parse(e.message);
        assert.strictEqual(body.error.code, 400);
        assert.strictEqual(body.error.status, 'INVALID_ARGUMENT');
        assert.match(body.error.message, /no deployment of model/);
        return true;
      });
    assert.strictEqual(mock.requests.length, 0);
  } finally {
    const problems = g.problems();
    await g.stop();
    await bad.close();
    assert.deepStrictEqual(problems, []);
  }
});

test('token counting for a model whose provider cannot count: an estimate',
async () => {
  const a = await clients.anthropic.sdk().messages.countTokens({
    model: 'm-openai', messages: [{ role: 'user', content: 'x'.repeat(400) }] });
  assert.ok(a.input_tokens >= 100 && a.input_tokens < 130, a.input_tokens);
});

test('token counting passes through to a provider that has it', async () => {
  const a = await clients.anthropic.sdk().messages.countTokens({
    model: 'm-anthropic', messages: [{ role: 'user', content: 'hi' }] });
  assert.strictEqual(a.input_tokens, PROMPT);
  const g = await clients.gemini.sdk().models.countTokens({
    model: 'm-gemini', contents: 'hi' });
  assert.strictEqual(g.totalTokens, PROMPT);
  assert.match(lastRequest().path, /\/v1beta\/models\/up-gemini:countTokens$/);
});
