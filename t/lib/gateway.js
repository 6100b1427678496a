'use strict';
// Starts a real nginx with the module in a temp prefix, pushes a config
// with the real llmproxyctl, and stops it.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { execFileSync, spawnSync } = require('node:child_process');
const { closedPort } = require('./mock');

const ROOT = path.resolve(__dirname, '..', '..');
const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';
const MODULE = path.join(ROOT, 'build', 'ngx_http_llmproxy_module.so');
const CTL = path.join(ROOT, 'build', 'llmproxyctl');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function nginxConf(g) {
  return `load_module ${MODULE};
worker_processes ${g.workers};
pid ${g.dir}/nginx.pid;
error_log ${g.dir}/error.log info;
events { worker_connections 1024; }
thread_pool llmproxy threads=2;
http {
    access_log ${g.dir}/access.log;
    client_body_temp_path ${g.dir}/body;
    llmproxy_zone llmproxy:${g.zone};
    llmproxy_master_key_file ${g.dir}/master_key;
    llmproxy_state_path ${g.dir}/state;
    llmproxy_thread_pool llmproxy;
    ${g.database ? `llmproxy_database ${g.database};
    llmproxy_database_poll 500ms;` : ''}
    server {
        listen 127.0.0.1:${g.port};
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

class Gateway {
  constructor(opts) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmproxy-t-'));
    fs.chmodSync(this.dir, 0o755);
    this.workers = opts.workers || 2;
    this.zone = opts.zone || '16m';
    this.database = opts.database;
    this.masterKey = 'sk-master-' + crypto.randomBytes(12).toString('hex');
    fs.writeFileSync(path.join(this.dir, 'master_key'), this.masterKey + '\n',
                     { mode: 0o600 });
  }

  get url() { return `http://127.0.0.1:${this.port}`; }
  get baseURL() { return this.url + '/v1'; }

  env(extra = {}) {
    return { ...process.env, LLMPROXY_GATEWAY_URL: this.url,
             LLMPROXY_MASTER_KEY: this.masterKey,
             LLMPROXY_DATABASE_URL: this.database || '', ...extra };
  }

  async start() {
    if (!this.port) this.port = await closedPort();
    fs.writeFileSync(path.join(this.dir, 'nginx.conf'), nginxConf(this));
    execFileSync(NGINX, ['-p', this.dir, '-c', path.join(this.dir,
      'nginx.conf'), '-e', path.join(this.dir, 'error.log')]);
    for (let i = 0; i < 100; i++) {
      try {
        const r = await fetch(this.url + '/health/liveliness');
        if (r.status === 200) return this;
      } catch (e) { /* not yet */ }
      await sleep(50);
    }
    throw new Error('gateway did not start: ' + this.errorLog());
  }

  // writes config.json (user format) and runs `llmproxyctl sync`
  sync(config, args = ['--force', '--prune'], extraEnv = {}) {
    const file = path.join(this.dir, 'config.json');
    fs.writeFileSync(file, typeof config === 'string' ? config
                                                      : JSON.stringify(config));
    return spawnSync(CTL, ['sync', '-c', file, ...args],
                     { env: this.env(extraEnv), encoding: 'utf8' });
  }

  ctl(args, extraEnv = {}) {
    return spawnSync(CTL, args, { env: this.env(extraEnv), encoding: 'utf8' });
  }

  async configure(config) {
    const r = this.sync(config);
    if (r.status !== 0) {
      throw new Error('sync failed: ' + r.stdout + r.stderr);
    }
    await sleep(50);
    return r;
  }

  masterPid() {
    return Number(fs.readFileSync(path.join(this.dir, 'nginx.pid'), 'utf8'));
  }

  workerPids() {
    const r = spawnSync('pgrep', ['-P', String(this.masterPid())],
                        { encoding: 'utf8' });
    return r.stdout.trim().split('\n').filter(Boolean).map(Number).sort();
  }

  errorLog() {
    try {
      return fs.readFileSync(path.join(this.dir, 'error.log'), 'utf8');
    } catch (e) { return ''; }
  }

  // lines that must never appear: crashes, alerts
  problems() {
    return this.errorLog().split('\n').filter((l) =>
      /\[(alert|emerg)\]|exited on signal|AddressSanitizer/.test(l));
  }

  async stop({ keep = false } = {}) {
    let pid;
    try { pid = this.masterPid(); } catch (e) { return; }
    try { process.kill(pid, 'SIGTERM'); } catch (e) { /* gone */ }
    for (let i = 0; i < 100; i++) {
      try { process.kill(pid, 0); } catch (e) { break; }
      await sleep(50);
    }
    if (!keep && !process.env.TEST_LLMPROXY_LEAVE) {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

async function startGateway(opts = {}) {
  const g = new Gateway(opts);
  await g.start();
  if (opts.config) await g.configure(opts.config);
  return g;
}

module.exports = { startGateway, Gateway, sleep, ROOT, NGINX, MODULE, CTL };
