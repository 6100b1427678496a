'use strict';
// The OpenAI Responses API (/v1/responses, what Codex CLI speaks) against
// providers that speak only Anthropic Messages or Gemini generateContent
// (issue 14): the official openai SDK's responses.create, streamed and
// not, and responses.stream(); text, a function tool round, an image; and
// as a fallback from an OpenAI model to an Anthropic one.  The mock
// providers refuse anything not in their native format, so each test
// passes only if the gateway translated the request there and the answer
// or stream back.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const OpenAI = require('openai');
const Anthropic = require('@anthropic-ai/sdk');
const { GoogleGenAI } = require('@google/genai');
const { startGateway } = require('../lib/gateway');
const { createMock, closedPort } = require('../mocks/openai-mock');

const PROMPT = 21, COMPLETION = 13;
const NATIVE_PATH = {
  anthropic: /\/v1\/messages$/,
  gemini: /\/v1beta\/models\/up-gemini:(stream)?[gG]enerateContent$/,
};
// a 1x1 PNG
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk'
  + 'YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

let gw, mock, client;

before(async () => {
  mock = await createMock({ name: 'x', content: 'hello from the provider',
    usage: { prompt_tokens: PROMPT, completion_tokens: COMPLETION } });
  const providers = {};
  for (const i of ['anthropic', 'gemini']) {
    providers['p-' + i] = { api_base: mock.url, interfaces: [i],
      api_key: 'provider-secret-' + i,
      models: { ['m-' + i]: { model: 'up-' + i } } };
  }
  // an OpenAI model nothing answers for, falling back to an Anthropic one
  providers['p-dead'] = { api_base: 'http://127.0.0.1:' + await closedPort(),
    interfaces: ['openai'], models: { 'm-dead': {} } };
  gw = await startGateway({ config: { providers,
    fallbacks: { 'm-dead': ['m-anthropic'] } } });
  client = new OpenAI({ baseURL: gw.baseURL, apiKey: gw.masterKey,
                        maxRetries: 0 });
});

after(async () => {
  const problems = gw ? gw.problems() : [];
  if (gw) await gw.stop();
  if (mock) await mock.close();
  assert.deepStrictEqual(problems, []);
});

const tools = [{ type: 'function', name: 'get_weather',
  description: 'weather of a city', strict: false,
  parameters: { type: 'object', properties: { city: { type: 'string' } },
                required: ['city'] } }];

function lastRequest(iface) {
  const r = mock.requests[mock.requests.length - 1];
  assert.match(r.path, NATIVE_PATH[iface]);
  return r;
}

// every event of a streamed responses.create, in order
async function events(req) {
  const s = await client.responses.create({ ...req, stream: true });
  const out = [];
  for await (const e of s) out.push(e);
  return out;
}

for (const iface of ['anthropic', 'gemini']) {
  const model = 'm-' + iface;

  test(`${iface}: responses.create, text, not streamed`, async () => {
    mock.reset();
    const r = await client.responses.create({ model, input: 'hi',
      instructions: 'be brief', max_output_tokens: 50, temperature: 0.5 });
    assert.strictEqual(r.object, 'response');
    assert.strictEqual(r.status, 'completed');
    assert.strictEqual(r.model, model);
    assert.match(r.id, /^resp_/);
    assert.strictEqual(r.output_text, 'hello from the provider');
    assert.strictEqual(r.output.length, 1);
    assert.strictEqual(r.output[0].type, 'message');
    assert.strictEqual(r.output[0].role, 'assistant');
    assert.deepStrictEqual(r.usage, { input_tokens: PROMPT,
      input_tokens_details: { cached_tokens: 0 }, output_tokens: COMPLETION,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: PROMPT + COMPLETION });
    const up = lastRequest(iface).body;
    if (iface === 'anthropic') {
      assert.strictEqual(up.max_tokens, 50);
      assert.strictEqual(up.temperature, 0.5);
      assert.strictEqual(JSON.stringify(up.system).includes('be brief'),
                         true);
    } else {
      assert.strictEqual(up.generationConfig.maxOutputTokens, 50);
      assert.strictEqual(JSON.stringify(up.systemInstruction)
                           .includes('be brief'), true);
    }
  });

  test(`${iface}: responses.create, text, streamed`, async () => {
    const ev = await events({ model, input: 'hi', instructions: 'be brief' });
    const types = ev.map((e) => e.type);
    const first = (t) => types.indexOf(t);
    assert.strictEqual(types[0], 'response.created');
    assert.strictEqual(types[types.length - 1], 'response.completed');
    for (const t of ['response.output_item.added',
      'response.content_part.added', 'response.output_text.delta',
      'response.output_text.done', 'response.content_part.done',
      'response.output_item.done']) {
      assert.ok(first(t) > 0, t + ' missing: ' + types.join(' '));
    }
    assert.ok(first('response.output_item.added')
              < first('response.content_part.added'));
    assert.ok(first('response.output_text.done')
              < first('response.output_item.done'));
    ev.forEach((e, i) => assert.strictEqual(e.sequence_number, i));
    const text = ev.filter((e) => e.type === 'response.output_text.delta')
      .map((e) => e.delta).join('');
    assert.strictEqual(text, 'hello from the provider');
    assert.ok(ev.filter((e) => e.type === 'response.output_text.delta')
      .length > 1, 'the text comes in pieces, as it arrives');
    const done = ev[ev.length - 1].response;
    assert.strictEqual(done.status, 'completed');
    assert.strictEqual(done.output[0].content[0].text,
                       'hello from the provider');
    assert.strictEqual(done.usage.input_tokens, PROMPT);
    assert.strictEqual(done.usage.output_tokens, COMPLETION);
    assert.strictEqual(ev[0].response.id, done.id);
  });

  test(`${iface}: responses.stream() finalResponse`, async () => {
    const s = client.responses.stream({ model, input: 'hi' });
    let deltas = '';
    s.on('response.output_text.delta', (e) => { deltas += e.delta; });
    const r = await s.finalResponse();
    assert.strictEqual(deltas, 'hello from the provider');
    assert.strictEqual(r.output_text, 'hello from the provider');
    assert.strictEqual(r.usage.total_tokens, PROMPT + COMPLETION);
  });

  for (const stream of [false, true]) {
    test(`${iface}: a function tool round, ${stream ? '' : 'not '}streamed`,
         async () => {
      const input = [{ role: 'user', content: 'weather in Paris?' }];
      let r, ev = [];
      if (stream) {
        ev = await events({ model, input, tools });
        r = ev[ev.length - 1].response;
        assert.strictEqual(ev[ev.length - 1].type, 'response.completed');
        const args = ev.filter((e) =>
          e.type === 'response.function_call_arguments.delta')
          .map((e) => e.delta).join('');
        assert.deepStrictEqual(JSON.parse(args), { city: 'Paris' });
        const d = ev.find((e) =>
          e.type === 'response.function_call_arguments.done');
        assert.deepStrictEqual(JSON.parse(d.arguments), { city: 'Paris' });
        const added = ev.find((e) =>
          e.type === 'response.output_item.added'
          && e.item.type === 'function_call');
        assert.strictEqual(added.item.name, 'get_weather');
      } else {
        r = await client.responses.create({ model, input, tools });
      }
      const call = r.output.find((o) => o.type === 'function_call');
      assert.ok(call, JSON.stringify(r.output));
      assert.strictEqual(call.name, 'get_weather');
      assert.deepStrictEqual(JSON.parse(call.arguments), { city: 'Paris' });
      assert.ok(call.call_id);
      const up = lastRequest(iface).body;
      if (iface === 'anthropic') {
        assert.strictEqual(up.tools[0].name, 'get_weather');
      } else {
        assert.strictEqual(up.tools[0].functionDeclarations[0].name,
                           'get_weather');
      }

      // the second round: the call and its output go back as input items
      const r2 = await client.responses.create({ model, tools,
        input: [...input, ...r.output,
                { type: 'function_call_output', call_id: call.call_id,
                  output: 'sunny' }] });
      assert.match(r2.output_text, /tool said: .*sunny/);
      const up2 = lastRequest(iface).body;
      if (iface === 'anthropic') {
        const [u, a, res] = up2.messages;
        assert.strictEqual(u.role, 'user');
        assert.strictEqual(a.content[0].type, 'tool_use');
        assert.strictEqual(a.content[0].id, call.call_id);
        assert.strictEqual(res.content[0].type, 'tool_result');
        assert.strictEqual(res.content[0].tool_use_id, call.call_id);
      } else {
        const [, a, res] = up2.contents;
        assert.strictEqual(a.role, 'model');
        assert.strictEqual(a.parts[0].functionCall.name, 'get_weather');
        assert.strictEqual(res.parts[0].functionResponse.name,
                           'get_weather');
      }
    });
  }

  test(`${iface}: an image in the input`, async () => {
    const r = await client.responses.create({ model, input: [{ role: 'user',
      content: [{ type: 'input_text', text: 'what is this?' },
                { type: 'input_image', detail: 'auto',
                  image_url: 'data:image/png;base64,' + PNG }] }] });
    assert.strictEqual(r.output_text, 'hello from the provider');
    const up = lastRequest(iface).body;
    if (iface === 'anthropic') {
      const img = up.messages[0].content.find((b) => b.type === 'image');
      assert.deepStrictEqual(img.source, { type: 'base64',
        media_type: 'image/png', data: PNG });
    } else {
      const img = up.contents[0].parts.find((p) => p.inlineData);
      assert.deepStrictEqual(img.inlineData, { mimeType: 'image/png',
                                               data: PNG });
    }
  });
}

for (const stream of [false, true]) {
  test(`a custom tool (Codex's apply_patch), ${stream ? '' : 'not '}`
       + 'streamed: a custom_tool_call round', async () => {
    const custom = [{ type: 'custom', name: 'apply_patch',
                      description: 'edit files' }];
    const input = [{ role: 'user', content: 'fix it' }];
    let r;
    if (stream) {
      const ev = await events({ model: 'm-anthropic', tools: custom, input });
      r = ev[ev.length - 1].response;
      const done = ev.find((e) =>
        e.type === 'response.custom_tool_call_input.done');
      assert.strictEqual(done.input, '{"city":"Paris"}');
    } else {
      r = await client.responses.create({ model: 'm-anthropic', input,
                                          tools: custom });
    }
    const call = r.output[0];
    assert.strictEqual(call.type, 'custom_tool_call');
    assert.strictEqual(call.name, 'apply_patch');
    assert.strictEqual(call.input, '{"city":"Paris"}');
    assert.deepStrictEqual(lastRequest('anthropic').body.tools[0]
      .input_schema.required, ['input']);
    const r2 = await client.responses.create({ model: 'm-anthropic',
      tools: custom, input: [...input, call, { type:
        'custom_tool_call_output', call_id: call.call_id, output: 'Done' }] });
    assert.match(r2.output_text, /tool said: Done/);
  });
}

test('an OpenAI model falls back to an Anthropic one', async () => {
  mock.reset();
  const r = await client.responses.create({ model: 'm-dead', input: 'hi' });
  assert.strictEqual(r.output_text, 'hello from the provider');
  lastRequest('anthropic');

  const ev = await events({ model: 'm-dead', input: 'hi' });
  assert.strictEqual(ev[ev.length - 1].type, 'response.completed');
  assert.strictEqual(ev.filter((e) => e.type === 'response.output_text.delta')
    .map((e) => e.delta).join(''), 'hello from the provider');
});

test('what cannot be translated is a 400 naming it', async () => {
  await assert.rejects(client.responses.create({ model: 'm-anthropic',
    input: [{ type: 'item_reference', id: 'msg_1' }] }), (e) => {
    assert.strictEqual(e.status, 400);
    assert.match(e.message, /input\[0\].*item_reference/);
    return true;
  });
  await assert.rejects(client.responses.create({ model: 'm-gemini',
    input: 'hi', previous_response_id: 'resp_1' }), (e) => {
    assert.strictEqual(e.status, 400);
    assert.match(e.message, /previous_response_id/);
    return true;
  });
});

// a background response is billed by the provider when it ends, where the
// gateway never sees its usage: refused before any provider is asked,
// under any spelling a provider's parser would read as "background"
test('background responses are refused: their usage could not be billed',
async () => {
  const seen = mock.requests.length;
  for (const model of ['m-anthropic', 'm-dead']) {
    await assert.rejects(client.responses.create({ model, input: 'hi',
      background: true }), (e) => {
      assert.strictEqual(e.status, 400);
      assert.strictEqual(e.code, 'unsupported_parameter');
      assert.match(e.message, /background/);
      return true;
    });
  }
  for (const body of ['{"model":"m-anthropic","input":"hi","Background":true}',
    '{"model":"m-anthropic","input":"hi","background":1}',
    '{"model":"m-anthropic","input":"hi","background":false,'
    + '"background":true}']) {
    const r = await fetch(gw.baseURL + '/responses', { method: 'POST',
      headers: { authorization: 'Bearer ' + gw.masterKey,
                 'content-type': 'application/json' }, body });
    assert.strictEqual(r.status, 400, body);
  }
  assert.strictEqual(mock.requests.length, seen, 'a provider was asked');
  const ok = await client.responses.create({ model: 'm-anthropic',
    input: 'hi', background: false });
  assert.strictEqual(ok.status, 'completed');
});

// -- reasoning ------------------------------------------------------------
//
// The chat-style interfaces carry it too: each SDK's own parameter and
// content against a provider of another style.

test('anthropic: reasoning.effort is thinking; its block a reasoning item',
     async () => {
  mock.reset();
  const r = await client.responses.create({ model: 'm-anthropic',
    input: 'hi', reasoning: { effort: 'high', summary: 'auto' },
    include: ['reasoning.encrypted_content'], max_output_tokens: 500,
    temperature: 0.3 });
  const up = lastRequest('anthropic').body;
  assert.deepStrictEqual(up.thinking, { type: 'enabled',
                                        budget_tokens: 4096 });
  assert.strictEqual(up.max_tokens, 4096 + 500);
  assert.strictEqual(up.temperature, undefined);
  assert.strictEqual(r.output[0].type, 'reasoning');
  assert.deepStrictEqual(r.output[0].summary, [{ type: 'summary_text',
                                                 text: 'mock thoughts' }]);
  assert.strictEqual(r.output[0].encrypted_content, 'anthropic:sig-mock');
  assert.strictEqual(r.output_text, 'hello from the provider');

  const ev = await events({ model: 'm-anthropic', input: 'hi',
                            reasoning: { effort: 'low' } });
  assert.strictEqual(ev.filter((e) =>
    e.type === 'response.reasoning_summary_text.delta')
    .map((e) => e.delta).join(''), 'mock thoughts');
  const done = ev[ev.length - 1].response;
  assert.strictEqual(done.output[0].type, 'reasoning');
  assert.strictEqual(done.output[0].encrypted_content, 'anthropic:sig-mock');
  assert.strictEqual(done.output[1].content[0].text,
                     'hello from the provider');
  assert.strictEqual(lastRequest('anthropic').body.thinking.budget_tokens,
                     1024);
});

for (const stream of [false, true]) {
  test(`anthropic: a tool round with thinking, ${stream ? '' : 'not '}`
       + 'streamed: the signed block goes back first', async () => {
    const req = { model: 'm-anthropic', tools,
                  reasoning: { effort: 'medium' },
                  include: ['reasoning.encrypted_content'] };
    const input = [{ role: 'user', content: 'weather in Paris?' }];
    let r;
    if (stream) {
      const ev = await events({ ...req, input });
      r = ev[ev.length - 1].response;
    } else {
      r = await client.responses.create({ ...req, input });
    }
    assert.deepStrictEqual(r.output.map((o) => o.type),
                           ['reasoning', 'function_call']);
    const call = r.output[1];
    // Codex sends the output items back as they came, then the result
    const r2 = await client.responses.create({ ...req, input: [...input,
      ...r.output, { type: 'function_call_output', call_id: call.call_id,
                     output: 'sunny' }] });
    assert.match(r2.output_text, /tool said: sunny/);
    const up = lastRequest('anthropic').body;
    assert.strictEqual(up.thinking.budget_tokens, 2048);
    assert.deepStrictEqual(up.messages[1].content[0], { type: 'thinking',
      thinking: 'mock thoughts', signature: 'sig-mock' });
    assert.strictEqual(up.messages[1].content[1].type, 'tool_use');
  });
}

for (const stream of [false, true]) {
  test(`gemini: a tool round with thinking, ${stream ? '' : 'not '}streamed:`
       + ' the call\'s thoughtSignature goes back', async () => {
    const req = { model: 'm-gemini', tools, reasoning: { effort: 'low' } };
    const input = [{ role: 'user', content: 'weather in Paris?' }];
    let r;
    if (stream) {
      const ev = await events({ ...req, input });
      r = ev[ev.length - 1].response;
    } else {
      r = await client.responses.create({ ...req, input });
    }
    const call = r.output.find((o) => o.type === 'function_call');
    assert.ok(call, JSON.stringify(r.output));
    const r2 = await client.responses.create({ ...req, input: [...input,
      ...r.output, { type: 'function_call_output', call_id: call.call_id,
                     output: 'sunny' }] });
    assert.match(r2.output_text, /tool said: .*sunny/);
    const a = lastRequest('gemini').body.contents[1];
    assert.strictEqual(a.parts[0].thoughtSignature, 'gsig-mock');
  });
}

test('gemini: reasoning.effort is thinkingConfig; thoughts a reasoning item',
     async () => {
  mock.reset();
  const r = await client.responses.create({ model: 'm-gemini', input: 'hi',
    reasoning: { effort: 'low' } });
  const up = lastRequest('gemini').body;
  assert.deepStrictEqual(up.generationConfig.thinkingConfig,
                         { thinkingBudget: 1024, includeThoughts: true });
  assert.strictEqual(r.output[0].type, 'reasoning');
  assert.strictEqual(r.output[0].summary[0].text, 'mock thoughts');
  assert.strictEqual(r.output_text, 'hello from the provider');

  const s = client.responses.stream({ model: 'm-gemini', input: 'hi',
                                      reasoning: { effort: 'high' } });
  let thoughts = '';
  s.on('response.reasoning_summary_text.delta', (e) => {
    thoughts += e.delta;
  });
  const f = await s.finalResponse();
  assert.strictEqual(thoughts, 'mock thoughts');
  assert.strictEqual(f.output_text, 'hello from the provider');
  assert.strictEqual(lastRequest('gemini').body.generationConfig
    .thinkingConfig.thinkingBudget, 24576);
});

test('chat.completions: reasoning_effort is thinking; reasoning_content back',
     async () => {
  mock.reset();
  const req = { model: 'm-anthropic', reasoning_effort: 'low',
                messages: [{ role: 'user', content: 'hi' }] };
  const r = await client.chat.completions.create(req);
  assert.deepStrictEqual(lastRequest('anthropic').body.thinking,
                         { type: 'enabled', budget_tokens: 1024 });
  const m = r.choices[0].message;
  assert.strictEqual(m.content, 'hello from the provider');
  assert.strictEqual(m.reasoning_content, 'mock thoughts');
  assert.strictEqual(m.thinking_blocks[0].signature, 'sig-mock');

  let thoughts = '', text = '';
  for await (const ch of await client.chat.completions.create({ ...req,
    stream: true })) {
    for (const c of ch.choices) {
      thoughts += c.delta.reasoning_content || '';
      text += c.delta.content || '';
    }
  }
  assert.strictEqual(thoughts, 'mock thoughts');
  assert.strictEqual(text, 'hello from the provider');
});

test('anthropic SDK: thinking to a Gemini model; thoughts as thinking',
     async () => {
  mock.reset();
  const a = new Anthropic({ baseURL: gw.url, apiKey: gw.masterKey,
                            maxRetries: 0 });
  const req = { model: 'm-gemini', max_tokens: 4000,
                thinking: { type: 'enabled', budget_tokens: 2000 },
                messages: [{ role: 'user', content: 'hi' }] };
  const m = await a.messages.create(req);
  assert.deepStrictEqual(lastRequest('gemini').body.generationConfig
    .thinkingConfig, { thinkingBudget: 2000, includeThoughts: true });
  assert.strictEqual(m.content[0].type, 'thinking');
  assert.strictEqual(m.content[0].thinking, 'mock thoughts');
  assert.strictEqual(m.content[1].text, 'hello from the provider');

  const f = await a.messages.stream(req).finalMessage();
  assert.deepStrictEqual(f.content.map((b) => b.type), ['thinking', 'text']);
  assert.strictEqual(f.content[0].thinking, 'mock thoughts');
});

test('gemini SDK: thinkingConfig to an Anthropic model; thinking as thought',
     async () => {
  mock.reset();
  const ai = new GoogleGenAI({ apiKey: gw.masterKey,
                               httpOptions: { baseUrl: gw.url } });
  const r = await ai.models.generateContent({ model: 'm-anthropic',
    contents: 'hi', config: { maxOutputTokens: 3000, thinkingConfig: {
      thinkingBudget: 1500, includeThoughts: true } } });
  const up = lastRequest('anthropic').body;
  assert.deepStrictEqual(up.thinking, { type: 'enabled',
                                        budget_tokens: 1500 });
  assert.strictEqual(up.max_tokens, 3000);
  const parts = r.candidates[0].content.parts;
  assert.strictEqual(parts[0].thought, true);
  assert.strictEqual(parts[0].text, 'mock thoughts');
  assert.strictEqual(r.text, 'hello from the provider');
});
