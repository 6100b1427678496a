'use strict';
// A rehearsal of stack/llmproxy.yaml as processes on this machine: three
// gateways (stack/entrypoint.sh, each with its own nginx prefix and state
// path) on one PostgreSQL, behind a plain nginx load balancer standing in
// for Traefik (proxy_next_upstream, as Traefik's retry middleware; a new
// task gets requests once its readiness says so, as Traefik and Swarm
// route to healthy tasks only), with
// two mock providers standing in for CLIProxyAPI and Antigravity Manager.
// Under bounded load (4 clients, each pausing 10 ms between requests):
// keys created and revoked with llmproxyctl are honoured by all three
// within the documented second (plus a poll); a sync reaches all; every
// usage record arrives, none twice; one replica drained (QUIT) and one
// killed (KILL), each restarted, and a rolling reload (HUP) of all three
// cost the clients no failed request.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const { NGINX, CTL, sleep } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock, freePort } = require('../mocks/openai-mock');
const { Replica, writeSecrets, cleanEnv } = require('../lib/stack');

const MASTER = 'sk-master-' + crypto.randomBytes(16).toString('hex');
const SALT = 'salt-' + crypto.randomBytes(16).toString('hex');
const NEW_MASTER = 'sk-master2-' + crypto.randomBytes(16).toString('hex');
const NEW_SALT = 'salt2-' + crypto.randomBytes(16).toString('hex');
// the providers' keys, in config.local.json (a secret), stored encrypted
const LOCAL = { providers: { cliproxy: { api_key: 'sk-cliproxy-1' },
                             antigravity: { api_key: 'sk-antigravity-1' } } };
// key changes: one poll (1 s), the request that sees it, and slack for a
// machine busy with other tests
const HONOURED_MS = 3000;

let pg, dir, cliproxy, antigravity, lb, replicas = [], secrets, configFile;

function config(extra = {}) {
  return {
    providers: {
      cliproxy: { api_base: cliproxy.url, interfaces: ['openai'],
                  models: { 'gpt-5': {} } },
      antigravity: { api_base: antigravity.url, interfaces: ['openai'],
                     models: { 'gpt-5': {}, 'gemini-2.5-flash': {} } },
    },
    aliases: { fast: 'gemini-2.5-flash', ...extra },
  };
}

// a replica of the service; keys: the secrets it gets (a rotation
// deploys new ones)
function replica(i, port, keys = secrets) {
  return new Replica({ dir: path.join(dir, 'gw' + i), port, env: {
    LLMPROXY_MASTER_KEY_FILE: keys.llmproxy_master_key,
    LLMPROXY_SALT_KEY_FILE: keys.llmproxy_salt_key,
    LLMPROXY_DATABASE_URL: pg.url,
    LLMPROXY_CONFIG_FILE: configFile,
    LLMPROXY_CONFIG_LOCAL_FILE: secrets.llmproxy_config_local,
    LLMPROXY_DRAIN_TIMEOUT: '10s',
  } });
}

// the stand-in for Traefik: round robin, the next gateway on a refused or
// cut connection, a 502 or a 503 (non_idempotent: a POST whose gateway
// died mid-request is sent again, as Traefik's retry middleware does)
function lbConf(d, port, ports, down = new Set()) {
  return `worker_processes 1;
pid ${d}/nginx.pid;
error_log ${d}/error.log notice;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path ${d}/body;
    proxy_temp_path ${d}/proxy;
    upstream gateways {
${ports.map((p) => `        server 127.0.0.1:${p} max_fails=1 fail_timeout=1s`
                  + (down.has(p) ? ' down;' : ';')).join('\n')}
    }
    server {
        listen 127.0.0.1:${port};
        location / {
            proxy_pass http://gateways;
            proxy_next_upstream error timeout http_502 http_503
                                non_idempotent;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 1s;
            proxy_buffering off;
            add_header x-upstream $upstream_addr always;
        }
    }
}
`;
}

// gate(port, up): a task's health as Traefik and Swarm see it: a new
// task gets requests once its readiness answers 200 (a reload of the
// balancer here; the clients use a new connection per request, so the
// reload's closing of idle connections is not in the way)
async function startLB(ports) {
  const d = path.join(dir, 'lb');
  fs.mkdirSync(d);
  const port = await freePort();
  const conf = path.join(d, 'nginx.conf');
  const down = new Set();
  const nginx = (args) => spawnSync(NGINX, ['-p', d, '-c', conf, '-e',
                                            path.join(d, 'error.log'),
                                            ...args], { encoding: 'utf8' });
  const pid = () => Number(fs.readFileSync(path.join(d, 'nginx.pid')));
  const workers = () => spawnSync('ps', ['-o', 'pid=', '--ppid',
    String(pid())], { encoding: 'utf8' }).stdout.trim().split(/\s+/);
  fs.writeFileSync(conf, lbConf(d, port, ports, down));
  const r = nginx([]);
  assert.strictEqual(r.status, 0, r.stderr);
  return { url: `http://127.0.0.1:${port}`, dir: d,
           async gate(p, up) {
             if (up) down.delete(p); else down.add(p);
             fs.writeFileSync(conf, lbConf(d, port, ports, down));
             const old = workers();
             const q = nginx(['-s', 'reload']);
             assert.strictEqual(q.status, 0, q.stderr);
             for (let i = 0; i < 100; i++) {
               if (workers().some((w) => !old.includes(w))) break;
               await sleep(20);
             }
           },
           stop() {
             try { process.kill(pid(), 'SIGQUIT'); } catch (e) { /* gone */ }
           } };
}

// a replica replaced by a new task: it gets requests once it is ready
async function replace(i, how, keys) {
  const old = replicas[i];
  if (how === 'kill') {
    old.kill();
    await old.exited;
  } else {
    assert.deepStrictEqual(await old.stop(), { code: 0, sig: null },
                           old.out);
  }
  await lb.gate(old.port, false);
  replicas[i] = replica(i + 1, old.port, keys).start();
  await replicas[i].ready();
  await lb.gate(old.port, true);
}

function ctl(args) {
  const r = spawnSync(CTL, args, { encoding: 'utf8', timeout: 30000,
    env: { ...cleanEnv(), LLMPROXY_DATABASE_URL: pg.url,
           LLMPROXY_SALT_KEY: SALT, LLMPROXY_MASTER_KEY: MASTER,
           LLMPROXY_GATEWAY_URL: replicas[0].url } });
  assert.strictEqual(r.status, 0, `llmproxyctl ${args.join(' ')}: `
                     + r.stdout + r.stderr);
  return r.stdout;
}

function createKey(alias) {
  const m = ctl(['key', 'create', '--alias', alias, '--models', 'gpt-5'])
    .match(/sk-[A-Za-z0-9_-]{32,}/);
  assert.ok(m, 'a key printed');
  return m[0];
}


// one chat completion: {status, upstream, id}
function chat(url, key, model = 'gpt-5') {
  const body = JSON.stringify({ model,
    messages: [{ role: 'user', content: 'hi' }] });
  return new Promise((resolve) => {
    const req = http.request(url + '/v1/chat/completions', {
      method: 'POST', agent: false,
      headers: { authorization: 'Bearer ' + key,
                 'content-type': 'application/json',
                 'content-length': Buffer.byteLength(body) } }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => {
        const upstream = String(res.headers['x-upstream'] || '');
        resolve({ status: res.statusCode,
                  detail: `${res.statusCode} via ${upstream}: `
                          + Buffer.concat(parts).toString().slice(0, 160),
                  upstream: upstream.split(', ').pop(),
                  id: res.headers['x-llmproxy-request-id'] });
      });
      res.on('error', (e) => resolve({ status: 'error ' + e.message }));
    });
    req.setTimeout(30000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 'error ' + e.message }));
    req.end(body);
  });
}

// bounded load through the balancer: `clients` loops, each pausing 10 ms
// between requests, until stop() or `max` requests; resolves to counts
function startLoad(key, { clients = 4, max = 4000 } = {}) {
  let stopped = false, sent = 0;
  const res = { ok: 0, failed: [], ids: [], upstreams: {} };
  const loops = Array.from({ length: clients }, async () => {
    while (!stopped && sent < max) {
      sent++;
      const r = await chat(lb.url, key);
      if (r.status === 200) {
        res.ok++;
        res.ids.push(r.id);
        res.upstreams[r.upstream] = (res.upstreams[r.upstream] || 0) + 1;
      } else {
        res.failed.push(r.detail || r.status);
      }
      await sleep(10);
    }
  });
  return { stop: async () => { stopped = true; await Promise.all(loops);
                               return res; },
           done: Promise.all(loops).then(() => res) };
}

// until fn() is true on every replica; the slowest time in ms
async function everyReplica(fn, ms = 10000) {
  const t0 = Date.now();
  const pending = new Set(replicas);
  while (pending.size && Date.now() - t0 < ms) {
    for (const r of [...pending]) if (await fn(r)) pending.delete(r);
    if (pending.size) await sleep(50);
  }
  assert.strictEqual(pending.size, 0, 'replicas '
    + [...pending].map((r) => r.port).join(',') + ' never did');
  return Date.now() - t0;
}

// request ids as PostgreSQL prints a uuid
const uuid = (id) => String(id).toLowerCase().replace(
  /^([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})$/,
  '$1-$2-$3-$4-$5');

const usageIds = (alias) => pg.psql('SELECT request_id FROM llmproxy_usage'
  + ` WHERE key_alias = '${alias}' ORDER BY 1`).split('\n').filter(Boolean);

// every id answered under load has exactly one record (the warm-up
// requests' records are not counted)
async function usageArrives(alias, ids, ms = 8000) {
  const want = ids.map(uuid).sort();
  const mine = new Set(want);
  const t0 = Date.now();
  let got = [];
  while (Date.now() - t0 < ms) {
    got = usageIds(alias).filter((id) => mine.has(id));
    if (got.length >= want.length) break;
    await sleep(200);
  }
  assert.strictEqual(got.length, want.length, `${alias}: ${got.length} `
                     + `records for ${want.length} answered requests`);
  assert.deepStrictEqual(got, want, 'the same request ids, none twice');
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmproxy-replicas-'));
  fs.chmodSync(dir, 0o755);
  pg = await startPostgres();
  cliproxy = await createMock({ name: 'cliproxy' });
  antigravity = await createMock({ name: 'antigravity' });
  secrets = writeSecrets(dir, { llmproxy_master_key: MASTER,
                                llmproxy_salt_key: SALT,
                                llmproxy_config_local: JSON.stringify(LOCAL) });
  configFile = path.join(dir, 'config.json');
  fs.writeFileSync(configFile, JSON.stringify(config()));
  const ports = [await freePort(), await freePort(), await freePort()];
  replicas = ports.map((p, i) => replica(i + 1, p));
  lb = await startLB(ports);
});

after(async () => {
  const problems = replicas.flatMap((r) => r.problems());
  await Promise.all(replicas.map((r) => r.stop()));
  if (lb) lb.stop();
  for (const m of [cliproxy, antigravity]) if (m) await m.close();
  if (pg) pg.destroy();
  if (dir && !process.env.TEST_LLMPROXY_LEAVE) {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.deepStrictEqual(problems, []);
});

test('three replicas start together on one database', async () => {
  // all at once, as `docker stack deploy` starts them: concurrent
  // migrations and syncs of the same config
  for (const r of replicas) r.start();
  for (const r of replicas) {
    const ready = await r.ready();
    assert.strictEqual(ready.database, 'connected');
    assert.ok(ready.config_generation >= 1);
  }
  const applied = replicas.filter((r) => /applied \(config version/
    .test(r.out)).length;
  assert.ok(applied >= 1, 'one of them stored the config');
  for (const r of replicas) {
    assert.match(r.out, /applied \(config version|nothing to apply/);
  }
  const r = await chat(lb.url, MASTER);
  assert.strictEqual(r.status, 200);
});

test('a key created or revoked is honoured by all within the poll',
     async (t) => {
  const key = createKey('team-a');
  const createdMs = await everyReplica(async (r) =>
    (await chat(r.url, key)).status === 200);
  assert.ok(createdMs <= HONOURED_MS, `created: ${createdMs} ms`);

  ctl(['key', 'revoke', 'team-a']);
  const revokedMs = await everyReplica(async (r) =>
    (await chat(r.url, key)).status === 401);
  assert.ok(revokedMs <= HONOURED_MS, `revoked: ${revokedMs} ms`);
  t.diagnostic(`key honoured by all 3 in ${createdMs} ms, revoked in `
               + `${revokedMs} ms`);
  const lbr = await chat(lb.url, key);
  assert.strictEqual(lbr.status, 401);
});

test('a sync reaches every replica', async (t) => {
  // as an operator would from a checkout: config.json, config.local.json
  const d = path.join(dir, 'checkout');
  fs.mkdirSync(d);
  fs.writeFileSync(path.join(d, 'config.json'),
                   JSON.stringify(config({ fast2: 'antigravity/gpt-5' })));
  fs.writeFileSync(path.join(d, 'config.local.json'), JSON.stringify(LOCAL));
  const out = ctl(['sync', '-c', path.join(d, 'config.json'), '--force',
                   '--prune']);
  assert.match(out, /applied \(config version \d+\)/);
  const ms = await everyReplica(async (r) =>
    (await chat(r.url, MASTER, 'fast2')).status === 200);
  assert.ok(ms <= HONOURED_MS, `sync: ${ms} ms`);
  t.diagnostic(`sync served by all 3 in ${ms} ms`);
});

test('usage from all three arrives, none lost, none twice', async () => {
  const key = createKey('usage-all');
  await everyReplica(async (r) => (await chat(r.url, key)).status === 200);
  const load = startLoad(key, { clients: 6, max: 300 });
  const res = await load.done;
  assert.deepStrictEqual(res.failed, []);
  assert.strictEqual(res.ok, 300);
  assert.strictEqual(Object.keys(res.upstreams).length, 3,
                     'all three served: ' + JSON.stringify(res.upstreams));
  await usageArrives('usage-all', res.ids);
});

test('a replica drained and one killed, both restarted: no failure',
     async (t) => {
  const key = createKey('chaos');
  await everyReplica(async (r) => (await chat(r.url, key)).status === 200);
  const load = startLoad(key);
  await sleep(300);

  // a rolling update's stop: TERM, the entrypoint drains with QUIT
  await replace(1, 'stop');
  await sleep(300);
  // a node lost: KILL, no drain
  await replace(2, 'kill');
  await sleep(500);

  const res = await load.stop();
  assert.deepStrictEqual(res.failed, [], `${res.failed.length} of `
                         + `${res.ok + res.failed.length} failed`);
  assert.ok(res.ok >= 100, 'requests during the drill: ' + res.ok);
  assert.ok(Object.keys(res.upstreams).length === 3,
            JSON.stringify(res.upstreams));
  // the killed gateway's unflushed records are gone, never doubled
  await sleep(1000);
  const ids = new Set(res.ids.map(uuid));
  const got = usageIds('chaos').filter((id) => ids.has(id));
  assert.strictEqual(new Set(got).size, got.length, 'no record twice');
  assert.ok(got.length > res.ok / 2, `${got.length} of ${res.ok} recorded`);
  t.diagnostic(`drill: ${res.ok} answered, 0 failed, ${got.length} recorded `
               + `(the killed one's unflushed records are lost)`);
});

test('a rolling reload of all three costs nothing', async (t) => {
  const key = createKey('rolling');
  await everyReplica(async (r) => (await chat(r.url, key)).status === 200);
  const load = startLoad(key);
  await sleep(300);
  for (const r of replicas) {
    const old = r.workerPids();
    r.signal('HUP');
    for (let i = 0; i < 100; i++) {
      if (r.workerPids().some((p) => !old.includes(p))) break;
      await sleep(50);
    }
    assert.ok(r.workerPids().some((p) => !old.includes(p)),
              'new workers on ' + r.port);
    await sleep(300);
  }
  const res = await load.stop();
  assert.deepStrictEqual(res.failed, []);
  assert.ok(res.ok >= 100, 'requests during the reloads: ' + res.ok);
  await usageArrives('rolling', res.ids);
  t.diagnostic(`rolling reload: ${res.ok} answered, 0 failed, all recorded`);
});

// README, "Rotate the salt key": the service is rolled over to new
// secrets, with no manual step; the first new task's sync encrypts the
// provider keys with the new salt key, the old tasks keep serving the
// config they hold until replaced
test('new master and salt keys rolled over the replicas: no failure',
     async (t) => {
  const key = createKey('rotation');
  await everyReplica(async (r) => (await chat(r.url, key)).status === 200);
  const keys = writeSecrets(path.join(dir, 'v2'), {
    llmproxy_master_key: NEW_MASTER, llmproxy_salt_key: NEW_SALT });
  const enc = () => pg.psql('SELECT string_agg(api_key_enc, \',\' ORDER BY'
    + " name) FROM llmproxy_config_entries WHERE kind = 'credentials'");
  const before = enc();

  const load = startLoad(key);
  await sleep(300);
  for (let i = 0; i < replicas.length; i++) {
    await replace(i, 'stop', keys);
    if (i === 0) {
      assert.match(replicas[0].out, /applied \(config version/);
      assert.match(replicas[0].out,
                   /~ credential \S+ \(re-encrypted: salt key changed\)$/m);
    }
    await sleep(300);
  }
  const res = await load.stop();
  assert.deepStrictEqual(res.failed, [], `${res.failed.length} failed`);
  assert.ok(res.ok >= 100, 'requests during the rotation: ' + res.ok);
  assert.notStrictEqual(enc(), before, 're-encrypted with the new salt key');

  cliproxy.reset();
  antigravity.reset();
  for (const r of replicas) {
    assert.strictEqual((await chat(r.url, NEW_MASTER)).status, 200);
    assert.strictEqual((await chat(r.url, MASTER)).status, 401);
    for (let i = 0; i < 2; i++) {
      assert.strictEqual((await chat(r.url, key)).status, 200);
    }
  }
  for (const [m, k] of [[cliproxy, 'sk-cliproxy-1'],
                        [antigravity, 'sk-antigravity-1']]) {
    assert.ok(m.requests.length > 0, m.name + ' got requests');
    for (const q of m.requests) {
      assert.strictEqual(q.headers.authorization, 'Bearer ' + k, m.name);
    }
  }
  t.diagnostic(`rotation: ${res.ok} answered, 0 failed`);
});
