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
  const cases = [
    ['llmproxy_usage_flush 0;', /"llmproxy_usage_flush" directive must be at least 10ms/],
    ['llmproxy_usage_flush 1ms;', /"llmproxy_usage_flush" directive must be at least 10ms/],
    ['llmproxy_database_poll 0;', /"llmproxy_database_poll" directive must be at least 100ms/],
    ['llmproxy_database_poll 10ms;', /"llmproxy_database_poll" directive must be at least 100ms/],
    ['llmproxy_buffer_size 1;', /"llmproxy_buffer_size" directive must be at least 4k/],
    ['llmproxy_connect_timeout 0;', /"llmproxy_connect_timeout" directive must be at least 1ms/],
    ['llmproxy_max_body_size 0;', /"llmproxy_max_body_size" directive must be at least 1k/],
    ['llmproxy_upstream_keepalive_timeout 0;', /"llmproxy_upstream_keepalive_timeout" directive must be at least 1ms/],
    ['llmproxy_upstream_keepalive 1000000;', /must be between 0 and 65535/],
    ['llmproxy_resolve_interval 1ms;', /"llmproxy_resolve_interval" directive must be 0 .* or at least 100ms/],
    ['llmproxy_usage_buffer 64k;', /"llmproxy_usage_buffer" directive must be at least 1m/],
    ['server { llmproxy_buffer_size 100; }', /"llmproxy_buffer_size" directive must be at least 4k/],
    ['server { location / { llmproxy_max_body_size 0; } }', /"llmproxy_max_body_size" directive must be at least 1k/],
  ];
  for (const [line, re] of cases) {
    const r = nginxT(`${zone}\n    ${line}`);
    assert.notStrictEqual(r.status, 0, `${line} was accepted`);
    assert.match(r.stderr, re, line);
    assert.match(r.stderr, /t\.conf:6\b/, `${line}: file and line`);
  }

  // a zone too small to hold its own tables: refused with the minimum
  for (const z of ['x:1m', 'x:2m', 'x:3m']) {
    const r = nginxT(`    llmproxy_zone ${z};`);
    assert.notStrictEqual(r.status, 0, z);
    assert.match(r.stderr,
                 new RegExp(`llmproxy_zone "${z}" is too small: at least 4m `
                            + 'in .*t\\.conf:5'), z);
  }

  // the values that work, at their limits, pass
  const good = nginxT(`    llmproxy_zone llmproxy:4m;
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
    llmproxy_upstream_keepalive 65535;`);
  assert.strictEqual(good2.status, 0, good2.stderr);
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
