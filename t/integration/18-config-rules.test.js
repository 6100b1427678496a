'use strict';
// One set of compiled-config rules (issue 12): the admin API checks a
// posted document with the compiler's validator (common/llmp_config.c),
// the one llmproxyctl ran before it sent it, so a document written by
// hand or by another tool is held to the same rules.  Before, the module
// had its own, looser copy: unknown fields, unsorted or duplicate
// providers, a fractional num_retries, an id that is not provider/model
// and an unknown interface name went through.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { startGateway } = require('../lib/gateway');
const { createMock } = require('../mocks/openai-mock');

let gw, mock;

before(async () => {
  mock = await createMock({ name: 'rules' });
  gw = await startGateway({
    config: {
      providers: {
        a: { api_base: mock.url, interfaces: ['openai'], api_key: 'sk-a',
             models: { m1: {} } },
        b: { api_base: mock.url, interfaces: ['openai'], api_key: 'sk-b',
             models: { m2: {} } },
      },
    },
  });
});

after(async () => {
  if (!gw) return;
  const problems = gw.problems();
  await gw.stop();
  await mock.close();
  assert.deepStrictEqual(problems, [], 'error.log alerts/crashes');
});

async function admin(method, body) {
  const res = await fetch(gw.url + '/llmproxy/admin/config', {
    method,
    headers: { authorization: 'Bearer ' + gw.masterKey,
               'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, text: await res.text() };
}

test('the admin API refuses what llmproxyctl would not compile',
     async () => {
  const got = await admin('GET');
  assert.strictEqual(got.status, 200, got.text);
  const cfg = JSON.parse(got.text);
  const base = () => {
    const doc = JSON.parse(JSON.stringify(cfg));
    delete doc.generation;
    return doc;
  };

  // the document as read back goes in again: the rules do not refuse it
  let r = await admin('POST', base());
  assert.strictEqual(r.status, 200, r.text);

  const cases = [
    ['an unknown deployment field',
     (d) => { d.deployments[0].colour = 'red'; }, /colour/],
    ['an unknown top-level field',
     (d) => { d.extra = {}; }, /extra/],
    ['providers out of order',
     (d) => { d.providers.reverse(); }, /not sorted by name or not unique/],
    ['a fractional num_retries',
     (d) => { d.settings.num_retries = 1.5; },
     /settings\.num_retries: expected non-negative integer/],
    ['a deployment id that is not provider/model',
     (d) => { d.deployments[0].id = 'a/other'; },
     /id must be \\?"provider\/model\\?"/],
    ['an unknown interface beside a known one',
     (d) => { d.providers[0].interfaces.push('cohere'); },
     /unknown interface/],
    ['a missing upstream_model',
     (d) => { delete d.deployments[0].upstream_model; }, /upstream_model/],
    // their members have no names: the reference check once followed
    // them to a NULL name and the worker crashed
    ['aliases as an array',
     (d) => { d.aliases = ['m1']; }, /aliases: expected object/],
    ['fallbacks as an array',
     (d) => { d.fallbacks = [['m2']]; }, /fallbacks: expected object/],
  ];

  for (const [what, edit, message] of cases) {
    const doc = base();
    edit(doc);
    r = await admin('POST', doc);
    assert.strictEqual(r.status, 400, `${what}: ${r.status} ${r.text}`);
    assert.match(r.text, message, what);
  }

  // a member given twice: the validator checked the first, the runtime
  // walked "settings" whole and took the last, a num_retries of -1 cast
  // to an unsigned count (fuzz_config_validate found the repeat)
  const twice = JSON.stringify(base()).replace('"settings":{',
                                               '"settings":{"num_retries":1,')
    .replace(/("settings":\{"num_retries":1,.*?"num_retries":)\d+/, '$1-1');
  assert.match(twice, /"num_retries":1,.*"num_retries":-1/);
  const res = await fetch(gw.url + '/llmproxy/admin/config', {
    method: 'POST', body: twice,
    headers: { authorization: 'Bearer ' + gw.masterKey,
               'content-type': 'application/json' } });
  const text = await res.text();
  assert.strictEqual(res.status, 400, text);
  assert.match(text, /settings\.num_retries: duplicate name/);

  // nothing refused replaced the config
  const after = await admin('GET');
  const now = JSON.parse(after.text);
  assert.deepStrictEqual(now.providers.map((p) => p.name), ['a', 'b']);
});

// Found by replaying fuzz_config_validate's corpus through the admin API:
// an alias whose name a pattern also matches ("claude-1" beside
// "claude-*"), with fallbacks of its own.  llmproxyctl compiled it, and
// the gateway refused it ("aliases.claude-1: the name of a model"): the
// fallbacks' pattern groups were built before the aliases and took the
// alias's name.
test('an alias a pattern also matches can have fallbacks', async () => {
  const r = gw.sync({
    providers: {
      a: { api_base: mock.url, interfaces: ['openai'], api_key: 'sk-a',
           models: { 'claude-*': {}, m1: {} } },
      b: { api_base: mock.url, interfaces: ['openai'], api_key: 'sk-b',
           models: { m2: {} } },
    },
    aliases: { 'claude-1': 'm1' },
    fallbacks: { 'claude-1': ['m2'] },
  });
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);

  mock.reset();
  const res = await fetch(gw.baseURL + '/chat/completions', {
    method: 'POST',
    headers: { authorization: 'Bearer ' + gw.masterKey,
               'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-1',
                           messages: [{ role: 'user', content: 'hi' }] }) });
  const text = await res.text();
  assert.strictEqual(res.status, 200, text);
  // the alias's target, not the name passed through by the pattern
  assert.deepStrictEqual(mock.requests.map((q) => q.body.model), ['m1']);
});
