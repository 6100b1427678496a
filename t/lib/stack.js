'use strict';
// stack/entrypoint.sh run as a plain process, with the environment a Swarm
// task of stack/llmproxy.yaml gets: secrets as files (*_FILE), the config
// as a file, temp dirs for /run/llmproxy and /var/lib/llmproxy, nginx
// workers as nobody.
//
//   const r = new Replica({ dir, port, env });   // env: extra variables
//   await r.start(); await r.ready();            // readiness 200
//   r.out (its stdout+stderr so far), r.masterPid(), r.workerPids()
//   r.signal('HUP'), await r.exited, await r.stop()
//   r.kill()   SIGKILL to the entrypoint, nginx and its workers

const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { ROOT, MODULE, CTL, sleep } = require('./gateway');

const ENTRYPOINT = path.join(ROOT, 'stack', 'entrypoint.sh');

// the test runner's own LLMPROXY_* must not leak into a replica
function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(LLMPROXY|PG)/.test(k)) env[k] = v;
  }
  return env;
}

class Replica {
  constructor({ dir, port, env = {} }) {
    this.dir = dir;
    this.port = port;
    this.run = path.join(dir, 'run');
    this.state = path.join(dir, 'state');
    this.env = { ...cleanEnv(),
                 LLMPROXY_RUN_DIR: this.run, LLMPROXY_STATE_PATH: this.state,
                 LLMPROXY_MODULE: MODULE, LLMPROXYCTL: CTL,
                 LLMPROXY_LISTEN: `127.0.0.1:${port}`,
                 LLMPROXY_USER: 'nobody', LLMPROXY_GROUP: 'nogroup',
                 LLMPROXY_WORKERS: '1', LLMPROXY_THREADS: '2',
                 LLMPROXY_ZONE_SIZE: '16m', LLMPROXY_ACCESS_LOG: 'off',
                 ...env };
  }

  get url() { return `http://127.0.0.1:${this.port}`; }

  // its stdout and stderr go to a file, as Docker's go to its log: nginx
  // can open /dev/stdout then (not when it is a socket)
  get out() {
    try { return fs.readFileSync(this.outFile, 'utf8'); } catch (e) {
      return '';
    }
  }

  start(args = []) {
    fs.mkdirSync(this.dir, { recursive: true });
    this.outFile = path.join(this.dir, 'out.log');
    const fd = fs.openSync(this.outFile, 'w');
    this.child = spawn('bash', [ENTRYPOINT, ...args],
                       { env: this.env, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    this.exited = new Promise((r) => this.child.on('exit',
      (code, sig) => r({ code, sig })));
    this.child.on('exit', () => { this.gone = true; });
    this.gone = false;
    return this;
  }

  // readiness 200 within ms; returns its body
  async ready(ms = 30000) {
    const t0 = Date.now();
    let last = 'no answer';
    while (Date.now() - t0 < ms) {
      if (this.gone) break;
      try {
        const r = await fetch(this.url + '/health/readiness');
        const text = await r.text();
        if (r.status === 200) return JSON.parse(text);
        last = r.status + ' ' + text;
      } catch (e) { last = e.message; }
      await sleep(100);
    }
    throw new Error(`replica ${this.port} not ready (${last}):\n${this.out}`);
  }

  masterPid() {
    return Number(fs.readFileSync(path.join(this.run, 'nginx.pid'), 'utf8'));
  }

  workerPids() {
    const r = spawnSync('ps', ['-o', 'pid=', '--ppid',
                               String(this.masterPid())], { encoding: 'utf8' });
    return r.stdout.trim().split(/\s+/).filter(Boolean).map(Number);
  }

  signal(sig) { this.child.kill('SIG' + sig); }

  // TERM (a drain), then wait for the exit
  async stop(ms = 20000) {
    if (this.gone) return this.exited;
    this.signal('TERM');
    const t = setTimeout(() => this.kill(), ms);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }

  // as a crashed node would: SIGKILL to everything, no drain
  kill() {
    let pids = [];
    try { pids = [this.masterPid(), ...this.workerPids()]; } catch (e) { }
    try { this.child.kill('SIGKILL'); } catch (e) { /* gone */ }
    for (const p of pids) {
      try { process.kill(p, 'SIGKILL'); } catch (e) { /* gone */ }
    }
  }

  problems() {
    return this.out.split('\n').filter((l) =>
      /\[(alert|emerg)\]|exited on signal|AddressSanitizer|runtime error:/
        .test(l));
  }
}

// the files a Swarm task finds under /run/secrets, in DIR/secrets
function writeSecrets(dir, secrets) {
  const d = path.join(dir, 'secrets');
  fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  const files = {};
  for (const [name, value] of Object.entries(secrets)) {
    files[name] = path.join(d, name);
    fs.writeFileSync(files[name], value + '\n', { mode: 0o400 });
  }
  return files;
}

module.exports = { Replica, writeSecrets, cleanEnv, ENTRYPOINT };
