'use strict';
// The operator's view through llmproxyctl (issue 14): `status` lists the
// loaded models, deployments (provider, upstream model, weight, cooldown
// left), aliases and fallbacks as text and JSON with the database's state;
// run from a project directory after `make run`, llmproxyctl finds the
// gateway, master key, salt key and database under var/; errors name the
// files given; a sync the gateway refuses exits 2.  Real nginx and
// PostgreSQL; the providers are mocks.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const { startGateway, ROOT, CTL, sleep } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock, freePort } = require('../mocks/openai-mock');

const SALT = 'salt-' + crypto.randomBytes(12).toString('hex');
const SECRET = 'sk-upstream-SECRET-' + crypto.randomBytes(8).toString('hex');
const COOLDOWN = 60;

let pg, gw, good, bad, offline, project;

before(async () => {
  pg = await startPostgres();
  good = await createMock({ name: 'good' });
  bad = await createMock({ name: 'bad', mode: 'fail500' });
  offline = 'http://127.0.0.1:' + await freePort();
  gw = await startGateway({ database: pg.url,
                            nginxEnv: { LLMPROXY_SALT_KEY: SALT } });
  const r = gw.ctl(['migrate']);
  assert.strictEqual(r.status, 0, r.stderr);
  project = fs.mkdtempSync(path.join(os.tmpdir(), 'llmproxy-proj-'));
});

after(async () => {
  const problems = gw ? gw.problems() : [];
  if (gw) await gw.stop();
  for (const m of [good, bad]) if (m) await m.close();
  if (pg) pg.destroy();
  if (project) fs.rmSync(project, { recursive: true, force: true });
  assert.deepStrictEqual(problems, []);
});

function config(extra = {}) {
  return {
    providers: {
      p: { api_base: good.url, interfaces: ['openai'], api_key: SECRET,
           models: { m1: { model: 'up-m1', weight: 2 }, m2: {} } },
      bad: { api_base: bad.url, interfaces: ['openai'],
             models: { flaky: {}, m1: { model: 'up-bad' } } },
      ...(extra.providers || {}),
    },
    aliases: { a: 'm1', quick: 'm2' },
    fallbacks: { flaky: ['m2', 'm1'] },
    settings: { num_retries: 0, allowed_fails: 1,
                cooldown_seconds: COOLDOWN },
  };
}

function noSecret(text, what) {
  for (const s of [SECRET, SALT, gw.masterKey]) {
    assert.ok(!text.includes(s), what + ' printed a secret');
  }
}

// llmproxyctl with only the variables given: nothing of the test's
// environment says where the gateway or the database is
function bareCtl(args, env = {}, cwd = project) {
  const base = { ...process.env };
  for (const k of Object.keys(base)) {
    if (k.startsWith('LLMPROXY_')) delete base[k];
  }
  const r = spawnSync(CTL, args, { cwd, env: { ...base, ...env },
                                   encoding: 'utf8', timeout: 30000 });
  noSecret(r.stdout + r.stderr, 'llmproxyctl ' + args.join(' '));
  return r;
}

const dbVersion = () => Number(pg.psql(
  'SELECT version FROM llmproxy_config_state WHERE id = 1'));

test('status lists models, deployments, aliases, fallbacks and a '
     + 'cooldown with the time left', async () => {
  const s = gw.sync(config(), ['--force', '--prune'],
                    { LLMPROXY_SALT_KEY: SALT });
  assert.strictEqual(s.status, 0, s.stdout + s.stderr);
  assert.match(s.stdout, /^gateway loaded it$/m);

  // one failure cools bad/flaky down; the fallback answers
  const r = await fetch(gw.baseURL + '/chat/completions', {
    method: 'POST',
    headers: { authorization: 'Bearer ' + gw.masterKey,
               'content-type': 'application/json' },
    body: JSON.stringify({ model: 'flaky', messages: [
      { role: 'user', content: 'hi' }] }) });
  assert.strictEqual(r.status, 200, await r.text());
  assert.strictEqual(bad.requests.length, 1);

  const j = gw.ctl(['status', '--json']);
  assert.strictEqual(j.status, 0, j.stderr);
  noSecret(j.stdout, 'status --json');
  const st = JSON.parse(j.stdout);
  assert.strictEqual(st.loaded, true);
  assert.strictEqual(st.database, 'connected');
  assert.strictEqual(st.config_version, dbVersion());
  assert.strictEqual(typeof st.keys, 'number');
  assert.strictEqual(st.models, 3);
  assert.strictEqual(st.fallbacks, 1);

  const models = Object.fromEntries(st.model_list.map((m) => [m.name, m]));
  assert.deepStrictEqual(Object.keys(models).sort(), ['flaky', 'm1', 'm2']);
  assert.deepStrictEqual(models.m1.deployments.sort(), ['bad/m1', 'p/m1']);
  assert.deepStrictEqual(models.flaky.fallbacks, ['m2', 'm1']);
  assert.deepStrictEqual(models.m2.fallbacks, []);

  const deps = Object.fromEntries(st.deployment_list.map((d) => [d.id, d]));
  assert.deepStrictEqual(Object.keys(deps).sort(),
                         ['bad/flaky', 'bad/m1', 'p/m1', 'p/m2']);
  assert.deepStrictEqual(
    { ...deps['p/m1'] },
    { id: 'p/m1', model: 'm1', provider: 'p', upstream_model: 'up-m1',
      weight: 2, cooldown_ms: 0 });
  assert.strictEqual(deps['bad/m1'].upstream_model, 'up-bad');
  assert.ok(deps['bad/flaky'].cooldown_ms > (COOLDOWN - 20) * 1000
            && deps['bad/flaky'].cooldown_ms <= COOLDOWN * 1000,
            'cooldown left: ' + deps['bad/flaky'].cooldown_ms);
  assert.deepStrictEqual(
    st.alias_list.sort((x, y) => x.name.localeCompare(y.name)),
    [{ name: 'a', model: 'm1' }, { name: 'quick', model: 'm2' }]);

  const cd = st.cooldowns.find((c) => c.deployment === 'bad/flaky');
  assert.ok(cd, j.stdout);
  assert.ok(cd.until_ms_from_now > (COOLDOWN - 20) * 1000,
            'until_ms_from_now: ' + cd.until_ms_from_now);

  const t = gw.ctl(['status']);
  assert.strictEqual(t.status, 0, t.stderr);
  noSecret(t.stdout, 'status');
  const out = t.stdout;
  assert.match(out, /^database: +connected$/m);
  assert.match(out, new RegExp(`^version: +${dbVersion()} `, 'm'));
  assert.match(out, /^fallbacks: +1$/m);
  assert.match(out, /^ {2}m1 +(bad\/m1, p\/m1|p\/m1, bad\/m1)$/m);
  assert.match(out, /^ {2}flaky +bad\/flaky$/m);
  assert.match(out, /^ {2}p\/m1 +p +up-m1 +2 +-$/m);
  assert.match(out, /^ {2}bad\/flaky +bad +flaky +1 +[1-9]\d*\.\ds left$/m);
  assert.match(out, /^ {2}a +-> m1$/m);
  assert.match(out, /^ {2}quick +-> m2$/m);
  assert.match(out, /^ {2}flaky -> m2, m1$/m);
  assert.match(out, /^cooldowns: +1$/m);
  assert.match(out, /^ {2}bad\/flaky for [1-9]\d*\.\ds$/m);
  assert.doesNotMatch(out, /-0\.0s/);
});

// var/ as `make run` writes it, from scripts/run.sh itself
function makeRunVar() {
  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.startsWith('LLMPROXY_')) delete env[k];
  }
  const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'run.sh'),
                               '--config-only'], {
    encoding: 'utf8',
    env: { ...env, LLMPROXY_VAR: path.join(project, 'var'),
           LLMPROXY_LISTEN: `127.0.0.1:${gw.port}`,
           LLMPROXY_PG_PORT: String(pg.port),
           LLMPROXY_MASTER_KEY: gw.masterKey, LLMPROXY_SALT_KEY: SALT } });
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  const conf = fs.readFileSync(path.join(project, 'var', 'nginx.conf'),
                               'utf8');
  assert.ok(conf.includes(`llmproxy_database ${pg.url};`), conf);
}

test('from a project directory after make run: var/ gives the gateway, '
     + 'master key, salt key and database', async () => {
  makeRunVar();
  const file = path.join(project, 'configs', 'config.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const cfg = config();
  cfg.aliases.fromvar = 'm2';
  fs.writeFileSync(file, JSON.stringify(cfg));

  // the case: the database given, the salt key only in var/
  let r = bareCtl(['sync', '--force', '--dry-run'],
                  { LLMPROXY_DATABASE_URL: pg.url });
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  assert.doesNotMatch(r.stderr, /LLMPROXY_SALT_KEY must be set/);

  // nothing given: configs/config.json, the database and gateway of var/
  r = bareCtl(['sync', '--force']);
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^\+ alias fromvar$/m);
  assert.match(r.stdout, /^applied \(config version \d+\)$/m);
  assert.match(r.stdout, /^gateway loaded it$/m);
  assert.strictEqual(pg.psql("SELECT data FROM llmproxy_config_entries "
                             + "WHERE kind = 'aliases' AND name = 'fromvar'"),
                     '"m2"');

  r = bareCtl(['status', '--json']);
  assert.strictEqual(r.status, 0, r.stderr);
  const st = JSON.parse(r.stdout);
  assert.ok(st.alias_list.some((a) => a.name === 'fromvar'), r.stdout);

  r = bareCtl(['key', 'create', '--alias', 'from-var']);
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  assert.strictEqual(pg.psql("SELECT count(*) FROM llmproxy_keys "
                             + "WHERE alias = 'from-var'"), '1');

  // a listen address for every interface is reached on 127.0.0.1
  const conf = path.join(project, 'var', 'nginx.conf');
  const text = fs.readFileSync(conf, 'utf8');
  for (const listen of [`*:${gw.port}`, `0.0.0.0:${gw.port} reuseport`,
                        String(gw.port)]) {
    fs.writeFileSync(conf, text.replace(/listen [^;]*;/,
                                        `listen ${listen};`));
    r = bareCtl(['status']);
    assert.strictEqual(r.status, 0, listen + ': ' + r.stdout + r.stderr);
  }
  fs.writeFileSync(conf, text);

  // flags and the environment still win over var/
  r = bareCtl(['status', '--gateway', offline]);
  assert.strictEqual(r.status, 2, r.stdout + r.stderr);
  r = bareCtl(['status'], { LLMPROXY_GATEWAY_URL: offline });
  assert.strictEqual(r.status, 2, r.stdout + r.stderr);
  r = bareCtl(['status'], { LLMPROXY_MASTER_KEY: 'sk-wrong' });
  assert.strictEqual(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /401/);
  r = bareCtl(['key', 'list'], { LLMPROXY_DATABASE_URL:
    `postgresql://postgres@127.0.0.1:${await freePort()}/llmproxy` });
  assert.strictEqual(r.status, 2, r.stdout + r.stderr);
  // an empty variable says "none": the salt key of var/ is not used
  cfg.providers.p.api_key = 'sk-changed';
  fs.writeFileSync(file, JSON.stringify(cfg));
  r = bareCtl(['sync', '--force', '--dry-run'], { LLMPROXY_SALT_KEY: '' });
  assert.strictEqual(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /^providers\.p\.api_key: LLMPROXY_SALT_KEY must/m);
  r = bareCtl(['sync', '--force', '--dry-run']);
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^~ credential p$/m);
  r = bareCtl(['sync', '--force', '--dry-run', '-c', file],
              { LLMPROXY_SALT_KEY: '' },
              os.tmpdir());
  assert.notStrictEqual(r.status, 0, 'no var/ here: no database, no key');
});

test('errors name the files given', () => {
  const dir = path.join(project, 'sub');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join('sub', 'x.json');
  fs.writeFileSync(path.join(project, file), '{\n  "providers": {,\n}\n');
  let r = bareCtl(['sync', '-c', file]);
  assert.strictEqual(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /^sub\/x\.json: invalid JSON near line 2$/m);
  assert.doesNotMatch(r.stderr, /^config\.json/m);
  assert.match(r.stderr, /problem in sub\/x\.json: nothing applied/);

  fs.writeFileSync(path.join(project, file), JSON.stringify(config()));
  fs.writeFileSync(path.join(dir, 'config.local.json'), '[1, 2');
  r = bareCtl(['sync', '-c', file]);
  assert.strictEqual(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr,
               /^sub\/config\.local\.json: invalid JSON near line 1$/m);
  assert.doesNotMatch(r.stderr, /^config\.local\.json/m);
});

test('a sync the gateway does not load exits 2 and says why', async () => {
  // the gateway answers an error: stored, but not known to be loaded
  let r = gw.sync(config({ providers: { extra: { api_base: good.url,
    interfaces: ['openai'], models: { e1: {} } } } }), ['--force'],
                  { LLMPROXY_SALT_KEY: SALT, LLMPROXY_MASTER_KEY: 'sk-no' });
  assert.strictEqual(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stdout, /^applied \(config version \d+\)$/m);
  assert.match(r.stderr, /gateway at http:\/\/127\.0\.0\.1:\d+ answered HTTP 401/);

  // a provider key sealed with another salt: the gateway cannot decrypt
  // it and keeps its last good config
  const t0 = Date.now();
  r = gw.sync(config({ providers: { other: { api_base: good.url,
    interfaces: ['openai'], api_key: 'sk-other', models: { o1: {} } } } }),
              ['--force'], { LLMPROXY_SALT_KEY: 'not-the-gateways-salt' });
  assert.strictEqual(r.status, 2, r.stdout + r.stderr);
  const v = dbVersion();
  assert.match(r.stdout, new RegExp(`^applied \\(config version ${v}\\)$`,
                                    'm'));
  assert.match(r.stderr, new RegExp(`refused config version ${v} and `
                                    + 'serves its last good config'));
  assert.ok(Date.now() - t0 < 9000, 'told before the wait ran out');
  await sleep(10);
  const st = JSON.parse(gw.ctl(['status', '--json']).stdout);
  assert.strictEqual(st.config_version, v);
  assert.ok(!st.model_list.some((m) => m.name === 'o1'));
  assert.match(gw.errorLog(), new RegExp(`stored config version ${v} not `
                                         + 'loaded'));
});
