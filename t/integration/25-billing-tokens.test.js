'use strict';
// Billing that matches the provider's invoice (SPEC §4, §8; issue 13):
// cache reads and writes and reasoning tokens from each provider style,
// priced the way that provider bills them, streamed and not, through the
// official SDKs; a model of the shipped price list priced without config
// prices; a model priced nowhere recorded and shown as unpriced, never $0.
// Each request's record (PostgreSQL), its $llmproxy_* variables, /metrics
// and `llmproxyctl usage` carry the token kinds.

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

// the example: 10 input, 2,000 cache-write, 100,000 cache-read and
// 50 output tokens at $3/$15: Anthropic bills writes at 1.25x and reads at
// 0.1x the input price
const ANTHROPIC = { usage: { prompt_tokens: 10, completion_tokens: 50 },
  details: { cache_creation_input_tokens: 2000,
             cache_read_input_tokens: 100000 } };
const ANTHROPIC_COST = (10 * 3 + 2000 * 3.75 + 100000 * 0.3 + 50 * 15) / 1e6;

// OpenAI's prompt_tokens include the cached ones; reasoning tokens are part
// of completion_tokens.  gpt-5 from the price list: $1.25, cached $0.125,
// output $10.
const OPENAI = { usage: { prompt_tokens: 1000, completion_tokens: 500 },
  details: { prompt_tokens_details: { cached_tokens: 800 },
             completion_tokens_details: { reasoning_tokens: 300 } } };
const OPENAI_COST = (200 * 1.25 + 800 * 0.125 + 500 * 10) / 1e6;

// Gemini's promptTokenCount includes cachedContentTokenCount; thoughts are
// reported apart from the candidates and billed as output.  Config prices
// $0.30/$2.50; Gemini 2.5 bills cached input at 0.1x.
const GEMINI = { usage: { prompt_tokens: 1000, completion_tokens: 100 },
  details: { cachedContentTokenCount: 600, thoughtsTokenCount: 200 } };
const GEMINI_COST = (400 * 0.3 + 600 * 0.03 + 300 * 2.5) / 1e6;

let pg, gw, mock, key;

before(async () => {
  // the Gemini provider's key is stored encrypted (sync and nginx inherit)
  process.env.LLMPROXY_SALT_KEY = 'salt-'
    + require('node:crypto').randomBytes(12).toString('hex');
  pg = await startPostgres();
  mock = await createMock({ name: 'b' });
  gw = await startGateway({
    database: pg.url,
    workers: 2,
    httpExtra: 'llmproxy_usage_flush 100ms;\n'
      + "    log_format tokens '$llmproxy_request_id $llmproxy_prompt_tokens "
      + '$llmproxy_cache_read_tokens $llmproxy_cache_creation_tokens '
      + '$llmproxy_completion_tokens $llmproxy_reasoning_tokens '
      + "$llmproxy_unpriced $llmproxy_cost';\n"
      + '    access_log __DIR__/tokens.log tokens;',
    config: {
      providers: {
        anth: { api_base: mock.url, interfaces: ['anthropic'],
                models: {
                  // config prices, cache prices derived from them
                  sonnet: { model: 'claude-sonnet-4-5',
                            input_cost_per_million: 3,
                            output_cost_per_million: 15 },
                  // no prices here: the shipped list's
                  'claude-haiku-4-5': {} } },
        oai: { api_base: mock.url, interfaces: ['openai'],
               models: { 'gpt-5': {}, 'mystery-model': {} } },
        gem: { api_base: mock.url, interfaces: ['gemini'], api_key: 'g-secret',
               models: { 'gemini-2.5-flash': { input_cost_per_million: 0.3,
                                               output_cost_per_million: 2.5 } } },
      },
    },
  });
  const r = gw.ctl(['key', 'create', '--alias', 'billing']);
  assert.strictEqual(r.status, 0, r.stderr);
  key = r.stdout.trim();
  await until(async () => {
    try {
      await openai().chat.completions.create({ model: 'gpt-5',
        messages: [{ role: 'user', content: 'hi' }] });
      return true;
    } catch (e) { return false; }
  });
});

after(async () => {
  const problems = gw ? gw.problems() : [];
  if (gw) await gw.stop();
  if (mock) await mock.close();
  if (pg) pg.destroy();
  assert.deepStrictEqual(problems, []);
});

const openai = () => new OpenAI({ baseURL: gw.baseURL, apiKey: key,
                                  maxRetries: 0 });
const anthropic = () => new Anthropic({ baseURL: gw.url, apiKey: key,
                                        maxRetries: 0 });
const gemini = () => new GoogleGenAI({ apiKey: key,
                                       httpOptions: { baseUrl: gw.url } });

function answerWith(style, { usage, details }) {
  mock.state.usage = usage;
  mock.state.usageDetails = { [style]: details };
}

// the record of a request, once it is in the database
async function record(id) {
  const cols = ['model', 'prompt_tokens', 'completion_tokens',
    'total_tokens', 'cache_read_tokens', 'cache_creation_tokens',
    'cache_creation_1h_tokens', 'reasoning_tokens', 'unpriced',
    "coalesce(cost::text, 'NULL')"];
  const line = await until(() => pg.psql(`SELECT ${cols.join(', ')}`
    + ` FROM llmproxy_usage WHERE request_id = '${id}'`));
  const v = line.split('|');
  return { model: v[0], prompt: Number(v[1]), completion: Number(v[2]),
    total: Number(v[3]), cacheRead: Number(v[4]),
    cacheCreation: Number(v[5]), cache1h: Number(v[6]),
    reasoning: Number(v[7]), unpriced: v[8] === 't',
    cost: v[9] === 'NULL' ? null : Number(v[9]) };
}

// the $llmproxy_* variables the access log had for a request
async function logged(id) {
  const file = path.join(gw.dir, 'tokens.log');
  const line = await until(() => fs.existsSync(file)
    && fs.readFileSync(file, 'utf8').split('\n')
      .find((l) => l.startsWith(id + ' ')));
  const [, prompt, read, created, completion, reasoning, unpriced, cost] =
    line.split(' ');
  return { prompt, read, created, completion, reasoning, unpriced, cost };
}

const exact = (a, b, what) =>
  assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

async function anthropicCall(model, stream) {
  if (!stream) {
    const { data, response } = await anthropic().messages.create({ model,
      max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    return { usage: data.usage, response };
  }
  const { data: events, response } = await anthropic().messages.create({
    model, max_tokens: 50, stream: true,
    messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  let usage = {};
  for await (const ev of events) {
    if (ev.type === 'message_start') usage = { ...ev.message.usage };
    if (ev.type === 'message_delta') Object.assign(usage, ev.usage);
  }
  return { usage, response };
}

for (const stream of [false, true]) {
  test(`Anthropic cache reads and writes, ${stream ? 'streamed' : 'not '
        + 'streamed'}: the provider's bill`, async () => {
    answerWith('anthropic', ANTHROPIC);
    const { usage, response } = await anthropicCall('sonnet', stream);
    // the client sees the provider's usage as it is
    assert.strictEqual(usage.cache_read_input_tokens, 100000);
    assert.strictEqual(usage.cache_creation_input_tokens, 2000);
    const id = response.headers.get('x-llmproxy-request-id');
    if (!stream) {
      assert.strictEqual(response.headers.get('x-llmproxy-response-cost'),
                         '0.03828000');
    }
    const r = await record(id);
    exact(r.cost, ANTHROPIC_COST, 'cost');
    exact(r.cost, 0.03828, 'cost');
    assert.deepStrictEqual([r.prompt, r.cacheRead, r.cacheCreation,
      r.cache1h, r.completion, r.reasoning, r.total, r.unpriced],
      [102010, 100000, 2000, 0, 50, 0, 102060, false]);
    const v = await logged(id);
    assert.deepStrictEqual(v, { prompt: '102010', read: '100000',
      created: '2000', completion: '50', reasoning: '0', unpriced: 'false',
      cost: '0.03828000' });
  });
}

test('Anthropic 1-hour cache writes are billed at 2x, 5-minute at 1.25x',
async () => {
  answerWith('anthropic', { usage: ANTHROPIC.usage, details: {
    ...ANTHROPIC.details, cache_creation: { ephemeral_5m_input_tokens: 500,
                                            ephemeral_1h_input_tokens: 1500 } } });
  for (const stream of [false, true]) {
    const { response } = await anthropicCall('sonnet', stream);
    const r = await record(response.headers.get('x-llmproxy-request-id'));
    exact(r.cost, (10 * 3 + 500 * 3.75 + 1500 * 6 + 100000 * 0.3 + 50 * 15)
                  / 1e6, 'cost');
    assert.strictEqual(r.cacheCreation, 2000);
    assert.strictEqual(r.cache1h, 1500);
  }
});

test('OpenAI cached and reasoning tokens, streamed and not; gpt-5 priced '
     + 'by the shipped list', async () => {
  answerWith('openai', OPENAI);
  const { data, response } = await openai().chat.completions.create({
    model: 'gpt-5', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  assert.strictEqual(data.usage.prompt_tokens_details.cached_tokens, 800);
  assert.strictEqual(data.usage.completion_tokens_details.reasoning_tokens,
                     300);
  let r = await record(response.headers.get('x-llmproxy-request-id'));
  exact(r.cost, OPENAI_COST, 'cost');
  assert.deepStrictEqual([r.prompt, r.cacheRead, r.cacheCreation,
    r.completion, r.reasoning, r.total, r.unpriced],
    [1000, 800, 0, 500, 300, 1500, false]);

  const { data: s, response: sr } = await openai().chat.completions.create({
    model: 'gpt-5', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  let last;
  for await (const c of s) if (c.usage) last = c.usage;
  assert.strictEqual(last.prompt_tokens_details.cached_tokens, 800);
  r = await record(sr.headers.get('x-llmproxy-request-id'));
  exact(r.cost, OPENAI_COST, 'streamed cost');
  assert.deepStrictEqual([r.cacheRead, r.reasoning], [800, 300]);
});

test('Responses API cached and reasoning tokens (its input_tokens include '
     + 'the cached ones)', async () => {
  mock.state.usage = OPENAI.usage;
  mock.state.usageDetails = { responses: {
    input_tokens_details: { cached_tokens: 800 },
    output_tokens_details: { reasoning_tokens: 300 } } };
  const { data, response } = await openai().responses.create({
    model: 'gpt-5', input: 'hi' }).withResponse();
  assert.strictEqual(data.usage.input_tokens_details.cached_tokens, 800);
  const r = await record(response.headers.get('x-llmproxy-request-id'));
  exact(r.cost, OPENAI_COST, 'cost');
  assert.deepStrictEqual([r.prompt, r.cacheRead, r.completion, r.reasoning],
                         [1000, 800, 500, 300]);
});

test('Gemini cached and thought tokens, streamed and not', async () => {
  answerWith('gemini', GEMINI);
  const req = { model: 'gemini-2.5-flash', contents: 'hi' };
  const res = await gemini().models.generateContent(req);
  assert.strictEqual(res.usageMetadata.cachedContentTokenCount, 600);
  assert.strictEqual(res.usageMetadata.thoughtsTokenCount, 200);
  for await (const ch of await gemini().models.generateContentStream(req)) {
    assert.ok(ch);
  }
  // the Gemini SDK hides response headers: the records by model instead
  const rows = await until(() => {
    const out = pg.psql('SELECT prompt_tokens, completion_tokens,'
      + ' cache_read_tokens, reasoning_tokens, cost, stream'
      + " FROM llmproxy_usage WHERE model = 'gemini-2.5-flash'"
      + ' ORDER BY created_at');
    return out.split('\n').length === 2 && out;
  });
  for (const line of rows.split('\n')) {
    const v = line.split('|');
    assert.deepStrictEqual(v.slice(0, 4).map(Number), [1000, 300, 600, 200]);
    exact(Number(v[4]), GEMINI_COST, 'cost');
  }
  assert.deepStrictEqual(rows.split('\n').map((x) => x.split('|')[5]),
                         ['f', 't']);
});

test('translated answers: the client sees the cache tokens in its own '
     + 'style, billed as the provider bills them', async () => {
  // an OpenAI client, an Anthropic provider
  answerWith('anthropic', ANTHROPIC);
  const { data, response } = await openai().chat.completions.create({
    model: 'sonnet', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  assert.strictEqual(data.usage.prompt_tokens, 102010);
  assert.strictEqual(data.usage.prompt_tokens_details.cached_tokens, 100000);
  let r = await record(response.headers.get('x-llmproxy-request-id'));
  exact(r.cost, ANTHROPIC_COST, 'cost');
  assert.strictEqual(r.prompt, 102010);

  // an Anthropic client, an OpenAI provider
  answerWith('openai', OPENAI);
  const a = await anthropicCall('gpt-5', false);
  assert.strictEqual(a.usage.input_tokens, 200);
  assert.strictEqual(a.usage.cache_read_input_tokens, 800);
  r = await record(a.response.headers.get('x-llmproxy-request-id'));
  exact(r.cost, OPENAI_COST, 'cost');
  assert.deepStrictEqual([r.prompt, r.cacheRead, r.reasoning],
                         [1000, 800, 300]);
});

test('a model of the price list without config prices is priced by it',
async () => {
  answerWith('anthropic', ANTHROPIC);
  const { response } = await anthropicCall('claude-haiku-4-5', false);
  // claude-haiku-4-5: $1/$5, writes $1.25, reads $0.10
  const r = await record(response.headers.get('x-llmproxy-request-id'));
  exact(r.cost, (10 * 1 + 2000 * 1.25 + 100000 * 0.1 + 50 * 5) / 1e6,
        'cost');
});

test('a model priced nowhere is unpriced: no $0 in the record, the '
     + 'headers, /metrics or llmproxyctl usage', async () => {
  answerWith('openai', OPENAI);
  const { response } = await openai().chat.completions.create({
    model: 'mystery-model', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  assert.strictEqual(response.headers.get('x-llmproxy-response-cost'), null);
  const id = response.headers.get('x-llmproxy-request-id');
  const r = await record(id);
  assert.strictEqual(r.cost, null);
  assert.strictEqual(r.unpriced, true);
  assert.strictEqual(r.cacheRead, 800);
  const v = await logged(id);
  assert.strictEqual(v.unpriced, 'true');
  assert.strictEqual(v.cost, '-');

  // the daily totals count it, and keep the cost of the priced ones
  const daily = pg.psql('SELECT requests, unpriced, cost, cache_read_tokens'
    + " FROM llmproxy_usage_daily WHERE model = 'mystery-model'");
  assert.strictEqual(daily, '1|1|0|800');
  const sonnet = pg.psql('SELECT sum(cache_read_tokens),'
    + ' sum(cache_creation_tokens), sum(unpriced) FROM llmproxy_usage_daily'
    + " WHERE model = 'sonnet'").split('|').map(Number);
  assert.ok(sonnet[0] >= 5 * 100000 && sonnet[1] >= 5 * 2000
            && sonnet[2] === 0, String(sonnet));

  const metrics = await (await fetch(gw.url + '/metrics')).text();
  const value = (series) => {
    const line = metrics.split('\n').find((l) => l.startsWith(series + ' '));
    assert.ok(line, 'no ' + series + ' in\n' + metrics);
    return Number(line.slice(series.length + 1));
  };
  const l = (m, d) => `model="${m}",deployment="${d}",key="billing"`;
  assert.strictEqual(value('llmproxy_unpriced_requests_total{'
                           + l('mystery-model', 'oai/mystery-model') + '}'), 1);
  assert.strictEqual(value('llmproxy_unpriced_requests_total{'
                           + l('gpt-5', 'oai/gpt-5') + '}'), 0);
  assert.strictEqual(value('llmproxy_tokens_total{'
    + l('gpt-5', 'oai/gpt-5') + ',type="cache_read"}'), 4 * 800);
  assert.strictEqual(value('llmproxy_tokens_total{'
    + l('gpt-5', 'oai/gpt-5') + ',type="reasoning"}'), 4 * 300);
  assert.ok(value('llmproxy_tokens_total{'
    + l('sonnet', 'anth/sonnet') + ',type="cache_creation"}') >= 2000);

  // sync names the models priced nowhere
  const cfg = JSON.parse(fs.readFileSync(path.join(gw.dir, 'config.json'),
                                         'utf8'));
  const sync = gw.sync(cfg, ['--dry-run']);
  assert.strictEqual(sync.status, 0, sync.stderr);
  assert.match(sync.stderr, /^llmproxyctl: note: priced neither in the config nor in the price list \(of \d{4}-\d\d-\d\d\), recorded as unpriced: oai\/mystery-model \(1 model\)$/m);

  let out = gw.ctl(['usage', '--by', 'model', '--json']);
  assert.strictEqual(out.status, 0, out.stderr);
  const report = JSON.parse(out.stdout);
  const row = (m) => report.rows.find((x) => x.model === m);
  assert.strictEqual(row('mystery-model').cost, null);
  assert.strictEqual(row('mystery-model').unpriced_requests, 1);
  assert.strictEqual(row('gpt-5').cache_read_tokens >= 1600, true);
  assert.strictEqual(row('gpt-5').reasoning_tokens >= 600, true);
  assert.strictEqual(row('gpt-5').unpriced_requests, 0);
  assert.ok(row('sonnet').cache_creation_tokens >= 2 * 2000);
  assert.strictEqual(report.total.unpriced_requests, 1);

  out = gw.ctl(['usage', '--by', 'model']);
  assert.strictEqual(out.status, 0, out.stderr);
  assert.match(out.stdout, /^MODEL +REQUESTS +ERRORS +PROMPT +CACHE READ +CACHE WRITE +COMPLETION +REASONING +COST USD +UNPRICED/);
  const line = out.stdout.split('\n').find((x) => x.startsWith('mystery-model'));
  assert.match(line, / unpriced +1 /);
  assert.doesNotMatch(line, /0\.000000/);
});

// Anthropic's count_tokens and Gemini's countTokens are free at the
// provider: their answer's input_tokens/totalTokens are a count, not
// usage, and must not be billed or counted against the key's tpm.
test('token counting endpoints are recorded but not billed', async () => {
  answerWith('anthropic', ANTHROPIC);
  const { data, response } = await anthropic().messages.countTokens({
    model: 'sonnet', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  assert.strictEqual(data.input_tokens, 10);
  let r = await record(response.headers.get('x-llmproxy-request-id'));
  assert.deepStrictEqual([r.prompt, r.completion, r.total, r.cost,
    r.unpriced], [0, 0, 0, 0, false]);

  answerWith('gemini', GEMINI);
  const before = Number(await pg.psql("SELECT count(*) FROM llmproxy_usage"
    + " WHERE endpoint LIKE '%countTokens%'"));
  const g = await gemini().models.countTokens({ model: 'gemini-2.5-flash',
                                                contents: 'hi' });
  assert.strictEqual(g.totalTokens, 1000);
  const line = await until(async () => {
    const l = await pg.psql('SELECT prompt_tokens, total_tokens, cost'
      + " FROM llmproxy_usage WHERE endpoint LIKE '%countTokens%'"
      + ' ORDER BY created_at DESC LIMIT 1');
    const n = Number(await pg.psql('SELECT count(*) FROM llmproxy_usage'
      + " WHERE endpoint LIKE '%countTokens%'"));
    return n > before && l;
  });
  assert.strictEqual(line, '0|0|0');
});
