'use strict';
// $llmproxy_* variables in log_format: a JSON access log of every request
// with its model, deployment, tokens, cost and attempts.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const OpenAI = require('openai');
const { startGateway, sleep } = require('../lib/gateway');
const { createMock } = require('../mocks/openai-mock');

let gw, ok, bad, log;

before(async () => {
  ok = await createMock({ name: 'ok' });
  bad = await createMock({ name: 'bad', mode: 'fail500' });
  gw = await startGateway({
    httpExtra: `log_format llmproxy_json escape=json '{'
        '"id":"$llmproxy_request_id","alias":"$llmproxy_key_alias",'
        '"key":"$llmproxy_key_hash","model":"$llmproxy_model",'
        '"deployment":"$llmproxy_deployment",'
        '"interface":"$llmproxy_interface","stream":"$llmproxy_stream",'
        '"prompt":"$llmproxy_prompt_tokens",'
        '"completion":"$llmproxy_completion_tokens",'
        '"total":"$llmproxy_total_tokens","cost":"$llmproxy_cost",'
        '"attempts":"$llmproxy_attempts","retries":"$llmproxy_retries",'
        '"fallbacks":"$llmproxy_fallbacks","error":"$llmproxy_error",'
        '"status":"$status"}';
    access_log DIR/usage.log llmproxy_json;`.replace('DIR', '__DIR__'),
    config: {
      providers: {
        ok: { api_base: ok.url, interfaces: ['openai'],
              models: { priced: { model: 'up', input_cost_per_million: 1.25,
                                  output_cost_per_million: 10 } } },
        bad: { api_base: bad.url, interfaces: ['openai'],
               models: { flaky: {} } },
      },
      fallbacks: { flaky: ['priced'] },
      settings: { num_retries: 0 },
    },
  });
  log = path.join(gw.dir, 'usage.log');
});

after(async () => {
  const problems = gw.problems();
  await gw.stop();
  await ok.close();
  await bad.close();
  assert.deepStrictEqual(problems, []);
});

async function lines() {
  await sleep(100);
  return fs.readFileSync(log, 'utf8').trim().split('\n').map(JSON.parse);
}

test('a request is logged with its model, tokens and cost', async () => {
  const client = new OpenAI({ baseURL: gw.baseURL, apiKey: gw.masterKey,
                              maxRetries: 0 });
  const { response } = await client.chat.completions.create({
    model: 'flaky', messages: [] }).withResponse();
  const id = response.headers.get('x-llmproxy-request-id');
  const rec = (await lines()).find((l) => l.id === id);
  assert.ok(rec, 'the request is in the log');
  assert.strictEqual(rec.model, 'flaky');
  assert.strictEqual(rec.deployment, 'ok/priced');
  assert.strictEqual(rec.alias, 'master');
  assert.strictEqual(rec.key, '', 'the master key has no hash logged');
  assert.strictEqual(rec.interface, 'openai');
  assert.strictEqual(rec.stream, 'false');
  assert.strictEqual(rec.prompt, '11');
  assert.strictEqual(rec.completion, '7');
  assert.strictEqual(rec.total, '18');
  // 11 * 1.25 / 1e6 + 7 * 10 / 1e6
  assert.strictEqual(rec.cost, '0.00008375');
  assert.strictEqual(rec.attempts, '2');
  assert.strictEqual(rec.fallbacks, '1');
  assert.strictEqual(rec.status, '200');
  assert.ok(!JSON.stringify(rec).includes(gw.masterKey));
});

test('a refused request is logged with its error code', async () => {
  const r = await fetch(gw.baseURL + '/chat/completions', {
    method: 'POST', headers: { authorization: 'Bearer ' + gw.masterKey },
    body: JSON.stringify({ model: 'nope', messages: [] }) });
  const id = r.headers.get('x-llmproxy-request-id');
  const rec = (await lines()).find((l) => l.id === id);
  assert.strictEqual(rec.status, '404');
  assert.strictEqual(rec.error, 'model_not_found');
  assert.strictEqual(rec.model, 'nope');
  assert.strictEqual(rec.deployment, '');
  assert.strictEqual(rec.total, '');
});

test('GET /metrics sums every worker in Prometheus text', async () => {
  const { postJSON } = require('../lib/http');
  for (let i = 0; i < 10; i++) {
    // a new connection each time: both workers serve some
    const r = await postJSON(gw.url + '/v1/chat/completions', gw.masterKey,
                             { model: 'flaky', messages: [] });
    assert.strictEqual(r.status, 200);
  }
  // a request is counted at its log phase, after its answer went out
  let res, text;
  for (let i = 0; i < 30; i++) {
    res = await fetch(gw.url + '/metrics');
    text = await res.text();
    if (/status="2xx"\} 11\n/.test(text)) break;
    await sleep(100);
  }
  assert.strictEqual(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const value = (series) => {
    const line = text.split('\n').find((l) => l.startsWith(series + ' '));
    assert.ok(line, 'no line ' + series + ' in\n' + text);
    return Number(line.slice(series.length + 1));
  };
  const l = 'model="flaky",deployment="ok/priced",key="master"';
  assert.strictEqual(value(`llmproxy_requests_total{${l},status="2xx"}`), 11);
  assert.strictEqual(value(`llmproxy_tokens_total{${l},type="prompt"}`), 121);
  assert.strictEqual(value(`llmproxy_tokens_total{${l},type="completion"}`),
                     77);
  assert.ok(Math.abs(value(`llmproxy_cost_usd_total{${l}}`)
                     - 11 * 0.00008375) < 1e-9);
  // "bad" cools down after allowed_fails (3) failures: later requests go
  // straight to the fallback.  The failures are the failed deployment's,
  // not the one that answered.
  assert.strictEqual(value(`llmproxy_upstream_failures_total{${l}}`), 0);
  assert.strictEqual(value('llmproxy_upstream_failures_total{model="flaky",'
    + 'deployment="bad/flaky",key="master"}'), 3);
  assert.strictEqual(value(`llmproxy_fallbacks_total{${l}}`), 11);
  assert.strictEqual(
    value(`llmproxy_request_duration_seconds_count{${l}}`), 11);
  assert.strictEqual(
    value(`llmproxy_time_to_first_byte_seconds_count{${l}}`), 11);
  assert.strictEqual(value('llmproxy_requests_total{model="(unknown)",'
    + 'deployment="",key="master",status="4xx"}'), 1);
  assert.ok(value('llmproxy_config_generation') >= 1);
  assert.ok(!text.includes(gw.masterKey));
});
