'use strict';
// The edges (issue 11): nginx -t refuses directive values that cannot work,
// the shipped configs fence /metrics, every error nginx itself produces is
// JSON in the client's shape, and a ?key= key never reaches a log.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const http = require('node:http');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { startGateway, sleep, ROOT, NGINX, MODULE } = require('../lib/gateway');
const { createMock, freePort } = require('../mocks/openai-mock');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmproxy-edges-'));
fs.chmodSync(tmp, 0o755);

after(() => {
  if (!process.env.TEST_LLMPROXY_LEAVE) {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

function nginxT(httpBody, extra = '') {
  const conf = path.join(tmp, 't.conf');
  fs.writeFileSync(conf, `load_module ${MODULE};
events {}
${extra}
http {
${httpBody}
}
`);
  return spawnSync(NGINX, ['-t', '-p', tmp, '-c', conf, '-e', '/dev/null'],
                   { encoding: 'utf8' });
}

test('nginx -t refuses values that cannot work, with file, line, reason',
     () => {
  const zone = '    llmproxy_zone llmproxy:16m;';
  // [the line, what nginx -t says after "<directive>" directive]
  const cases = [
    ['llmproxy_usage_flush 0;', 'must be at least 10ms'],
    ['llmproxy_usage_flush 1ms;', 'must be at least 10ms'],
    ['llmproxy_database_poll 0;', 'must be at least 100ms'],
    ['llmproxy_database_poll 10ms;', 'must be at least 100ms'],
    ['llmproxy_buffer_size 1;', 'must be at least 4k'],
    ['llmproxy_connect_timeout 0;', 'must be at least 1ms'],
    ['llmproxy_max_body_size 0;', 'must be at least 1k'],
    ['llmproxy_upstream_keepalive_timeout 0;', 'must be at least 1ms'],
    ['llmproxy_resolve_interval 1ms;', 'must be 0 .* or at least 100ms'],
    ['llmproxy_usage_buffer 64k;', 'must be at least 1m'],
    ['server { llmproxy_buffer_size 100; }', 'must be at least 4k'],
    ['server { location / { llmproxy_max_body_size 0; } }',
     'must be at least 1k'],
    ['llmproxy_database "";', 'must not be empty'],
    ['llmproxy_database postgresql://u:pw-secret@h/db?bogus=1;',
     'is not a valid PostgreSQL URI'],
    ['llmproxy_database "host=h dbname";', 'is not a valid PostgreSQL URI'],
    ['llmproxy_thread_pool "";', 'must not be empty'],
    ['llmproxy_state_path "";', 'must not be empty'],
    ['llmproxy_master_key_file "";', 'must not be empty'],
    // nginx's own bounds check names no directive
    ['llmproxy_upstream_keepalive 1000000;', null],
  ];
  for (const [line, reason] of cases) {
    const name = /(llmproxy_\w+) /.exec(line)[1];
    const re = reason ? new RegExp(`"${name}" directive ${reason}`)
                      : /value must be between 0 and 65535/;
    const r = nginxT(`${zone}\n    ${line}`);
    assert.notStrictEqual(r.status, 0, `${line} was accepted`);
    assert.match(r.stderr, re, line);
    assert.match(r.stderr, /t\.conf:6\b/, `${line}: file and line`);
    assert.ok(!r.stderr.includes('pw-secret'), 'the password is not shown');
  }

  // a zone too small to hold its own tables: refused with the minimum
  for (const z of ['x:64k', 'x:128k', 'x:255k']) {
    const r = nginxT(`    llmproxy_zone ${z};`);
    assert.notStrictEqual(r.status, 0, z);
    assert.match(r.stderr,
                 /llmproxy_zone "x" is too small: at least 256k in .*t\.conf:5/,
                 z);
  }

  // the values that work, at their limits, pass
  const good = nginxT(`    llmproxy_zone llmproxy:256k;
    llmproxy_usage_flush 10ms;
    llmproxy_database_poll 100ms;
    llmproxy_usage_buffer 1m;
    llmproxy_upstream_keepalive 0;
    llmproxy_upstream_keepalive_timeout 1ms;
    llmproxy_resolve_interval 0;
    server {
        llmproxy_buffer_size 4k;
        llmproxy_connect_timeout 1ms;
        llmproxy_max_body_size 1k;
        location / { llmproxy; }
    }`);
  assert.strictEqual(good.status, 0, good.stderr);
  const good2 = nginxT(`    llmproxy_zone llmproxy:64m;
    llmproxy_resolve_interval 100ms;
    llmproxy_upstream_keepalive 65535;
    llmproxy_database postgresql://u@127.0.0.1:5432/db?sslmode=disable;`);
  assert.strictEqual(good2.status, 0, good2.stderr);
  const good3 = nginxT(`    llmproxy_zone llmproxy:64m;
    llmproxy_database "host=127.0.0.1 dbname=llmproxy";`);
  assert.strictEqual(good3.status, 0, good3.stderr);
  const good4 = nginxT(`    llmproxy_zone llmproxy:64m;
    llmproxy_database llmproxy;`);
  assert.strictEqual(good4.status, 0, good4.stderr);
});

// GET from a given local address (127.0.0.2 is not 127.0.0.1 to allow/deny)
function getFrom(url, localAddress, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { localAddress, agent: false, headers },
      (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          let body = null;
          try { body = JSON.parse(text); } catch (e) { /* not JSON */ }
          resolve({ status: res.statusCode, headers: res.headers, text,
                    body });
        });
      });
    req.on('error', reject);
    req.end();
  });
}

async function runNginx(dir, conf, g = `daemon off; pid ${dir}/nginx.pid;`) {
  const child = spawn(NGINX, ['-p', dir, '-c', conf, '-e',
                              path.join(dir, 'error.log'),
                              ...(g ? ['-g', g] : [])],
                      { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((r) => child.on('exit', r));
  return { child, exited, err: () => err };
}

async function waitUp(url, n) {
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(url + '/health/liveliness');
      await r.arrayBuffer();
      if (r.status === 200) return;
    } catch (e) { /* not yet */ }
    await sleep(50);
  }
  throw new Error(n.err());
}

async function assertFenced(url, what) {
  const here = await getFrom(url + '/metrics', '127.0.0.1');
  assert.strictEqual(here.status, 200, `${what}: /metrics from 127.0.0.1`);
  assert.match(here.text, /# TYPE llmproxy_/);

  const there = await getFrom(url + '/metrics', '127.0.0.2');
  assert.strictEqual(there.status, 403, `${what}: /metrics from 127.0.0.2 `
                     + `is fenced: ${there.text.slice(0, 200)}`);
  assert.ok(there.body && there.body.error, `${what}: 403 in JSON`);
  assert.doesNotMatch(there.text, /llmproxy_requests_total/);

  const admin = await getFrom(url + '/llmproxy/admin/status', '127.0.0.2');
  assert.strictEqual(admin.status, 403, `${what}: admin from 127.0.0.2`);

  // LiteLLM's key API at its own paths: served, and fenced the same way
  const keys = await getFrom(url + '/key/list', '127.0.0.2');
  assert.strictEqual(keys.status, 403, `${what}: /key/ from 127.0.0.2`);
  const keysHere = await getFrom(url + '/key/list', '127.0.0.1');
  assert.strictEqual(keysHere.status, 401,
                     `${what}: /key/ from 127.0.0.1 wants the master key: `
                     + keysHere.text.slice(0, 200));

  // the API itself stays open
  const live = await getFrom(url + '/health/liveliness', '127.0.0.2');
  assert.strictEqual(live.status, 200, `${what}: health from 127.0.0.2`);
}

test('the config make run writes fences /metrics and the admin API',
     async () => {
  const dir = path.join(tmp, 'run');
  const port = await freePort();
  const env = { ...process.env, LLMPROXY_LISTEN: `127.0.0.1:${port}`,
                LLMPROXY_VAR: dir,
                LLMPROXY_DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/x' };
  delete env.LLMPROXY_MASTER_KEY;
  const w = spawnSync('bash', [path.join(ROOT, 'scripts', 'run.sh'),
                               '--config-only'],
                      { cwd: ROOT, env, encoding: 'utf8', timeout: 30000 });
  assert.strictEqual(w.status, 0, w.stdout + w.stderr);
  const conf = path.join(dir, 'nginx.conf');
  assert.match(fs.readFileSync(conf, 'utf8'),
               /location = \/metrics \{[^}]*allow 127\.0\.0\.1;[^}]*deny all;/);

  const n = await runNginx(dir, conf, '');
  try {
    await waitUp(`http://127.0.0.1:${port}`, n);
    await assertFenced(`http://127.0.0.1:${port}`, 'make run');
  } finally {
    n.child.kill('SIGQUIT');
    await n.exited;
  }
});

test('configs/nginx.conf fences /metrics and the admin API', async () => {
  const dir = path.join(tmp, 'shipped');
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'state'));
  fs.writeFileSync(path.join(dir, 'master_key'), 'sk-edges-master-0123456\n');
  fs.writeFileSync(path.join(dir, 'salt_key'), 'a'.repeat(64) + '\n');
  const port = await freePort();
  const shipped = fs.readFileSync(path.join(ROOT, 'configs', 'nginx.conf'),
                                  'utf8');
  assert.match(shipped,
               /location = \/metrics \{[^}]*allow 127\.0\.0\.1;[^}]*deny all;/);
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(conf, shipped
    .replace(/^load_module .*$/m, `load_module ${MODULE};`)
    .replace(/worker_connections \d+/, 'worker_connections 256')
    .replace(/\/etc\/llmproxy\//g, dir + '/')
    .replace(/\/var\/lib\/llmproxy/g, dir + '/state')
    .replace(/postgresql:\/\/\S+;/, 'postgresql://nobody@127.0.0.1:1/x;')
    .replace(/listen 127\.0\.0\.1:4000;/, `listen 127.0.0.1:${port};`));

  const n = await runNginx(dir, conf);
  try {
    await waitUp(`http://127.0.0.1:${port}`, n);
    await assertFenced(`http://127.0.0.1:${port}`, 'configs/nginx.conf');
  } finally {
    n.child.kill('SIGQUIT');
    await n.exited;
  }
});

// ---------------------------------------------------------------------------
// nginx's own errors and keys in logs, against one gateway: its server
// (location / { llmproxy; }), and a second server with a gateway location,
// a location of something else, and paths no location matches

let gw, mock, port2;
const secrets = [];

// a key that must never be logged; each request gets its own
function secret(tag) {
  const s = `sk-edges-${tag}-${require('node:crypto').randomBytes(8)
    .toString('hex')}`;
  secrets.push(s);
  return s;
}

before(async () => {
  mock = await createMock({ name: 'm' });
  port2 = await freePort();
  gw = await startGateway({
    httpExtra: `client_header_timeout 1s;
    log_format edges_keys '$request|$request_uri|$args|$status';
    access_log __DIR__/keys.log edges_keys;
    server {
        listen 127.0.0.1:${port2};
        location /v1/ { llmproxy; }
        location /v1/own/ { llmproxy; error_log __DIR__/own.log info; }
        location /other/ { return 204; }
    }`,
    config: {
      providers: { m: { api_base: mock.url, interfaces: ['openai'],
                        models: { 'gpt-t': {} } } },
    },
  });
});

after(async () => {
  if (gw) {
    const problems = gw.problems();
    await gw.stop();
    assert.deepStrictEqual(problems, []);
  }
  if (mock) await mock.close();
});

// raw bytes on a fresh connection; the answer parsed: {status, headers,
// text, body}
function rawHTTP(bytes, port = gw.port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const parts = [];
    sock.on('data', (d) => parts.push(d));
    sock.on('error', reject);
    sock.on('close', () => {
      const all = Buffer.concat(parts).toString('latin1');
      const i = all.indexOf('\r\n\r\n');
      const head = i < 0 ? all : all.slice(0, i);
      const lines = head.split('\r\n');
      const m = /^HTTP\/1\.[01] (\d+)/.exec(lines[0] || '');
      const headers = {};
      for (const l of lines.slice(1)) {
        const c = l.indexOf(':');
        if (c > 0) headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
      }
      let text = i < 0 ? '' : all.slice(i + 4);
      if (/chunked/i.test(headers['transfer-encoding'] || '')) {
        let out = '';
        let rest = text;
        for (;;) {
          const e = rest.indexOf('\r\n');
          const n = parseInt(rest.slice(0, e), 16);
          if (!n) break;
          out += rest.slice(e + 2, e + 2 + n);
          rest = rest.slice(e + 2 + n + 2);
        }
        text = out;
      }
      let body = null;
      try { body = JSON.parse(text); } catch (e) { /* not JSON */ }
      resolve({ status: m ? Number(m[1]) : 0, headers, text, body, raw: all });
    });
    sock.setTimeout(10000, () => sock.destroy(new Error('no answer')));
    sock.end(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1'));
  });
}

function req(method, target, headers = [], body = '') {
  return `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n`
    + headers.map((h) => h + '\r\n').join('')
    + 'Connection: close\r\n\r\n' + body;
}

function assertShape(res, iface, status, what) {
  assert.strictEqual(res.status, status, `${what}: status, got ${res.raw
    .slice(0, 300)}`);
  assert.match(res.headers['content-type'] || '', /application\/json/,
               `${what}: content-type`);
  assert.ok(res.body, `${what}: not JSON: ${res.text.slice(0, 200)}`);
  assert.doesNotMatch(res.text, /<html|nginx/i, what);
  if (iface === 'openai') {
    const e = res.body.error;
    assert.ok(e && typeof e.message === 'string' && e.message.length
              && typeof e.type === 'string' && 'param' in e && 'code' in e,
              `${what}: OpenAI shape: ${res.text}`);
  } else if (iface === 'anthropic') {
    assert.strictEqual(res.body.type, 'error', `${what}: ${res.text}`);
    assert.ok(typeof res.body.error.type === 'string'
              && typeof res.body.error.message === 'string',
              `${what}: Anthropic shape: ${res.text}`);
  } else {
    const e = res.body.error;
    assert.ok(e && e.code === status && typeof e.message === 'string'
              && typeof e.status === 'string',
              `${what}: Gemini shape: ${res.text}`);
  }
  assert.ok(res.headers['x-llmproxy-request-id'], `${what}: request id`);
}

const PATHS = {
  openai: '/v1/chat/completions',
  anthropic: '/v1/messages',
  gemini: '/v1beta/models/gpt-t:generateContent',
};

test('nginx\'s own errors are JSON in the client\'s shape', async () => {
  for (const [iface, p] of Object.entries(PATHS)) {
    const k = secret('dup');
    const dup = await rawHTTP(req('POST', `${p}?key=${secret('dupq')}`,
      [`Authorization: Bearer ${k}`, `Authorization: Bearer ${k}x`,
       'Content-Type: application/json', 'Content-Length: 2'], '{}'));
    assertShape(dup, iface, 400, `${iface}: duplicate Authorization`);

    const big = await rawHTTP(req('GET', `${p}?key=${secret('big')}`,
      ['X-Big: ' + 'a'.repeat(20000)]));
    assertShape(big, iface, 400, `${iface}: too large header`);

    const clte = await rawHTTP(req('POST', `${p}?key=${secret('clte')}`,
      ['Content-Length: 2', 'Transfer-Encoding: chunked',
       'Content-Type: application/json'], '2\r\n{}\r\n0\r\n\r\n'));
    assertShape(clte, iface, 400, `${iface}: Content-Length and `
                + 'Transfer-Encoding');

    const nul = await rawHTTP(Buffer.concat([
      Buffer.from(`GET ${p}?key=${secret('nul')}`), Buffer.from([0]),
      Buffer.from('x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')]));
    assertShape(nul, iface, 400, `${iface}: NUL in the URI`);
  }

  // the request line is too long to be parsed: the shape is OpenAI's
  const long = await rawHTTP(req('GET', `/v1/models?key=${secret('414')}&x=`
                                 + 'a'.repeat(10000)));
  assertShape(long, 'openai', 414, '414');

  const bad = await rawHTTP(`GET /v1/models?key=${secret('bad')} HTTP/1.1\r\n`
                            + 'Host: a\r\nBad Header\r\n\r\n');
  assertShape(bad, 'openai', 400, 'invalid header line');

  const noHost = await rawHTTP('GET /v1/messages HTTP/1.1\r\n'
                               + 'Connection: close\r\n\r\n');
  assertShape(noHost, 'anthropic', 400, 'HTTP/1.1 without Host');

  const v3 = await rawHTTP('GET /v1beta/models HTTP/3.0\r\nHost: a\r\n\r\n');
  assertShape(v3, 'gemini', 505, 'HTTP/3.0');
  assert.match(v3.body.error.message, /version/);

  // a path no location matches in a server with a gateway location
  const none = await rawHTTP(req('GET', `/nowhere?key=${secret('none')}`),
                             port2);
  assertShape(none, 'openai', 404, 'no location');

  // a location of something else is left alone
  const other = await rawHTTP(req('GET', `/other/x?key=${secret('other')}`),
                              port2);
  assert.strictEqual(other.status, 204);
  assert.strictEqual(other.headers['x-llmproxy-request-id'], undefined);

  // errors of the gateway itself are unchanged
  const r = await rawHTTP(req('GET', '/v1/chat/completions'), port2);
  assertShape(r, 'openai', 401, 'no key');
});

test('a query key reaches no log, whatever the request', async () => {
  const url = gw.url;
  const get = async (target, init = {}, base = url) => {
    const r = await fetch(base + target, init);
    await r.arrayBuffer();
    return r.status;
  };
  const json = { 'content-type': 'application/json' };
  const body = (model) => JSON.stringify({ model, messages: [
    { role: 'user', content: 'hi' }] });

  // unknown path, wrong method, HEAD, OPTIONS
  await get(`/nope?key=${secret('nope')}&alt=sse`);
  await get(`/v1/chat/completions?key=${secret('method')}`);
  await get(`/v1/models?key=${secret('head')}`, { method: 'HEAD' });
  await get(`/v1/models?key=${secret('options')}`, { method: 'OPTIONS' });
  // a model that does not exist, with a valid and an invalid key
  await get(`/v1/chat/completions?key=${gw.masterKey}`,
            { method: 'POST', headers: json, body: body('nope-404') });
  await get(`/v1/chat/completions?key=${secret('404')}`,
            { method: 'POST', headers: json, body: body('nope-404') });
  // a header key as well: the query key is not the one taken
  assert.strictEqual(await get(`/v1/chat/completions?key=${secret('both')}`,
    { method: 'POST', body: body('gpt-t'),
      headers: { ...json, authorization: 'Bearer ' + gw.masterKey } }), 200);
  // twice, and the spellings a provider could decode to a key
  await get(`/v1/models?key=${secret('twice1')}&key=${secret('twice2')}`);
  await get(`/v1/models?%6Bey=${secret('pct')}&alt=sse`);
  await get(`/v1/models?%6b%65%79=${secret('pct2')}`);
  await get(`/v1/models?key%3D${secret('pcteq')}`);
  await get(`/v1/models?KEY=${secret('upper')}`);
  await get(`/v1/models?Key=${secret('mixed')}`);
  await get(`/v1/models?api_key=${secret('api_key')}`);
  await get(`/v1/models?x-goog-api-key=${secret('goog')}`);
  // the query key works, and is stripped from the logs all the same
  assert.strictEqual(await get(`/v1/models?alt=json&key=${gw.masterKey}`),
                     200);
  // the second server: a gateway location, another location, no location
  const base2 = `http://127.0.0.1:${port2}`;
  await get(`/v1/nope?key=${secret('s2')}`, {}, base2);
  await get(`/other/x?key=${secret('s2other')}`, {}, base2);
  await get(`/elsewhere?key=${secret('s2none')}`, {}, base2);
  // a location with an error log of its own; a key in the referrer nginx
  // quotes in error log lines
  const referer = `http://client.example/page?key=${secret('ref')}&x=1`;
  await get(`/v1/own/x?key=${secret('own')}`, { headers: { referer } },
            base2);
  await get(`/v1/models?key=${secret('ref2')}`, { headers: { referer } });
  // refused by nginx itself, before any location
  await rawHTTP(req('GET', `/v1/models?key=${secret('414b')}&x=`
                    + 'a'.repeat(10000)));
  await rawHTTP(req('GET', `/v1/models?key=${secret('dupb')}`,
    [`Authorization: Bearer ${secret('dupauth1')}`,
     `Authorization: Bearer ${secret('dupauth2')}`]));
  await rawHTTP(`GET /v1/models?key=${secret('09')}\r\n\r\n`);
  // a client that stops in its headers (408 after client_header_timeout),
  // and one that closes there
  await new Promise((resolve) => {
    const s = net.connect(gw.port, '127.0.0.1', () => s.write(
      `GET /v1/models?key=${secret('408')} HTTP/1.1\r\nHost: a\r\n`));
    s.on('error', resolve);
    s.on('close', resolve);
    s.resume();
  });
  await new Promise((resolve) => {
    const s = net.connect(gw.port, '127.0.0.1', () => {
      s.write(`GET /v1/models?key=${secret('cut')} HTTP/1.1\r\nHost: a`);
      setTimeout(() => s.destroy(), 100);
    });
    s.on('close', resolve);
  });

  await sleep(300);
  const files = ['access.log', 'keys.log', 'error.log', 'own.log'];
  const logs = Object.fromEntries(files.map((f) =>
    [f, fs.readFileSync(path.join(gw.dir, f), 'latin1')]));
  const leaks = [];
  for (const f of files) {
    for (const l of logs[f].split('\n')) {
      for (const s of [...secrets, gw.masterKey]) {
        if (l.includes(s)) leaks.push(`${f}: ${l.slice(0, 300)}`);
      }
    }
  }
  assert.deepStrictEqual(leaks, [], 'keys were logged');

  // only the key parameters are gone: $request|$request_uri|$args|$status
  const has = (file, re) => assert.match(logs[file], re, file);
  has('keys.log', /^GET \/nope\?alt=sse HTTP\/1\.1\|\/nope\?alt=sse\|alt=sse\|404$/m);
  has('keys.log', /^GET \/v1\/models\?alt=json HTTP\/1\.1\|/m);
  has('keys.log', /^GET \/v1\/models HTTP\/1\.1\|\/v1\/models\|\|401$/m);
  has('keys.log', /^GET \/v1\/models HTTP\/1\.1\|\/v1\/models\|\|408$/m);
  // nginx's own lines are still there, without the key
  has('error.log',
      /client sent duplicate header line: "Authorization: \.\.\."/);
  has('error.log', /client sent too long URI/);
  has('error.log',
      /client timed out .*request: "GET \/v1\/models HTTP\/1\.1"/);
  has('own.log', new RegExp('request: "GET /v1/own/x HTTP/1\\.1".*'
                            + 'referrer: "http://client\\.example/page\\?x=1"'));
});
