'use strict';
// Starts a real nginx with the module in a temp prefix, pushes a config
// with the real llmproxyctl, and stops it.
//
//   const gw = await startGateway({ config, settings, workers, zone,
//                                    database, nginxEnv });
//   gw.url, gw.baseURL, gw.masterKey, gw.dir
//   gw.sync(config, args, env)  -> spawnSync result of `llmproxyctl sync`
//   gw.ctl(args, env)           -> spawnSync result of `llmproxyctl ...`
//   gw.nginx(args)              -> spawnSync result of nginx -p dir -c conf
//   await gw.reload(), await gw.stop({keep, how}), await gw.start()
//   gw.workerPids(), gw.errorLog(), gw.problems(), gw.accessLog()
//
// TEST_LLMPROXY_LEAVE=1 keeps the temp dirs (their paths are printed).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const assert = require('node:assert');
const { spawnSync, execFile } = require('node:child_process');
const { freePort } = require('../mocks/openai-mock');

const ROOT = path.resolve(__dirname, '..', '..');
const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';
// LLMPROXY_MODULE: another build of the module (make test's ASan run)
const MODULE = process.env.LLMPROXY_MODULE
  || path.join(ROOT, 'build', 'ngx_http_llmproxy_module.so');
const CTL = path.join(ROOT, 'build', 'llmproxyctl');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// fn() until it returns something true (which is returned), every 100 ms;
// throws the last value or error after ms
async function until(fn, ms = 20000) {
  const t0 = Date.now();
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) { last = e; }
    if (Date.now() - t0 > ms) {
      throw new Error('not within ' + ms + ' ms: ' + (last && last.stack
                                                        ? last.stack : last));
    }
    await sleep(100);
  }
}

// The one place the nginx.conf of the tests is written.  The access log
// carries the worker's pid so tests can tell which worker served what.
function nginxConf(g) {
  return `load_module ${MODULE};
worker_processes ${g.workers};
pid ${g.dir}/nginx.pid;
error_log ${g.dir}/error.log info;
events { worker_connections 1024; }
thread_pool llmproxy threads=2;
http {
    log_format llmproxy_t '$pid $status $request_method $uri "$request"';
    access_log ${g.dir}/access.log llmproxy_t;
    client_body_temp_path ${g.dir}/body;
    llmproxy_zone llmproxy:${g.zone};
    llmproxy_master_key_file ${g.dir}/master_key;
    llmproxy_state_path ${g.dir}/state;
    ${(g.httpExtra || '').replace(/__DIR__/g, g.dir)}
    llmproxy_thread_pool llmproxy;
    ${g.database ? `llmproxy_database ${g.database};
    llmproxy_database_poll 500ms;` : ''}
    server {
        listen 127.0.0.1:${g.port}${g.reuseport ? ' reuseport' : ''};
        llmproxy_max_body_size 1m;
        location / { llmproxy; }
        location /llmproxy/admin/ {
            llmproxy_admin;
            allow 127.0.0.1;
            deny all;
        }
    }
}
`;
}

// the user-format config with `settings` merged in
function withSettings(config, settings) {
  if (!settings || typeof config === 'string') return config;
  return { ...config, settings: { ...(config.settings || {}), ...settings } };
}

class Gateway {
  constructor(opts = {}) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmproxy-t-'));
    fs.chmodSync(this.dir, 0o755);
    fs.mkdirSync(path.join(this.dir, 'state'));
    this.workers = opts.workers || 2;
    this.zone = opts.zone || '16m';
    this.database = opts.database;
    this.reuseport = !!opts.reuseport;
    this.nginxEnv = opts.nginxEnv;  // extra environment of the nginx process
    this.httpExtra = opts.httpExtra;  // extra directives in http {}
    this.masterKey = 'sk-master-' + crypto.randomBytes(16).toString('hex');
    fs.writeFileSync(path.join(this.dir, 'master_key'), this.masterKey + '\n',
                     { mode: 0o600 });
    fs.chmodSync(path.join(this.dir, 'master_key'), 0o600);
    this.confFile = path.join(this.dir, 'nginx.conf');
    if (process.env.TEST_LLMPROXY_LEAVE) {
      process.stderr.write(`# gateway dir: ${this.dir}\n`);
    }
  }

  get url() { return `http://127.0.0.1:${this.port}`; }
  get baseURL() { return this.url + '/v1'; }

  env(extra = {}) {
    // LLMPROXY_VAR: never the var/ a `make run` in the checkout left
    return { ...process.env, LLMPROXY_VAR: path.join(this.dir, 'var'),
             LLMPROXY_GATEWAY_URL: this.url,
             LLMPROXY_MASTER_KEY: this.masterKey,
             LLMPROXY_DATABASE_URL: this.database || '', ...extra };
  }

  nginx(args) {
    return spawnSync(NGINX, ['-p', this.dir, '-c', this.confFile,
                             '-e', path.join(this.dir, 'error.log'), ...args],
                     { encoding: 'utf8', timeout: 30000,
                       env: { ...process.env, ...(this.nginxEnv || {}) } });
  }

  async start() {
    if (!this.port) this.port = await freePort();
    fs.writeFileSync(this.confFile, nginxConf(this));
    const r = this.nginx([]);
    if (r.status !== 0) {
      throw new Error(`nginx did not start (exit ${r.status}): ${r.stderr}\n`
                      + this.errorLog());
    }
    const t0 = Date.now();
    let last = 'no answer';
    while (Date.now() - t0 < 5000) {
      try {
        const res = await fetch(this.url + '/health/liveliness');
        await res.arrayBuffer();
        if (res.status === 200) return this;
        last = 'status ' + res.status;
      } catch (e) { last = e.message; }
      await sleep(50);
    }
    throw new Error(`gateway did not answer /health/liveliness with 200 `
                    + `within 5 s (${last}):\n` + this.errorLog());
  }

  // writes config.json (user format) and runs `llmproxyctl sync`
  sync(config, args = ['--force', '--prune'], extraEnv = {}) {
    const file = path.join(this.dir, 'config.json');
    fs.writeFileSync(file, typeof config === 'string' ? config
                                                      : JSON.stringify(config,
                                                        null, 2));
    return spawnSync(CTL, ['sync', '-c', file, ...args],
                     { env: this.env(extraEnv), encoding: 'utf8',
                       timeout: 30000 });
  }

  // the same, without blocking the event loop (in-process mocks keep
  // answering meanwhile): resolves to {status, stdout, stderr}
  syncAsync(config, args = ['--force', '--prune'], extraEnv = {}) {
    const file = path.join(this.dir, 'config.json');
    fs.writeFileSync(file, typeof config === 'string' ? config
                                                      : JSON.stringify(config,
                                                        null, 2));
    return new Promise((resolve) => {
      execFile(CTL, ['sync', '-c', file, ...args],
               { env: this.env(extraEnv), encoding: 'utf8', timeout: 30000 },
               (err, stdout, stderr) => resolve({
                 status: err ? (typeof err.code === 'number' ? err.code : -1)
                             : 0, stdout, stderr }));
    });
  }

  ctl(args, extraEnv = {}) {
    return spawnSync(CTL, args, { env: this.env(extraEnv), encoding: 'utf8',
                                  timeout: 30000 });
  }

  // sync --force --prune; fails the test unless llmproxyctl exits 0
  async configure(config) {
    const r = this.sync(config);
    assert.strictEqual(r.status, 0, 'llmproxyctl sync failed (exit '
      + r.status + '): ' + r.stdout + r.stderr);
    return r;
  }

  masterPid() {
    return Number(fs.readFileSync(path.join(this.dir, 'nginx.pid'), 'utf8'));
  }

  // the master's children (workers, and workers of an old generation that
  // are still finishing requests after a reload)
  workerPids() {
    const r = spawnSync('ps', ['-o', 'pid=', '--ppid',
                               String(this.masterPid())], { encoding: 'utf8' });
    return r.stdout.trim().split(/\s+/).filter(Boolean).map(Number)
      .sort((a, b) => a - b);
  }

  // `nginx -s reload`, then waits until a full set of new workers runs
  async reload() {
    const old = new Set(this.workerPids());
    const r = this.nginx(['-s', 'reload']);
    assert.strictEqual(r.status, 0, 'nginx -s reload: ' + r.stderr);
    const t0 = Date.now();
    while (Date.now() - t0 < 10000) {
      const fresh = this.workerPids().filter((p) => !old.has(p));
      if (fresh.length >= this.workers) return fresh;
      await sleep(50);
    }
    throw new Error('no new workers after reload:\n' + this.errorLog());
  }

  errorLog() {
    try {
      return fs.readFileSync(path.join(this.dir, 'error.log'), 'utf8');
    } catch (e) { return ''; }
  }

  // [{pid, status, method, uri}] from the access log
  accessLog() {
    let text = '';
    try {
      text = fs.readFileSync(path.join(this.dir, 'access.log'), 'utf8');
    } catch (e) { return []; }
    return text.split('\n').filter(Boolean).map((l) => {
      const [pid, status, method, uri] = l.split(' ');
      return { pid: Number(pid), status: Number(status), method, uri };
    });
  }

  // lines that must never appear: alerts, emergencies, crashed workers
  problems() {
    return this.errorLog().split('\n').filter((l) =>
      /\[(alert|emerg)\]|exited on signal|AddressSanitizer|runtime error:/
        .test(l));
  }

  // how: 'quit' (SIGQUIT, graceful), 'term' (SIGTERM), 'stop' (`nginx -s
  // stop`, as a user would)
  async stop({ keep = false, how = 'quit' } = {}) {
    let pid;
    try { pid = this.masterPid(); } catch (e) { pid = 0; }
    if (pid) {
      const children = this.workerPids();
      const alive = () => {
        try { process.kill(pid, 0); return true; } catch (e) { return false; }
      };
      const waitGone = async (ms) => {
        const t0 = Date.now();
        while (alive() && Date.now() - t0 < ms) await sleep(50);
        return !alive();
      };
      if (how === 'stop') {
        this.nginx(['-s', 'stop']);
      } else {
        try { process.kill(pid, how === 'term' ? 'SIGTERM' : 'SIGQUIT'); }
        catch (e) { /* gone */ }
      }
      if (!await waitGone(10000)) {
        // a graceful stop that does not end is worth knowing about
        this.stopProblem = `nginx master ${pid} still running 10 s after `
          + `${how}`;
        process.stderr.write('# ' + this.stopProblem + '\n');
        try { process.kill(pid, 'SIGTERM'); } catch (e) { /* gone */ }
        if (!await waitGone(5000)) {
          for (const p of [pid, ...children]) {
            try { process.kill(p, 'SIGKILL'); } catch (e) { /* gone */ }
          }
          await waitGone(2000);
        }
      }
    }
    if (!keep && !process.env.TEST_LLMPROXY_LEAVE) {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

async function startGateway(opts = {}) {
  const g = new Gateway(opts);
  try {
    await g.start();
    if (opts.config) {
      await g.configure(withSettings(opts.config, opts.settings));
    }
  } catch (e) {
    await g.stop({ keep: true });
    throw e;
  }
  return g;
}

// the check every test file ends with
function assertCleanErrorLog(gw) {
  assert.deepStrictEqual(gw.problems(), [],
    'error.log has [alert]/[emerg] lines or a crashed worker');
}

// raw HTTP through fetch: {status, headers, text, body (parsed or null)}
async function raw(url, init = {}) {
  const r = await fetch(url, init);
  const text = await r.text();
  let body = null;
  try { body = JSON.parse(text); } catch (e) { /* not JSON */ }
  return { status: r.status, headers: r.headers, text, body };
}

// asserts the OpenAI error shape {"error":{message,type,code}}
function assertOpenAIError(res, status, what = '') {
  assert.strictEqual(res.status, status, `${what}: status ${res.status}, `
                     + `body ${res.text}`);
  assert.ok(res.body && typeof res.body === 'object' && res.body.error,
            `${what}: not an OpenAI error: ${res.text}`);
  assert.strictEqual(typeof res.body.error.message, 'string', what);
  assert.ok(res.body.error.message.length > 0, what);
  assert.strictEqual(typeof res.body.error.type, 'string', what);
  assert.ok('code' in res.body.error, `${what}: error.code missing`);
  const h = typeof res.headers.get === 'function'
    ? res.headers.get('x-llmproxy-request-id')
    : res.headers['x-llmproxy-request-id'];
  assert.ok(h,
            `${what}: no x-llmproxy-request-id`);
}

module.exports = { startGateway, Gateway, nginxConf, withSettings, sleep, until,
                   assertCleanErrorLog, raw, assertOpenAIError,
                   ROOT, NGINX, MODULE, CTL };
