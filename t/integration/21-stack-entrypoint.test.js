'use strict';
// stack/entrypoint.sh outside a container, with what a Swarm task of
// stack/llmproxy.yaml gets (secrets as *_FILE, the config as a file, the
// database by host and password): it waits for PostgreSQL, migrates,
// syncs, writes an nginx.conf that passes `nginx -t` and serves; workers
// are not root; no secret reaches nginx.conf, the logs or `ps`; /metrics
// is fenced; HUP reloads; TERM drains a stream in flight.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const { NGINX, CTL, sleep } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock, freePort } = require('../mocks/openai-mock');
const { Replica, writeSecrets, ENTRYPOINT } = require('../lib/stack');
const { postJSON } = require('../lib/http');

const hex = (n) => crypto.randomBytes(n).toString('hex');
const MASTER = 'sk-master-' + hex(16);
const SALT = 'salt-' + hex(16);
const DB_PASSWORD = 'pw:' + hex(8) + '\\x';   // ':' and '\' need escaping
const PROVIDER_KEY = 'sk-cliproxy-SECRET-' + hex(8);
const SECRETS = [MASTER, SALT, DB_PASSWORD, PROVIDER_KEY];

let pg, mock, dir, gw, files;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmproxy-entry-'));
  fs.chmodSync(dir, 0o755);
  pg = await startPostgres();
  // the stack's database user, with a password the server checks
  pg.psql(`CREATE ROLE llmproxy LOGIN PASSWORD '${DB_PASSWORD}';
           ALTER DATABASE llmproxy OWNER TO llmproxy`);
  const hba = path.join(pg.dir, 'data', 'pg_hba.conf');
  fs.writeFileSync(hba, 'host all llmproxy 127.0.0.1/32 scram-sha-256\n'
                        + fs.readFileSync(hba, 'utf8'));
  pg.psql('SELECT pg_reload_conf()');

  mock = await createMock({ name: 'cliproxy', chunks: 20, delay: 50 });
  files = writeSecrets(dir, { llmproxy_master_key: MASTER,
    llmproxy_salt_key: SALT, postgres_password: DB_PASSWORD,
    llmproxy_config_local: JSON.stringify({ providers: { cliproxy: {
      api_key: PROVIDER_KEY } } }) });
  fs.mkdirSync(path.join(dir, 'configs'));
  fs.writeFileSync(path.join(dir, 'configs', 'config.json'), JSON.stringify({
    providers: { cliproxy: { api_base: mock.url, interfaces: ['openai'],
                             models: { 'gpt-5': {} } } },
    aliases: { fast: 'gpt-5' } }));

  gw = new Replica({ dir, port: await freePort(), env: {
    LLMPROXY_WORKERS: '2',
    LLMPROXY_MASTER_KEY_FILE: files.llmproxy_master_key,
    LLMPROXY_SALT_KEY_FILE: files.llmproxy_salt_key,
    LLMPROXY_DB_HOST: '127.0.0.1', LLMPROXY_DB_PORT: String(pg.port),
    LLMPROXY_DB_USER: 'llmproxy', LLMPROXY_DB_NAME: 'llmproxy',
    LLMPROXY_DB_PASSWORD_FILE: files.postgres_password,
    LLMPROXY_CONFIG_FILE: path.join(dir, 'configs', 'config.json'),
    LLMPROXY_CONFIG_LOCAL_FILE: files.llmproxy_config_local,
    LLMPROXY_METRICS_ALLOW: '10.77.0.0/16',
    LLMPROXY_ACCESS_LOG: '/dev/stdout',
  } });
});

after(async () => {
  if (gw) await gw.stop();
  if (mock) await mock.close();
  if (pg) pg.destroy();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const chat = (url, key, body = {}) => fetch(url + '/v1/chat/completions', {
  method: 'POST',
  headers: { authorization: 'Bearer ' + key,
             'content-type': 'application/json' },
  body: JSON.stringify({ model: 'gpt-5',
                         messages: [{ role: 'user', content: 'hi' }],
                         ...body }) });

test('waits for PostgreSQL, migrates, syncs and serves', async () => {
  pg.stop();
  gw.start();
  for (let i = 0; i < 100 && !/waiting for PostgreSQL/.test(gw.out); i++) {
    await sleep(50);
  }
  assert.match(gw.out, /waiting for PostgreSQL/);
  await sleep(500);
  pg.start();

  const ready = await gw.ready();
  assert.strictEqual(ready.status, 'ready');
  assert.strictEqual(ready.database, 'connected');
  assert.match(gw.out, /database schema up to date/);
  assert.match(gw.out, /applied \(config version \d+\)/);

  const r = await chat(gw.url, MASTER);
  const body = await r.json();
  assert.strictEqual(r.status, 200, JSON.stringify(body));
  assert.strictEqual(body.choices[0].message.content, 'hello from cliproxy');
  // config.local.json's key, stored encrypted, decrypted with the salt key
  const seen = mock.requests.at(-1);
  assert.strictEqual(seen.headers.authorization, 'Bearer ' + PROVIDER_KEY);
  assert.match(pg.psql("SELECT api_key_enc FROM llmproxy_config_entries"
                       + " WHERE kind = 'credentials'"), /^v1:/);
  const alias = await chat(gw.url, MASTER, { model: 'fast' });
  assert.strictEqual(alias.status, 200);
  await alias.arrayBuffer();
});

test('its nginx.conf passes nginx -t and holds no secret', () => {
  const conf = path.join(gw.run, 'nginx.conf');
  // (stdout not a socket: the access log opens /dev/stdout)
  const t = spawnSync(NGINX, ['-t', '-p', gw.run, '-c', conf, '-e', 'stderr'],
                      { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  assert.strictEqual(t.status, 0, t.stderr);
  assert.strictEqual(fs.statSync(conf).mode & 0o777, 0o600);
  const text = fs.readFileSync(conf, 'utf8');
  for (const s of SECRETS) assert.ok(!text.includes(s), 'a secret in conf');
  assert.match(text, /^user nobody nogroup;$/m);
  assert.match(text, /llmproxy_database "postgresql:\/\/llmproxy@127\.0\.0\.1:\d+\/llmproxy\?passfile=/);
  const pgpass = path.join(gw.run, 'pgpass');
  const st = fs.statSync(pgpass);
  assert.strictEqual(st.mode & 0o777, 0o600);
  assert.strictEqual(st.uid, Number(spawnSync('id', ['-u', 'nobody'],
    { encoding: 'utf8' }).stdout));
});

test('workers are not root; no secret in ps, logs or environment', () => {
  const users = spawnSync('ps', ['-o', 'user=', '--ppid',
                                 String(gw.masterPid())], { encoding: 'utf8' })
    .stdout.trim().split(/\s+/);
  assert.ok(users.length >= 2, users.join(','));
  for (const u of users) assert.strictEqual(u, 'nobody');

  const ps = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout;
  for (const s of SECRETS) {
    assert.ok(!ps.includes(s), 'a secret in ps');
    assert.ok(!gw.out.includes(s), 'a secret in the output');
  }
  // the master inherits no secret from the entrypoint's environment
  const env = fs.readFileSync(`/proc/${gw.masterPid()}/environ`, 'utf8');
  for (const s of SECRETS) assert.ok(!env.includes(s), 'a secret in environ');
  assert.ok(!/LLMPROXY_MASTER_KEY=/.test(env));
  // the JSON access log on stdout, as `docker service logs` shows it
  assert.match(gw.out, /^\{"time":"[^"]+","id":"[^"]+","key":"[^"]*","model":"gpt-5",.*"status":200,/m);
});

test('/metrics answers the monitoring network only', async () => {
  const m = await fetch(gw.url + '/metrics');
  await m.arrayBuffer();
  assert.strictEqual(m.status, 403, 'fenced to 10.77.0.0/16');
  const l = await fetch(gw.url + '/health/liveliness');
  await l.arrayBuffer();
  assert.strictEqual(l.status, 200);
});

test('HUP rewrites nginx.conf and reloads without a failed request',
     async () => {
  const old = gw.workerPids();
  const before = fs.statSync(path.join(gw.run, 'nginx.conf')).mtimeMs;
  // a new connection per request: an idle keep-alive connection the old
  // workers close can race a client's next request on it (HTTP/1.1's own
  // race, which clients and Traefik retry), not what is measured here
  let stop = false, failed = 0, done = 0;
  const errors = [];
  const load = (async () => {
    while (!stop) {
      const r = await postJSON(gw.url + '/v1/chat/completions', MASTER,
        { model: 'gpt-5', messages: [{ role: 'user', content: 'hi' }] })
        .catch((e) => ({ status: e.message }));
      if (r.status !== 200) { failed++; errors.push(r.status); }
      done++;
    }
  })();
  await sleep(200);
  gw.signal('HUP');
  let fresh = [];
  for (let i = 0; i < 100; i++) {
    fresh = gw.workerPids().filter((p) => !old.includes(p));
    if (fresh.length >= 2) break;
    await sleep(50);
  }
  await sleep(300);
  stop = true;
  await load;
  assert.ok(fresh.length >= 2, 'new workers after HUP:\n' + gw.out);
  assert.match(gw.out, /HUP: rewriting nginx.conf and reloading/);
  assert.ok(fs.statSync(path.join(gw.run, 'nginx.conf')).mtimeMs >= before);
  assert.strictEqual(failed, 0, `${failed} of ${done} failed: ${errors}`);
  assert.ok(done > 5, 'requests ran: ' + done);
});

test('TERM drains: a stream in flight ends whole, then it exits 0',
     async () => {
  const r = await chat(gw.url, MASTER, { stream: true });
  assert.strictEqual(r.status, 200);
  const reader = r.body.getReader();
  let text = '';
  const first = await reader.read();
  text += Buffer.from(first.value).toString();
  gw.signal('TERM');
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString();
  }
  assert.match(text, /data: \[DONE\]/);
  assert.strictEqual((text.match(/"content":"c\d+"/g) || []).length, 20);
  const { code } = await gw.exited;
  assert.strictEqual(code, 0, gw.out);
  assert.match(gw.out, /TERM: draining \(nginx QUIT\)/);
  await assert.rejects(fetch(gw.url + '/health/liveliness'));
  assert.deepStrictEqual(gw.problems(), []);
});

test('a value that would add a directive is refused', async () => {
  const bad = new Replica({ dir: path.join(dir, 'bad'), port: gw.port,
    env: { ...gw.env, LLMPROXY_RUN_DIR: path.join(dir, 'bad', 'run'),
           LLMPROXY_METRICS_ALLOW: '10.0.0.0/8; allow all' } });
  bad.start();
  const { code } = await bad.exited;
  assert.notStrictEqual(code, 0);
  assert.match(bad.out, /LLMPROXY_METRICS_ALLOW: '10\.0\.0\.0\/8;' is not an address/);

  const none = new Replica({ dir: path.join(dir, 'none'), port: gw.port,
    env: { ...gw.env, LLMPROXY_RUN_DIR: path.join(dir, 'none', 'run'),
           LLMPROXY_MASTER_KEY_FILE: '' } });
  none.start();
  assert.notStrictEqual((await none.exited).code, 0);
  assert.match(none.out, /no master key/);
});

test('without a database the config goes to the gateway itself',
     async () => {
  const port = await freePort();
  const solo = new Replica({ dir: path.join(dir, 'solo'), port, env: {
    LLMPROXY_MASTER_KEY_FILE: files.llmproxy_master_key,
    LLMPROXY_SALT_KEY_FILE: files.llmproxy_salt_key,
    LLMPROXY_CONFIG_FILE: path.join(dir, 'configs', 'config.json'),
    LLMPROXY_CONFIG_LOCAL_FILE: files.llmproxy_config_local } });
  solo.start();
  try {
    const ready = await solo.ready();
    assert.strictEqual(ready.status, 'ready');
    assert.match(solo.out, /gateway loaded it|applied/);
    assert.ok(!/llmproxy_database/.test(
      fs.readFileSync(path.join(solo.run, 'nginx.conf'), 'utf8')));
    const r = await chat(solo.url, MASTER);
    assert.strictEqual(r.status, 200);
    await r.arrayBuffer();
    assert.strictEqual(mock.requests.at(-1).headers.authorization,
                       'Bearer ' + PROVIDER_KEY);
  } finally {
    assert.strictEqual((await solo.stop()).code, 0, solo.out);
  }
});

test('with arguments it runs a command with the database and keys',
     () => {
  // what the backup service and `docker exec ... llmproxy-entrypoint
  // llmproxyctl key create` do
  const r = spawnSync('bash', [ENTRYPOINT, 'sh', '-c',
    'llmproxyctl key create --alias from-exec >/dev/null && env'],
  { encoding: 'utf8', env: { ...gw.env,
    PATH: path.dirname(CTL) + ':' + process.env.PATH,
    LLMPROXY_RUN_DIR: path.join(dir, 'exec-run') } });
  assert.strictEqual(r.status, 0, r.stderr);
  assert.strictEqual(pg.psql("SELECT count(*) FROM llmproxy_keys"
                             + " WHERE alias = 'from-exec'"), '1');
  assert.match(r.stdout, /^LLMPROXY_DATABASE_URL=postgresql:\/\/llmproxy@[^\n]*passfile=/m);
  assert.match(r.stdout, /^LLMPROXY_SALT_KEY=/m);
  assert.ok(!/^(LLMPROXY_(MASTER_KEY|SALT_KEY|DB_PASSWORD)_FILE|LLMPROXY_DB_PASSWORD)=/m
    .test(r.stdout), r.stdout);
  assert.ok(!r.stdout.includes(DB_PASSWORD));
  assert.ok(!fs.existsSync(path.join(dir, 'exec-run', 'nginx.conf')),
            'no nginx');
});
