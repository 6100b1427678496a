'use strict';
// `llmproxyctl import litellm config.yaml` (SPEC §12): LiteLLM proxy
// configs as its docs write them (t/data/litellm/), YAML's anchors, merge
// keys and documents, broken YAML with line and column; the result passes
// `sync --dry-run`, and a converted config routes, aliases and falls back
// through a real gateway.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const OpenAI = require('openai');
const { startGateway, ROOT, CTL } = require('../lib/gateway');
const { createMock } = require('../mocks/openai-mock');

const DATA = path.join(ROOT, 't', 'data', 'litellm');
let gw, primary, backup, tmp;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmproxy-litellm-'));
  primary = await createMock({ name: 'primary' });
  backup = await createMock({ name: 'backup' });
  // x-litellm-* header aliases on (off by default: 22-litellm-key-api)
  gw = await startGateway({ httpExtra: 'llmproxy_litellm_headers on;' });
});

after(async () => {
  const problems = gw ? gw.problems() : [];
  if (gw) await gw.stop();
  if (primary) await primary.close();
  if (backup) await backup.close();
  fs.rmSync(tmp, { recursive: true, force: true });
  assert.deepStrictEqual(problems, []);
});

let n = 0;
function importYaml(file, args = [], env = {}) {
  const out = path.join(tmp, 'out' + (++n));
  fs.mkdirSync(out);
  const r = spawnSync(CTL, ['import', 'litellm', file, '-o', out, ...args],
                      { encoding: 'utf8', env: { ...process.env, ...env } });
  const read = (f) => {
    try { return fs.readFileSync(path.join(out, f), 'utf8'); }
    catch (e) { return null; }
  };
  return { ...r, out, config: read('config.json'),
           local: read('config.local.json') };
}

test('a documented proxy_config.yaml: providers, prices, settings, '
     + 'secrets apart, every dropped setting listed', () => {
  const r = importYaml(path.join(DATA, 'proxy_config.yaml'));
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  const c = JSON.parse(r.config);
  const p = c.providers;

  // deployments with the same api_base and key form one provider
  assert.deepStrictEqual(Object.keys(p).sort(),
    ['anthropic', 'gemini', 'groq', 'hosted_vllm', 'openai', 'openai-2']);
  assert.deepStrictEqual(p.openai.interfaces, ['openai']);
  assert.strictEqual(p.openai.api_base, 'https://api.openai.com/v1');
  assert.deepStrictEqual(Object.keys(p.openai.models).sort(),
                         ['gpt-4o', 'gpt-4o-mini']);
  // stream_timeout: the model's stream idle timeout (issue 14)
  assert.deepStrictEqual(p.openai.models['gpt-4o'], { rpm: 480,
    tpm: 100000, stream_idle_timeout_seconds: 60 });
  // a second deployment of gpt-4o (another api_base): the same group
  assert.deepStrictEqual(p['openai-2'].models['gpt-4o'],
                         { model: 'gpt-4o-2024-08-06', weight: 2 });
  assert.strictEqual(p['openai-2'].api_base, 'https://eu.example.com/v1');
  // per token there, per million here
  assert.strictEqual(p.openai.models['gpt-4o-mini'].input_cost_per_million,
                     0.15);
  assert.strictEqual(p.openai.models['gpt-4o-mini'].output_cost_per_million,
                     0.6);
  assert.deepStrictEqual(p.anthropic.models['claude-sonnet'], {
    model: 'claude-sonnet-4-5-20250929', input_cost_per_million: 3,
    output_cost_per_million: 15, cache_creation_input_cost_per_million: 3.75,
    access_groups: ['beta-models'] });
  assert.deepStrictEqual(p.anthropic.interfaces, ['anthropic']);
  assert.deepStrictEqual(p.gemini.interfaces, ['gemini']);
  assert.strictEqual(p.hosted_vllm.api_base, 'http://vllm.internal:8000/v1');
  assert.strictEqual(p.groq.models['llama3-groq'].rpm, 30);
  assert.deepStrictEqual(c.aliases, { 'gpt-4': 'gpt-4o',
                                      claude: 'claude-sonnet' });
  assert.deepStrictEqual(c.fallbacks, {
    'gpt-4o': ['gpt-4o-mini', 'claude-sonnet'],
    'claude-sonnet': ['gpt-4o'] });
  // router_settings win over litellm_settings
  assert.deepStrictEqual(c.settings, { num_retries: 3, allowed_fails: 3,
                                       cooldown_seconds: 30,
                                       request_timeout_seconds: 120 });

  // secrets only in config.local.json, mode 0600
  assert.ok(!r.config.includes('api_key'), r.config);
  assert.ok(!r.config.includes('sk-ant-literal'));
  assert.ok(!r.config.includes('sk-1234'));
  const l = JSON.parse(r.local);
  assert.strictEqual(l.providers.anthropic.api_key,
                     'sk-ant-literal-secret-do-not-leak');
  assert.strictEqual(l.providers.openai.api_key, 'env:OPENAI_API_KEY');
  assert.strictEqual(l.providers['openai-2'].api_key, 'env:OPENAI_EU_KEY');
  assert.strictEqual(l.providers.hosted_vllm, undefined);
  assert.strictEqual(fs.statSync(path.join(r.out, 'config.local.json')).mode
                     & 0o777, 0o600);
  // and never on the terminal
  assert.ok(!(r.stdout + r.stderr).includes('sk-ant-literal'));
  assert.ok(!(r.stdout + r.stderr).includes('sk-1234'));

  for (const dropped of [
    'model_list[2].litellm_params.max_retries',
    'model_list[2].litellm_params.temperature',
    'model_list[0].model_info.mode',
    'model_list[7]: provider "azure"',
    'model_list[8]: provider "bedrock"',
    'model_list[9]: wildcard route',
    'router_settings.model_group_alias.claude.hidden',
    'router_settings.routing_strategy',
    'router_settings.redis_host',
    'router_settings.fallbacks[1].gpt-4-azure',
    'litellm_settings.drop_params',
    'litellm_settings.success_callback',
    'litellm_settings.context_window_fallbacks',
    'general_settings.master_key',
    'general_settings.database_url',
    'environment_variables.LANGFUSE_HOST',
  ]) {
    assert.ok(r.stdout.includes('  ' + dropped), 'not listed: ' + dropped
              + '\n' + r.stdout);
  }

  // what config.json does not take (yet) is listed, not written
  for (const [src, field] of [
    ['model_list[0].litellm_params.timeout', 'request_timeout_seconds'],
    ['model_list[2].model_info.cache_read_input_token_cost',
     'cache_read_input_cost_per_million']]) {
    if (!r.config.includes('"' + field + '"')) {
      assert.ok(r.stdout.includes('  ' + src + ': llmproxy has no ' + field),
                r.stdout);
    }
  }

  // the result passes sync --dry-run as it is
  const s = gw.ctl(['sync', '-c', path.join(r.out, 'config.json'),
                    '--dry-run'],
                   { OPENAI_API_KEY: 'k1', OPENAI_EU_KEY: 'k2',
                     GEMINI_API_KEY: 'k3', GROQ_API_KEY: 'k4' });
  assert.strictEqual(s.status, 0, s.stdout + s.stderr);
  assert.match(s.stdout, /dry run: nothing applied/);
});

test('anchors, aliases and merge keys resolve as PyYAML does', () => {
  const r = importYaml(path.join(DATA, 'anchors.yaml'));
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  const p = JSON.parse(r.config).providers;
  // keys written in the mapping win over "<<: *openai"
  assert.deepStrictEqual(p.openai.models.fast, {
    model: 'gpt-4.1-mini', rpm: 200, tpm: 50000,
    input_cost_per_million: 1, output_cost_per_million: 2 });
  // "<<: [*slow, *openai]": the earlier mapping wins
  assert.strictEqual(p.openai.models.slow.rpm, 10);
  assert.strictEqual(p.openai.models.slow.tpm, 50000);
  // a merged price overridden in place; a folded scalar as the key
  assert.strictEqual(p.anthropic.models['quoted: name']
                     .output_cost_per_million, 4);
  assert.strictEqual(JSON.parse(r.local).providers.anthropic.api_key,
                     'env:ANTHROPIC_API_KEY');
  // the same name on another api_base, a duplicate key's last value
  assert.strictEqual(p['openai-2'].models.fast.weight, 4);
  assert.strictEqual(p['openai-2'].api_base, 'http://replica.internal:8080');
  assert.deepStrictEqual(JSON.parse(r.config).fallbacks, { slow: ['fast'] });
});

test('include: files beside the config; credential_list by name', () => {
  const r = importYaml(path.join(DATA, 'include', 'parent.yaml'));
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  const c = JSON.parse(r.config);
  const l = JSON.parse(r.local);
  // the included model lists extend the config's
  assert.deepStrictEqual(Object.keys(c.providers).sort(),
                         ['anthropic', 'openai', 'openai-2']);
  assert.deepStrictEqual(c.providers.openai.models,
                         { 'from-parent': { model: 'gpt-4.1' } });
  // the credential's api_base and key; a deployment's own key wins
  assert.strictEqual(c.providers.openai.api_base,
                     'https://eu.example.com/v1');
  assert.strictEqual(l.providers.openai.api_key, 'env:OPENAI_EU_KEY');
  assert.strictEqual(c.providers['openai-2'].api_base,
                     'https://eu.example.com/v1');
  assert.strictEqual(l.providers['openai-2'].api_key, 'env:OTHER_KEY');
  assert.ok(c.providers.anthropic.models['from-second-include']);
  // a later file's settings replace the earlier ones, as in LiteLLM
  assert.deepStrictEqual(c.settings, { num_retries: 2 });
  // listed once, not per deployment using the credential
  assert.strictEqual(r.stdout.split('credential_values.organization')
                     .length, 2, r.stdout);

  const bad = path.join(tmp, 'inc.yaml');
  fs.writeFileSync(bad, 'include: [nowhere.yaml]\nmodel_list: []\n');
  const b = importYaml(bad);
  assert.strictEqual(b.status, 1);
  assert.match(b.stderr, /nowhere\.yaml: No such file/);
});

test('broken YAML: file, line and column; nothing written', () => {
  let r = importYaml(path.join(DATA, 'broken.yaml'));
  assert.strictEqual(r.status, 1);
  assert.match(r.stderr, /broken\.yaml:5:6: did not find expected key/);
  assert.strictEqual(r.config, null);

  r = importYaml(path.join(DATA, 'two-documents.yaml'));
  assert.strictEqual(r.status, 1);
  assert.match(r.stderr, /two-documents\.yaml:4:1: a second YAML document/);
  assert.strictEqual(r.config, null);

  // an anchor that contains itself ends with an error, not a hang
  r = importYaml(path.join(DATA, 'alias-loop.yaml'));
  assert.strictEqual(r.status, 1);
  assert.match(r.stderr, /alias-loop\.yaml:\d+:\d+: nested too deeply/);

  const bad = path.join(tmp, 'tab.yaml');
  fs.writeFileSync(bad, 'model_list:\n\t- model_name: a\n');
  r = importYaml(bad);
  assert.strictEqual(r.status, 1);
  assert.match(r.stderr, /tab\.yaml:2:1: /);

  fs.writeFileSync(bad, '# nothing\n');
  r = importYaml(bad);
  assert.strictEqual(r.status, 1);
  assert.match(r.stderr, /tab\.yaml: empty/);

  r = importYaml(path.join(tmp, 'missing.yaml'));
  assert.strictEqual(r.status, 1);
  assert.match(r.stderr, /missing\.yaml: No such file/);
});

test('existing files are kept unless --force', () => {
  const out = path.join(tmp, 'keep');
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(out, 'config.json'), '{"mine": true}');
  const file = path.join(DATA, 'anchors.yaml');
  let r = spawnSync(CTL, ['import', 'litellm', file, '-o', out],
                    { encoding: 'utf8' });
  assert.strictEqual(r.status, 2);
  assert.match(r.stderr, /config\.json: File exists \(--force replaces/);
  assert.strictEqual(fs.readFileSync(path.join(out, 'config.json'), 'utf8'),
                     '{"mine": true}');
  r = spawnSync(CTL, ['import', 'litellm', file, '-o', out, '--force'],
                { encoding: 'utf8' });
  assert.strictEqual(r.status, 0, r.stderr);
  assert.ok(JSON.parse(fs.readFileSync(path.join(out, 'config.json'),
                                       'utf8')).providers);
});

test('the imported config routes, aliases and falls back through the '
     + 'gateway', async () => {
  const yaml = path.join(tmp, 'e2e.yaml');
  fs.writeFileSync(yaml, `
model_list:
  - model_name: main
    litellm_params:
      model: openai/upstream-main
      api_base: os.environ/PRIMARY_BASE
      api_key: os.environ/PRIMARY_KEY
      input_cost_per_token: 0.000001
  - model_name: spare
    litellm_params:
      model: hosted_vllm/upstream-spare
      api_base: ${backup.url}/v1
router_settings:
  num_retries: 0
  model_group_alias: {team-default: main}
  fallbacks: [{main: [spare]}]
`);
  const env = { PRIMARY_BASE: primary.url, PRIMARY_KEY: 'sk-upstream-1' };
  const r = importYaml(yaml, [], env);
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  const s = gw.ctl(['sync', '-c', path.join(r.out, 'config.json'), '--force',
                    '--prune'], env);
  assert.strictEqual(s.status, 0, s.stdout + s.stderr);

  const sdk = new OpenAI({ baseURL: gw.baseURL, apiKey: gw.masterKey,
                           maxRetries: 0 });
  const ask = (model) => sdk.chat.completions.create({
    model, messages: [{ role: 'user', content: 'hi' }] });

  primary.reset();
  const { data: first, response } = await sdk.chat.completions.create({
    model: 'team-default', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  assert.strictEqual(first.model, 'upstream-main');
  // LiteLLM's response headers, for clients and dashboards reading them
  const h = (n) => response.headers.get(n);
  assert.ok(h('x-llmproxy-request-id'));
  assert.strictEqual(h('x-litellm-call-id'), h('x-llmproxy-request-id'));
  assert.strictEqual(h('x-litellm-model-id'), h('x-llmproxy-model'));
  for (const n of ['attempted-retries', 'attempted-fallbacks',
                   'overhead-duration-ms', 'response-cost']) {
    assert.ok(h('x-llmproxy-' + n) !== null, n);
    assert.strictEqual(h('x-litellm-' + n), h('x-llmproxy-' + n), n);
  }

  let res = await ask('team-default');
  assert.strictEqual(res.model, 'upstream-main');
  assert.strictEqual(primary.requests.length, 2);
  assert.strictEqual(primary.requests[0].headers.authorization,
                     'Bearer sk-upstream-1');

  primary.mode = 'fail500';
  backup.reset();
  res = await ask('main');
  assert.strictEqual(res.model, 'upstream-spare');
  assert.strictEqual(backup.requests.length, 1);
  primary.mode = 'ok';
});
