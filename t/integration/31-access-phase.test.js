'use strict';
// The key is checked at nginx's access phase (README "Access control"), so
// nginx's own access modules compose with it: with "satisfy all" a denied
// address gets 403 before its key is looked at, an allowed one still needs
// its key; with "satisfy any" the key is no alternative to the others: it
// is needed in any case (its records, budget and limits are a key's) and
// opens no fence; auth_basic and auth_request sit in front of the key
// (an Authorization: Basic header is no key); auth_delay slows a wrong
// key's 401.  A URL that is no endpoint is a 404 before any 401, and a
// key's rpm counts model calls only, not GET /v1/models.

const fs = require('node:fs');
const path = require('node:path');
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { Gateway, raw, assertOpenAIError, sleep } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock, freePort } = require('../mocks/openai-mock');

let pg, mock, gw, key;
const port = {};

const config = () => ({
  providers: {
    p: { api_base: mock.url, interfaces: ['openai'],
         models: { m: {}, 'gemini-m': {} } },
  },
});

// one gateway, a server per way of composing; `location /` of each is a
// gateway location
function servers() {
  const srv = (name, inside, extra = '') => `
    server {
        listen 127.0.0.1:${port[name]};
        location / { llmproxy; ${inside} }
        ${extra}
    }`;
  return [
    srv('denied', 'deny 127.0.0.1; allow all;',
        'location /llmproxy/admin/ { llmproxy_admin; deny all; }'),
    srv('allowed', 'allow 127.0.0.1; deny all;'),
    srv('anyAllowed', 'satisfy any; allow 127.0.0.1; deny all;'),
    srv('anyDenied', 'satisfy any; deny all;'),
    srv('basic', 'auth_basic "gateway"; '
                 + 'auth_basic_user_file __DIR__/htpasswd;'),
    srv('anyBasic', 'satisfy any; deny all; auth_basic "gateway"; '
                    + 'auth_basic_user_file __DIR__/htpasswd;'),
    srv('authRequest', 'auth_request /_auth;',
        'location = /_auth { internal; '
        + 'if ($http_x_pass = "yes") { return 204; } return 403; }'),
    srv('delay', 'auth_delay 600ms;'),
    srv('mirror', 'mirror /_mirror; mirror_request_body off;',
        `location = /_mirror { internal; proxy_pass_request_body off; `
        + `proxy_set_header Content-Length ""; `
        + `proxy_pass ${mock.url}/mirrored; }`),
  ].join('\n');
}

const url = (name, p = '/v1/chat/completions') =>
  `http://127.0.0.1:${port[name]}${p}`;

const body = JSON.stringify({ model: 'm',
                              messages: [{ role: 'user', content: 'hi' }] });

function chat(name, headers = {}, p) {
  return raw(url(name, p), {
    method: 'POST', body,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

const bearer = (k) => ({ authorization: 'Bearer ' + k });
const basic = (user, pass) => ({
  authorization: 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64'),
});

function create(...args) {
  const r = gw.ctl(['key', 'create', ...args]);
  assert.strictEqual(r.status, 0, r.stderr);
  return r.stdout.trim();
}

// the gateway has loaded the key (its poller runs every 500 ms)
async function loaded(k) {
  const t0 = Date.now();
  for (;;) {
    const r = await raw(gw.baseURL + '/models', { headers: bearer(k) });
    if (r.status === 200) return;
    if (Date.now() - t0 > 5000) throw new Error('key not loaded: ' + r.status);
    await sleep(100);
  }
}

before(async () => {
  pg = await startPostgres();
  mock = await createMock({ name: 'access' });
  for (const name of ['denied', 'allowed', 'anyAllowed', 'anyDenied',
                      'basic', 'anyBasic', 'authRequest', 'delay',
                      'mirror']) {
    port[name] = await freePort();
  }
  gw = new Gateway({ database: pg.url, httpExtra: servers() });
  fs.writeFileSync(path.join(gw.dir, 'htpasswd'), 'user:{PLAIN}secret\n');
  await gw.start();
  await gw.configure(config());
  key = create('--alias', 'access');
  await loaded(key);
});

after(async () => {
  const problems = gw ? gw.problems() : [];
  if (gw) await gw.stop();
  if (mock) await mock.close();
  if (pg) pg.destroy();
  assert.deepStrictEqual(problems, []);
});

test('satisfy all: a denied address gets 403 before its key is looked at',
  async () => {
    mock.reset();
    const before = gw.errorLog().length;
    for (const h of [{}, bearer('sk-wrong-key-000'), bearer(key)]) {
      const r = await chat('denied', h);
      assertOpenAIError(r, 403, 'denied address');
    }
    const r = await raw(url('denied', '/llmproxy/admin/status'),
                        { headers: bearer(gw.masterKey) });
    assert.strictEqual(r.status, 403, 'admin: ' + r.text);
    // no key was checked: no "refused" or "invalid ... key" line
    const log = gw.errorLog().slice(before);
    assert.doesNotMatch(log, /refused|invalid (API|master) key/, log);
    assert.strictEqual(mock.requests.length, 0);
  });

test('satisfy all: an allowed address still needs its key', async () => {
  let r = await chat('allowed');
  assertOpenAIError(r, 401, 'no key');
  assert.strictEqual(r.body.error.code, 'missing_api_key');
  r = await chat('allowed', bearer('sk-wrong-key-000'));
  assertOpenAIError(r, 401, 'wrong key');
  assert.strictEqual(r.body.error.code, 'invalid_api_key');
  r = await chat('allowed', bearer(key));
  assert.strictEqual(r.status, 200, r.text);
});

test('satisfy any: an allowed address still needs its key', async () => {
  let r = await chat('anyAllowed');
  assertOpenAIError(r, 401, 'no key');
  r = await chat('anyAllowed', bearer('sk-wrong-key-000'));
  assertOpenAIError(r, 401, 'wrong key');
  r = await raw(url('anyAllowed', '/v1/models'));
  assertOpenAIError(r, 401, 'model list, no key');
  r = await chat('anyAllowed', bearer(key));
  assert.strictEqual(r.status, 200, r.text);
});

test('satisfy any: a valid key opens no fence', async () => {
  mock.reset();
  for (const p of ['/v1/chat/completions', '/v1/models']) {
    const r = await raw(url('anyDenied', p), {
      method: p === '/v1/models' ? 'GET' : 'POST', headers: bearer(key),
      body: p === '/v1/models' ? undefined : body,
    });
    assertOpenAIError(r, 403, p);
  }
  const r = await chat('anyDenied', bearer('sk-wrong-key-000'));
  assertOpenAIError(r, 403, 'wrong key');
  assert.strictEqual(mock.requests.length, 0);
});

test('auth_basic in front of the key: both are needed', async () => {
  let r = await chat('basic', { 'x-api-key': key });
  assert.strictEqual(r.status, 401, r.text);
  assert.match(r.headers.get('www-authenticate') || '', /^Basic/);
  r = await chat('basic', { ...basic('user', 'secret') });
  assertOpenAIError(r, 401, 'basic, no key');
  assert.strictEqual(r.body.error.code, 'missing_api_key');
  // the Basic credentials are no key: the key comes in x-api-key
  r = await chat('basic', { ...basic('user', 'secret'), 'x-api-key': key });
  assert.strictEqual(r.status, 200, r.text);
  r = await chat('basic', { ...basic('user', 'wrong'), 'x-api-key': key });
  assert.strictEqual(r.status, 401, r.text);
});

test('satisfy any with auth_basic: the password holds, the key is needed',
  async () => {
    let r = await chat('anyBasic', { ...basic('user', 'wrong'),
                                     'x-api-key': key });
    assert.strictEqual(r.status, 401, r.text);
    assert.match(r.headers.get('www-authenticate') || '', /^Basic/);
    r = await chat('anyBasic', { ...basic('user', 'secret') });
    assertOpenAIError(r, 401, 'password passed, no key');
    assert.strictEqual(r.body.error.code, 'missing_api_key');
    r = await chat('anyBasic', { ...basic('user', 'secret'),
                                 'x-api-key': 'sk-wrong-key-000' });
    assertOpenAIError(r, 401, 'password passed, wrong key');
    r = await chat('anyBasic', { ...basic('user', 'secret'),
                                 'x-api-key': key });
    assert.strictEqual(r.status, 200, r.text);
  });

test('auth_request in front of the key: both are needed', async () => {
  let r = await chat('authRequest', bearer(key));
  assertOpenAIError(r, 403, 'auth_request refused');
  r = await chat('authRequest', { 'x-pass': 'yes' });
  assertOpenAIError(r, 401, 'auth_request passed, no key');
  r = await chat('authRequest', { 'x-pass': 'yes', ...bearer(key) });
  assert.strictEqual(r.status, 200, r.text);
});

test('auth_delay slows a wrong key\'s 401, not a right key', async () => {
  let t0 = Date.now();
  let r = await chat('delay', bearer('sk-wrong-key-000'));
  const wrong = Date.now() - t0;
  assertOpenAIError(r, 401, 'wrong key');
  assert.ok(wrong >= 550, `a wrong key answered after ${wrong} ms`);
  // Anthropic's client gets its own shape after the delay too
  r = await raw(url('delay', '/v1/messages'), {
    method: 'POST', headers: { 'x-api-key': 'sk-wrong-key-000',
                               'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', max_tokens: 5,
                           messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.strictEqual(r.status, 401, r.text);
  assert.strictEqual(r.body.type, 'error', r.text);
  assert.strictEqual(r.body.error.type, 'authentication_error', r.text);
  r = await chat('delay', bearer(key));
  assert.strictEqual(r.status, 200, r.text);
});

test('a wrong key goes no further than the access phase (mirror)',
  async () => {
    mock.reset();
    let r = await chat('mirror', bearer('sk-wrong-key-000'));
    assertOpenAIError(r, 401, 'wrong key');
    r = await chat('mirror');
    assertOpenAIError(r, 401, 'no key');
    r = await chat('mirror', bearer(key));
    assert.strictEqual(r.status, 200, r.text);
    // the valid key's request is mirrored (after its own answer, maybe)
    const t0 = Date.now();
    const mirrored = () => mock.requests.filter((q) =>
      q.url.startsWith('/mirrored'));
    while (mirrored().length === 0 && Date.now() - t0 < 3000) {
      await sleep(50);
    }
    assert.strictEqual(mirrored().length, 1,
                       'mirrored: ' + mirrored().map((q) => q.url));
  });

test('a URL that is no endpoint is a 404 before a 401', async () => {
  for (const p of ['/v1/nothing', '/v1/messages/nothing',
                   '/v1beta/models/m:nothing', '/v1/models/']) {
    const r = await raw(gw.url + p, { method: 'POST', body: '{}' });
    assert.strictEqual(r.status, 404, `${p}: ${r.text}`);
  }
  const r = await raw(gw.baseURL + '/chat/completions',
                      { method: 'POST', body });
  assertOpenAIError(r, 401, 'an endpoint');
});

test('Gemini: the model and method in the URL, parsed once', async () => {
  let r = await raw(gw.url + '/v1beta/models/gemini-m:generateContent', {
    method: 'POST', headers: { 'x-goog-api-key': 'sk-wrong-key-000',
                               'content-type': 'application/json' },
    body: JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }] }),
  });
  assert.strictEqual(r.status, 401, r.text);
  assert.strictEqual(r.body.error.status, 'UNAUTHENTICATED', r.text);
  r = await raw(gw.url + '/v1beta/models/gemini-m:generateContent', {
    method: 'POST', headers: { 'x-goog-api-key': key,
                               'content-type': 'application/json' },
    body: JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }] }),
  });
  assert.strictEqual(r.status, 200, r.text);
  r = await raw(gw.url + '/v1beta/models', { headers: { 'x-goog-api-key': key } });
  assert.strictEqual(r.status, 200, r.text);
  assert.ok(Array.isArray(r.body.models), r.text);
});

test('a key\'s rpm counts model calls, not GET /v1/models', async () => {
  // one minute window: start early enough in it
  const s = new Date().getSeconds();
  if (s > 45) await sleep((61 - s) * 1000);
  const k = create('--alias', 'rpm2', '--rpm', '2');
  await loaded(k);
  for (let i = 0; i < 4; i++) {
    const r = await raw(gw.baseURL + '/models', { headers: bearer(k) });
    assert.strictEqual(r.status, 200, r.text);
  }
  let r = await raw(gw.baseURL + '/nothing', { headers: bearer(k) });
  assert.strictEqual(r.status, 404, r.text);
  for (let i = 0; i < 2; i++) {
    r = await chat('allowed', bearer(k));
    assert.strictEqual(r.status, 200, `call ${i + 1}: ${r.text}`);
  }
  r = await chat('allowed', bearer(k));
  assertOpenAIError(r, 429, 'third call');
  assert.strictEqual(r.body.error.code, 'rate_limit_exceeded');
});
