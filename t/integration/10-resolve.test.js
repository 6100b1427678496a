'use strict';
// A provider whose host does not resolve when the config is pushed (a
// container not started yet) is resolved again later: the gateway starts
// sending it requests without a new sync.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const { startGateway, sleep } = require('../lib/gateway');
const { createMock } = require('../mocks/openai-mock');

const HOSTS = '/etc/hosts';
const NAME = 'llmproxy-late-provider.test';
let gw, mock, saved;

let writable = true;
try { fs.accessSync(HOSTS, fs.constants.W_OK); } catch (e) { writable = false; }

before(async () => {
  if (!writable) return;
  saved = fs.readFileSync(HOSTS, 'utf8');
  mock = await createMock({ name: 'late' });
  gw = await startGateway({
    httpExtra: 'llmproxy_resolve_interval 500ms;',
    config: {
      providers: {
        late: { api_base: `http://${NAME}:${mock.port}`,
                interfaces: ['openai'], models: { 'late-model': {} } },
      },
      settings: { num_retries: 0 },
    },
  });
});

after(async () => {
  if (!writable) return;
  fs.writeFileSync(HOSTS, saved);
  const problems = gw.problems();
  await gw.stop();
  await mock.close();
  assert.deepStrictEqual(problems, []);
});

const call = () => fetch(gw.baseURL + '/chat/completions', {
  method: 'POST', headers: { authorization: 'Bearer ' + gw.masterKey },
  body: JSON.stringify({ model: 'late-model', messages: [] }) });

test('a host that resolves later is picked up without a sync',
  { skip: !writable && '/etc/hosts is not writable here' }, async () => {
    assert.strictEqual((await call()).status, 502, 'not resolvable yet');
    assert.match(gw.errorLog(), /has no address/);

    fs.writeFileSync(HOSTS, saved + `\n127.0.0.1 ${NAME}\n`);
    let status;
    for (let i = 0; i < 50 && status !== 200; i++) {
      await sleep(200);
      status = (await call()).status;
    }
    assert.strictEqual(status, 200);
    assert.match(gw.errorLog(), /provider addresses changed/);
  });

test('a host with an address that refuses is served by its other one',
  { skip: !writable && '/etc/hosts is not writable here' }, async () => {
    // as "localhost" often is ::1 and 127.0.0.1: a name with two
    // addresses, the mock listening on one only.  No request may fail,
    // no deployment may cool down.
    const two = 'llmproxy-two-addresses.test';
    fs.writeFileSync(HOSTS, saved + `\n127.0.0.3 ${two}\n127.0.0.1 ${two}\n`);
    const m = await createMock({ name: 'v4only' });
    const g = await startGateway({
      config: {
        providers: {
          local: { api_base: `http://${two}:${m.port}`,
                   interfaces: ['openai'], models: { local: {} } },
        },
        settings: { num_retries: 0, allowed_fails: 1 },
      },
    });
    try {
      for (let i = 0; i < 10; i++) {
        const r = await fetch(g.baseURL + '/chat/completions', {
          method: 'POST', headers: { authorization: 'Bearer ' + g.masterKey },
          body: JSON.stringify({ model: 'local', messages: [] }) });
        assert.strictEqual(r.status, 200);
        assert.strictEqual(r.headers.get('x-llmproxy-attempted-retries'), '0');
      }
      assert.match(g.errorLog(), /trying its next address/);
      assert.doesNotMatch(g.errorLog(), /cools down/);
      assert.deepStrictEqual(g.problems(), []);
    } finally {
      fs.writeFileSync(HOSTS, saved);
      await g.stop();
      await m.close();
    }
  });
