'use strict';
// No silent 200s (issue 11): an answer the provider cuts short (half its
// content-length, a chunked body without its last chunk, a reset), one
// with broken chunks, or one that cannot be translated, before anything
// reached the client, is a failed attempt: retried on another deployment
// or a fallback, else a 502 in the client's own shape; a stream cut or
// untranslatable once flowing is at least recorded.  Records (PostgreSQL)
// and $llmproxy_error carry the error code, and the status the client
// got.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const OpenAI = require('openai');
const Anthropic = require('@anthropic-ai/sdk');
const { GoogleGenAI } = require('@google/genai');
const { startGateway, until } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock } = require('../mocks/openai-mock');
const { postJSON, oneConnection } = require('../lib/http');

// prices for models whose cost header a test looks for (an unpriced model's
// answer has none)
const PRICED = { input_cost_per_million: 1, output_cost_per_million: 2 };

const ALL = ['openai', 'anthropic', 'gemini'];
const ALLOWED_FAILS = 4;
const CUT = ['halfLength', 'cutChunked', 'resetMid'];
// an answer of 3 MB, with what JSON escapes and multibyte characters
const BIG = 'h\u00e9llo "w\u00f6rld"\n'.repeat(200000);
// over the 32 MB an answer is held whole
const HUGE = 'x'.repeat(33 << 20);

let pg, gw, m, log;

before(async () => {
  pg = await startPostgres();
  m = {};
  for (const mode of [...CUT, 'junkBody', 'junkStream', 'hugeLength',
                      'closeMid', 'junkClose', 'fullHeader',
                      'badChunked']) {
    m[mode] = await createMock({ name: mode, mode });
  }
  m.good = await createMock({ name: 'good' });
  m.pairbad = await createMock({ name: 'pairbad', mode: 'halfLength' });
  m.big = await createMock({ name: 'big', content: BIG });
  m.bigLength = await createMock({ name: 'bigLength', content: BIG,
                                   withLength: true });
  m.huger = await createMock({ name: 'huger', content: HUGE });

  const providers = {
    good: { api_base: m.good.url, interfaces: ALL,
            models: { solid: {}, pair: {} } },
    pairbad: { api_base: m.pairbad.url, interfaces: ALL,
               models: { pair: {} } },
    // one provider per interface on the junk mock: always translated
    'junk-a': { api_base: m.junkBody.url, interfaces: ['anthropic'],
                models: { 'fb-junkBody': {}, 'alone-junk-a': {} } },
    'junk-o': { api_base: m.junkBody.url, interfaces: ['openai'],
                models: { 'alone-junk-o': {} } },
    huge: { api_base: m.hugeLength.url, interfaces: ['anthropic'],
            models: { 'huge-a': {} } },
    'junk-close': { api_base: m.junkClose.url, interfaces: ['anthropic'],
                    models: { 'junk-close': {} } },
    full: { api_base: m.fullHeader.url, interfaces: ['openai'],
            models: { 'full-header': {} } },
    junks: { api_base: m.junkStream.url, interfaces: ['anthropic'],
             models: { 'junk-stream': {} } },
    cut: { api_base: m.closeMid.url, interfaces: ALL,
           models: { 'cut-stream': {} } },
    // priced: an answer held whole carries its cost header
    'big-o': { api_base: m.big.url, interfaces: ['openai'],
               models: { 'big-pass': PRICED } },
    'big-a': { api_base: m.big.url, interfaces: ['anthropic'],
               models: { 'big-x': PRICED } },
    'bigl-o': { api_base: m.bigLength.url, interfaces: ['openai'],
                models: { 'bigl-pass': PRICED } },
    'bigl-a': { api_base: m.bigLength.url, interfaces: ['anthropic'],
                models: { 'bigl-x': PRICED } },
    'huger-o': { api_base: m.huger.url, interfaces: ['openai'],
                 models: { 'huger-pass': {} } },
    'huger-a': { api_base: m.huger.url, interfaces: ['anthropic'],
                 models: { 'huger-x': {} } },
  };
  const fallbacks = { 'fb-junkBody': ['solid'] };
  for (const mode of [...CUT, 'badChunked']) {
    providers[mode] = { api_base: m[mode].url, interfaces: ALL,
      models: { ['fb-' + mode]: {}, ['alone-' + mode]: {} } };
    fallbacks['fb-' + mode] = ['solid'];
  }
  gw = await startGateway({
    database: pg.url,
    httpExtra: `llmproxy_usage_flush 100ms;
    log_format t17 '$llmproxy_request_id $status $llmproxy_error';
    access_log __DIR__/t17.log t17;`,
    config: { providers, fallbacks },
    settings: { num_retries: 1, allowed_fails: ALLOWED_FAILS,
                cooldown_seconds: 60, request_timeout_seconds: 10 },
  });
  log = path.join(gw.dir, 't17.log');
});

after(async () => {
  const problems = gw ? gw.problems() : [];
  if (gw) await gw.stop();
  for (const k of Object.keys(m || {})) await m[k].close();
  if (pg) pg.destroy();
  assert.deepStrictEqual(problems, []);
});

const sdks = {
  openai: () => new OpenAI({ baseURL: gw.baseURL, apiKey: gw.masterKey,
                             maxRetries: 0, timeout: 30000 }),
  anthropic: () => new Anthropic({ baseURL: gw.url, apiKey: gw.masterKey,
                                   maxRetries: 0, timeout: 30000 }),
  gemini: () => new GoogleGenAI({ apiKey: gw.masterKey,
                                  httpOptions: { baseUrl: gw.url } }),
};

// one non-streamed request through each SDK
const ask = {
  openai: (model) => sdks.openai().chat.completions.create({ model,
    messages: [{ role: 'user', content: 'hi' }] }),
  anthropic: (model) => sdks.anthropic().messages.create({ model,
    max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }),
  gemini: (model) => sdks.gemini().models.generateContent({ model,
    contents: 'hi' }),
};

// status|error|attempts|fallbacks of the records matching the condition
const records = (where) => until(() => pg.psql(
  "SELECT status || '|' || coalesce(error, '') || '|' || attempts || '|'"
  + ` || fallbacks FROM llmproxy_usage WHERE ${where}`));

// the $status and $llmproxy_error logged for a request id
async function logged(id) {
  return until(() => {
    const line = fs.readFileSync(log, 'utf8').split('\n')
      .find((l) => l.startsWith(id + ' '));
    return line && line.slice(id.length + 1);
  });
}

test('an answer cut short or untranslatable falls back: the client gets '
     + 'the good answer', async () => {
  for (const mode of [...CUT, 'junkBody', 'badChunked']) {
    const bad = m[mode];
    bad.reset();
    const { data, response } = await sdks.openai().chat.completions.create({
      model: 'fb-' + mode, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    assert.strictEqual(data.choices[0].message.content, 'hello from good',
                       mode);
    // num_retries 1: the one deployment twice, then the fallback
    assert.strictEqual(bad.requests.length, 2, mode + ' was tried twice');
    assert.strictEqual(response.headers.get('x-llmproxy-model'),
                       'good/solid', mode);
    assert.strictEqual(
      response.headers.get('x-llmproxy-attempted-retries'), '1', mode);
    assert.strictEqual(
      response.headers.get('x-llmproxy-attempted-fallbacks'), '1', mode);
    const id = response.headers.get('x-llmproxy-request-id');
    assert.strictEqual(await records(`request_id = '${id}'`), '200||3|1',
                       mode);
  }
});

test('a second deployment: retried there, and the cut answers count '
     + 'toward its cooldown', async () => {
  m.pairbad.reset();
  const agent = oneConnection();     // one worker: its round-robin
  let retried = 0;
  try {
    for (let i = 0; i < 30 && m.pairbad.requests.length < ALLOWED_FAILS;
         i++) {
      const r = await postJSON(gw.baseURL + '/chat/completions',
        gw.masterKey, { model: 'pair', messages: [] }, { agent });
      assert.strictEqual(r.status, 200, r.text);
      assert.strictEqual(r.body.choices[0].message.content,
                         'hello from good');
      retried += Number(r.headers['x-llmproxy-attempted-retries']);
    }
  } finally {
    agent.destroy();
  }
  assert.strictEqual(m.pairbad.requests.length, ALLOWED_FAILS);
  assert.strictEqual(retried, ALLOWED_FAILS,
                     'each cut answer was retried on the other deployment');
  const st = gw.ctl(['status', '--json']);
  assert.strictEqual(st.status, 0, st.stderr);
  assert.ok(JSON.parse(st.stdout).cooldowns.some(
    (c) => c.deployment === 'pairbad/pair'),
  'the deployment that cut its answers cools down: ' + st.stdout);
});

// what each SDK's error says: status, and the message and code it carries
function checkError(iface, e, code, message) {
  assert.strictEqual(e.status, 502, iface + ': ' + e);
  if (iface === 'openai') {
    assert.strictEqual(e.code, code);
    assert.strictEqual(e.type, 'api_error');
    assert.match(e.message, message);
  } else if (iface === 'anthropic') {
    assert.strictEqual(e.error.type, 'error');
    assert.strictEqual(e.error.error.type, 'api_error');
    assert.match(e.error.error.message, message);
  } else {
    const body = JSON.parse(e.message.replace(/^[^{]*/, ''));
    assert.strictEqual(body.error.code, 502);
    assert.match(body.error.message, message);
  }
}

test('no fallback: a 502 in each SDK\'s shape, recorded with its error '
     + 'code', async () => {
  const cases = [];
  for (const mode of CUT) {
    for (const iface of ALL) {
      cases.push({ mode, iface, model: 'alone-' + mode,
                   code: 'upstream_truncated', message: /cut short/ });
    }
  }
  cases.push({ mode: 'badChunked', iface: 'openai',
               model: 'alone-badChunked', code: 'all_deployments_failed',
               message: /invalid response/ });
  for (const iface of ALL) {
    cases.push({ mode: 'junkBody', iface,
                 model: iface === 'anthropic' ? 'alone-junk-o'
                                              : 'alone-junk-a',
                 code: 'translation_failed',
                 message: /could not be translated/ });
  }
  for (const c of cases) {
    const before = m[c.mode].requests.length;
    await assert.rejects(ask[c.iface](c.model), (e) => {
      checkError(c.iface, e, c.code, c.message);
      return true;
    }, `${c.iface} ${c.mode}`);
    assert.strictEqual(m[c.mode].requests.length, before + 2,
                       `${c.iface} ${c.mode}: tried, and retried`);
  }
  for (const c of cases) {
    assert.strictEqual(await records(`model = '${c.model}' AND interface = `
                                     + `'${c.iface}'`),
                       `502|${c.code}|2|0`, `${c.iface} ${c.mode}`);
  }
});

test('$llmproxy_error and $status say it too', async () => {
  const r = await postJSON(gw.baseURL + '/chat/completions', gw.masterKey,
                           { model: 'alone-cutChunked', messages: [] });
  assert.strictEqual(r.status, 502, r.text);
  assert.strictEqual(r.body.error.code, 'upstream_truncated');
  const id = r.headers['x-llmproxy-request-id'];
  assert.strictEqual(await logged(id), '502 upstream_truncated');
});

test('a translated answer over the hold limit is a 502, not an '
     + 'untranslated 200', async () => {
  const r = await postJSON(gw.baseURL + '/chat/completions', gw.masterKey,
                           { model: 'huge-a', messages: [] });
  assert.strictEqual(r.status, 502, r.text.slice(0, 200));
  assert.strictEqual(r.body.error.code, 'translation_failed');
  assert.match(r.body.error.message, /too large to translate/);
  const id = r.headers['x-llmproxy-request-id'];
  assert.strictEqual(await records(`request_id = '${id}'`),
                     '502|translation_failed|1|0');
  assert.strictEqual(await logged(id), '502 translation_failed');
});

test('an untranslatable answer that only the connection ends: a 502 too',
  async () => {
    // its end is the connection's, which nginx's header phase takes for a
    // failure: held by the filter, and found untranslatable only there
    await assert.rejects(ask.openai('junk-close'), (e) => {
      checkError('openai', e, 'translation_failed',
                 /could not be translated/);
      return true;
    });
    // too late for a retry: one attempt
    assert.strictEqual(await records("model = 'junk-close'"),
                       '502|translation_failed|1|0');
  });

test('a stream cut or untranslatable once flowing: recorded with its '
     + 'error code', async () => {
  // cut by the provider after two chunks
  const res = await fetch(gw.baseURL + '/chat/completions', {
    method: 'POST', headers: { authorization: 'Bearer ' + gw.masterKey,
                               'content-type': 'application/json' },
    body: JSON.stringify({ model: 'cut-stream', stream: true,
                           messages: [] }) });
  assert.strictEqual(res.status, 200);
  try { await res.text(); } catch (e) { /* cut off: fine */ }
  let id = res.headers.get('x-llmproxy-request-id');
  assert.strictEqual(await records(`request_id = '${id}'`),
                     '200|upstream_truncated|1|0');
  assert.strictEqual(await logged(id), '200 upstream_truncated');

  // an event the translator cannot read: the client's stream is cut,
  // which its SDK reports, rather than ended as if it were whole
  let text = null;
  try {
    const r = await fetch(gw.baseURL + '/chat/completions', {
      method: 'POST', headers: { authorization: 'Bearer ' + gw.masterKey,
                                 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'junk-stream', stream: true,
                             messages: [{ role: 'user', content: 'hi' }] }) });
    text = await r.text();
  } catch (e) { /* cut: what it should be */ }
  assert.strictEqual(text, null, 'an untranslatable stream ended whole: '
                                 + text);
  assert.strictEqual(await records("model = 'junk-stream'"),
                     '200|translation_failed|1|0');
  id = pg.psql("SELECT request_id FROM llmproxy_usage"
               + " WHERE model = 'junk-stream'");
  assert.strictEqual(await logged(id), '200 translation_failed');
});

test('a large answer is read whole, chunked or by its length, passed '
     + 'through or translated', async () => {
  for (const model of ['big-pass', 'big-x', 'bigl-pass', 'bigl-x']) {
    const { data, response } = await sdks.openai().chat.completions.create({
      model, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    const text = data.choices[0].message.content;
    assert.ok(text === BIG, `${model}: ${text.length} characters, not `
                            + BIG.length);
    assert.ok(response.headers.get('x-llmproxy-response-cost'),
              model + ': held whole for its cost');
    assert.strictEqual(response.headers.get('x-llmproxy-attempted-retries'),
                       '0', model);
  }
});

test('an answer whose header fills the whole first buffer', async () => {
  const r = await ask.openai('full-header');
  assert.strictEqual(r.choices[0].message.content, 'hello from fullHeader');
});

test('a chunked answer over 32 MB: passed on whole without its cost, or a '
     + '502 when it must be translated', async () => {
  const { data, response } = await sdks.openai().chat.completions.create({
    model: 'huger-pass', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  const text = data.choices[0].message.content;
  assert.ok(text === HUGE, `${text.length} characters, not ${HUGE.length}`);
  assert.strictEqual(response.headers.get('x-llmproxy-response-cost'), null);

  await assert.rejects(ask.openai('huger-x'), (e) => {
    checkError('openai', e, 'translation_failed', /too large to translate/);
    return true;
  });
});
