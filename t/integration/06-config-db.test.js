'use strict';
// The config in PostgreSQL (SPEC §3): with a database, `llmproxyctl sync`
// stores the compiled config in llmproxy_config_entries, provider keys
// encrypted with LLMPROXY_SALT_KEY, with the same plan semantics as
// against a gateway; gateways sharing the database load it themselves,
// also after a restart with an empty state directory.  Rotating the salt
// key needs no manual step: sync encrypts again what another key
// encrypted.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { startGateway, sleep } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock, freePort } = require('../mocks/openai-mock');

const SALT = 'salt-' + crypto.randomBytes(12).toString('hex');
const SECRET = 'sk-upstream-SECRET-' + crypto.randomBytes(8).toString('hex');
const SECRET2 = 'sk-upstream-OTHER-' + crypto.randomBytes(8).toString('hex');
const SALT_B = 'salt-b-' + crypto.randomBytes(12).toString('hex');
const HSECRET = 'hdr-SECRET-' + crypto.randomBytes(8).toString('hex');

let pg, gw, mock, offline;

before(async () => {
  pg = await startPostgres();
  mock = await createMock({ name: 'db' });
  offline = 'http://127.0.0.1:' + await freePort();
  gw = await startGateway({ database: pg.url,
                            nginxEnv: { LLMPROXY_SALT_KEY: SALT } });
  const r = gw.ctl(['migrate']);
  assert.strictEqual(r.status, 0, r.stderr);
});

after(async () => {
  const problems = gw ? gw.problems() : [];
  if (gw) await gw.stop();
  if (mock) await mock.close();
  if (pg) pg.destroy();
  assert.deepStrictEqual(problems, []);
});

const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

function config(over = {}) {
  return {
    providers: {
      p: { api_base: mock.url, interfaces: ['openai'], api_key: SECRET,
           models: { m1: { input_cost_per_million: 1.25 }, m2: {} } },
      ...(over.providers || {}),
    },
    aliases: over.aliases || { a: 'm1' },
    fallbacks: over.fallbacks || { m1: ['m2'] },
    settings: over.settings || { num_retries: 1 },
  };
}

// sync against the database only: no gateway answers at this address
function sync(cfg, args = [], env = {}) {
  const r = gw.sync(cfg, args, { LLMPROXY_SALT_KEY: SALT,
                                 LLMPROXY_GATEWAY_URL: offline, ...env });
  for (const s of [SECRET, SECRET2, SALT, SALT_B, HSECRET]) {
    assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s),
              'llmproxyctl printed a secret');
  }
  return r;
}

function ok(r) {
  assert.strictEqual(r.status, 0, 'exit ' + r.status + ': ' + r.stdout
                     + r.stderr);
  return r;
}

const version = () => Number(pg.psql(
  'SELECT version FROM llmproxy_config_state WHERE id = 1'));

const rows = () => pg.psql(
  "SELECT kind || ' ' || name FROM llmproxy_config_entries"
  + ' ORDER BY kind, name').split('\n').filter(Boolean);

const data = (kind, name) => JSON.parse(pg.psql(
  'SELECT data::text FROM llmproxy_config_entries'
  + ` WHERE kind = '${kind}' AND name = '${name}'`) || 'null');

const keyEnc = (name) => pg.psql(
  'SELECT coalesce(api_key_enc, \'NULL\') FROM llmproxy_config_entries'
  + ` WHERE kind = 'credentials' AND name = '${name}'`);

test('sync stores one row per entry, the provider key only encrypted', () => {
  assert.strictEqual(rows().length, 0);
  const v0 = version();

  const r = ok(sync(config()));
  assert.match(r.stdout, /^\+ credential p$/m);
  assert.match(r.stdout, /^\+ model p\/m1$/m);
  assert.match(r.stdout, /6 to create, 0 to change, 0 to remove, 0 unchanged/);
  const m = r.stdout.match(/^applied \(config version (\d+)\)$/m);
  assert.ok(m, r.stdout);
  assert.strictEqual(Number(m[1]), version());
  assert.ok(version() > v0);
  assert.match(r.stdout, /^note: .*gateway/m);

  assert.deepStrictEqual(rows(), ['aliases a', 'credentials p',
    'fallbacks m1', 'models p/m1', 'models p/m2', 'settings settings']);

  const p = data('credentials', 'p');
  assert.strictEqual(p.name, 'p');
  assert.strictEqual(p.api_base, mock.url);
  assert.strictEqual(p.api_key, undefined);
  assert.strictEqual(p.api_key_sha256, sha256(SECRET));
  assert.match(keyEnc('p'), /^v1:[A-Za-z0-9+/=]+$/);

  const d = data('models', 'p/m1');
  assert.strictEqual(d.id, 'p/m1');
  assert.strictEqual(d.provider, 'p');
  assert.strictEqual(d.input_cost_per_million, 1.25);
  assert.strictEqual(data('aliases', 'a'), 'm1');
  assert.deepStrictEqual(data('fallbacks', 'm1'), ['m2']);
  assert.strictEqual(data('settings', 'settings').num_retries, 1);

  assert.match(pg.psql('SELECT config_sha256 FROM llmproxy_config_state'),
               /^[0-9a-f]{64}$/);

  // the key is nowhere in the database in plain text
  const all = pg.psql('SELECT t::text FROM llmproxy_config_entries t');
  assert.ok(all.includes('v1:'));
  assert.ok(!all.includes(SECRET), 'plain provider key in the database');
  assert.ok(!all.includes(SALT));
  const dump = pg.psql('SELECT string_agg(t::text, \' \') FROM'
                       + ' llmproxy_config_state t');
  assert.ok(!dump.includes(SECRET) && !dump.includes(SALT));
});

test('a second sync: all =, nothing to apply, version unchanged', () => {
  const v = version();
  const sha = pg.psql('SELECT config_sha256 FROM llmproxy_config_state');
  const enc = keyEnc('p');
  const r = ok(sync(config(), ['--force', '--prune']));
  assert.doesNotMatch(r.stdout, /^[+~-] /m);
  assert.match(r.stdout, /^= credential p$/m);
  assert.match(r.stdout, /^= settings$/m);
  assert.match(r.stdout, /0 to create, 0 to change, 0 to remove, 6 unchanged/);
  assert.match(r.stdout, /^nothing to apply$/m);
  assert.doesNotMatch(r.stdout, /applied \(/);
  assert.strictEqual(version(), v);
  assert.strictEqual(pg.psql('SELECT config_sha256 FROM llmproxy_config_state'),
                     sha);
  assert.strictEqual(keyEnc('p'), enc);
});

test('--dry-run prints the plan and changes nothing', () => {
  const v = version();
  const before = pg.psql('SELECT string_agg(t::text, \' \' ORDER BY kind,'
                         + ' name) FROM llmproxy_config_entries t');
  const cfg = config({ aliases: { a: 'm2', b: 'm1' }, fallbacks: {} });
  const r = ok(sync(cfg, ['--dry-run', '--force', '--prune']));
  assert.match(r.stdout, /^~ alias a$/m);
  assert.match(r.stdout, /^\+ alias b$/m);
  assert.match(r.stdout, /^- fallback m1$/m);
  assert.match(r.stdout, /dry run: nothing applied/);
  assert.strictEqual(version(), v);
  assert.strictEqual(pg.psql('SELECT string_agg(t::text, \' \' ORDER BY'
                             + ' kind, name) FROM llmproxy_config_entries t'),
                     before);
});

test('a changed entry is kept without --force, updated with it', () => {
  const cfg = config({ aliases: { a: 'm2' } });
  let v = version();
  let r = ok(sync(cfg));
  assert.match(r.stdout, /^~ alias a \(changed; use --force to update\)$/m);
  assert.match(r.stdout, /1 changed entry kept as stored/);
  assert.match(r.stdout, /^nothing to apply$/m);
  assert.strictEqual(data('aliases', 'a'), 'm1');
  assert.strictEqual(version(), v);

  const enc = keyEnc('p');
  r = ok(sync(cfg, ['--force']));
  assert.match(r.stdout, /^~ alias a$/m);
  assert.match(r.stdout, /0 to create, 1 to change, 0 to remove, 5 unchanged/);
  assert.strictEqual(data('aliases', 'a'), 'm2');
  assert.ok(version() > v);
  assert.strictEqual(keyEnc('p'), enc, 'a kept provider keeps its key');
  const m = r.stdout.match(/applied \(config version (\d+)\)/);
  assert.strictEqual(Number(m[1]), version());
});

test('--only limits the kinds, --prune removes what the config lacks',
  () => {
    const cfg = config({ aliases: { a: 'm2', b: 'm1' }, fallbacks: {},
                         settings: { num_retries: 2 } });
    let v = version();

    // --only aliases: the new alias only; fallbacks and settings untouched
    let r = ok(sync(cfg, ['--only', 'aliases', '--force', '--prune']));
    assert.match(r.stdout, /^\+ alias b$/m);
    assert.doesNotMatch(r.stdout, /fallback|settings/);
    assert.match(r.stdout, /1 to create, 0 to change, 0 to remove/);
    assert.deepStrictEqual(data('fallbacks', 'm1'), ['m2']);
    assert.strictEqual(data('settings', 'settings').num_retries, 1);
    assert.strictEqual(data('aliases', 'b'), 'm1');
    assert.ok(version() > v);

    // without --prune the stored fallback stays
    v = version();
    r = ok(sync(cfg, ['--only', 'fallbacks']));
    assert.match(r.stdout,
                 /^= fallback m1 \(not in config, kept; --prune removes\)$/m);
    assert.match(r.stdout, /^nothing to apply$/m);
    assert.strictEqual(version(), v);
    assert.ok(rows().includes('fallbacks m1'));

    // --prune --only fallbacks: removed; settings still as stored
    r = ok(sync(cfg, ['--only', 'fallbacks', '--prune']));
    assert.match(r.stdout, /^- fallback m1$/m);
    assert.match(r.stdout, /0 to create, 0 to change, 1 to remove/);
    assert.ok(!rows().includes('fallbacks m1'));
    assert.strictEqual(data('settings', 'settings').num_retries, 1);
    assert.ok(version() > v);

    // --force --only settings
    r = ok(sync(cfg, ['--only', 'settings', '--force']));
    assert.match(r.stdout, /^~ settings$/m);
    assert.strictEqual(data('settings', 'settings').num_retries, 2);

    // a removed provider goes with --prune, with its deployments
    v = version();
    const two = config({ aliases: { a: 'm2', b: 'm1' }, fallbacks: {},
                         settings: { num_retries: 2 },
                         providers: { q: { api_base: mock.url,
                                           interfaces: ['openai'],
                                           models: { m1: {} } } } });
    r = ok(sync(two));
    assert.match(r.stdout, /^\+ credential q$/m);
    assert.match(r.stdout, /^\+ model q\/m1$/m);
    assert.strictEqual(keyEnc('q'), 'NULL');
    r = ok(sync(cfg, ['--prune']));
    assert.match(r.stdout, /^- credential q$/m);
    assert.match(r.stdout, /^- model q\/m1$/m);
    assert.ok(!rows().includes('credentials q'));
    assert.ok(!rows().includes('models q/m1'));
    assert.ok(version() > v);
  });

test('a new provider key is encrypted again; kept without --force', () => {
  const base = config({ aliases: { a: 'm2', b: 'm1' }, fallbacks: {},
                        settings: { num_retries: 2 } });
  const cfg = JSON.parse(JSON.stringify(base));
  cfg.providers.p.api_key = SECRET2;
  const enc = keyEnc('p');
  const v = version();

  let r = ok(sync(cfg));
  assert.match(r.stdout, /^~ credential p \(changed; use --force/m);
  assert.match(r.stderr, /credential p: .*keeps its stored api_key/);
  assert.strictEqual(keyEnc('p'), enc);
  assert.strictEqual(version(), v);

  r = ok(sync(cfg, ['--force']));
  assert.match(r.stdout, /^~ credential p$/m);
  assert.notStrictEqual(keyEnc('p'), enc);
  assert.match(keyEnc('p'), /^v1:/);
  assert.strictEqual(data('credentials', 'p').api_key_sha256,
                     sha256(SECRET2));
  const all = pg.psql('SELECT t::text FROM llmproxy_config_entries t');
  assert.ok(!all.includes(SECRET2) && !all.includes(SECRET));

  // back to the first key for the gateway tests below
  ok(sync(base, ['--force']));
  assert.strictEqual(data('credentials', 'p').api_key_sha256,
                     sha256(SECRET));
});

test('a provider key without LLMPROXY_SALT_KEY is refused', () => {
  const v = version();
  const before = rows();
  const cfg = config({ providers: { k: { api_base: mock.url,
                                         interfaces: ['openai'],
                                         api_key: SECRET2,
                                         models: { m9: {} } } } });
  for (const salt of [{ LLMPROXY_SALT_KEY: '' }, {}]) {
    const env = { ...salt };
    if (!('LLMPROXY_SALT_KEY' in env)) env.LLMPROXY_SALT_KEY = undefined;
    const r = sync(cfg, ['--force', '--prune'], env);
    assert.strictEqual(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /^providers\.k\.api_key: LLMPROXY_SALT_KEY must be set to store provider keys$/m);
    assert.match(r.stderr, /nothing applied/);
    assert.doesNotMatch(r.stdout, /applied \(/);
    assert.strictEqual(version(), v);
    assert.deepStrictEqual(rows(), before);
  }

  // entries without a new key need no salt key
  const r = ok(sync(config({ aliases: { a: 'm2', b: 'm1', c: 'm2' },
                             fallbacks: {}, settings: { num_retries: 2 } }),
                    [], { LLMPROXY_SALT_KEY: '' }));
  assert.match(r.stdout, /^\+ alias c$/m);
  assert.strictEqual(data('aliases', 'c'), 'm2');
});

test('an invalid config: every problem listed, nothing stored', () => {
  const v = version();
  const cfg = config();
  cfg.providers.p.bogus = 1;
  cfg.aliases = { z: 5 };
  const r = sync(cfg, ['--force', '--prune']);
  assert.strictEqual(r.status, 1);
  assert.match(r.stderr, /^providers\.p\.bogus: /m);
  assert.match(r.stderr, /^aliases\.z: /m);
  assert.match(r.stderr, /nothing applied/);
  assert.strictEqual(version(), v);
});

// gateway side: the module loads the config from the database

async function serves(model, ms = 5000) {
  const t0 = Date.now();
  let last = '';
  while (Date.now() - t0 < ms) {
    try {
      const res = await fetch(gw.baseURL + '/chat/completions', {
        method: 'POST',
        headers: { authorization: 'Bearer ' + gw.masterKey,
                   'content-type': 'application/json' },
        body: JSON.stringify({ model, messages: [{ role: 'user',
                                                   content: 'hi' }] }),
      });
      last = res.status + ' ' + await res.text();
      if (res.status === 200) return Date.now() - t0;
    } catch (e) { last = e.message; }
    await sleep(100);
  }
  throw new Error(`${model} not served within ${ms} ms (last: ${last})\n`
                  + gw.errorLog().split('\n').slice(-20).join('\n'));
}

test('a gateway sharing the database serves a model only in the DB',
  async () => {
    const cfg = config({ aliases: { a: 'm2' }, fallbacks: {},
                         settings: { num_retries: 2 } });
    cfg.providers.p.models['db-only'] = {};

    // the real gateway address: sync waits until it reports the digest
    const r = gw.sync(cfg, ['--force', '--prune'],
                      { LLMPROXY_SALT_KEY: SALT });
    ok(r);
    assert.match(r.stdout, /^\+ model p\/db-only$/m);

    mock.reset();
    await serves('db-only');
    const req = mock.requests.find((q) => q.body && q.body.model
                                   === 'db-only');
    assert.ok(req, 'the mock got the request');
    assert.strictEqual(req.headers.authorization, 'Bearer ' + SECRET,
                       'the gateway decrypted the provider key');
    assert.match(r.stdout, /^gateway loaded it$/m);

    const st = await (await fetch(gw.url + '/llmproxy/admin/status', {
      headers: { authorization: 'Bearer ' + gw.masterKey } })).json();
    assert.strictEqual(st.config_sha256, pg.psql(
      'SELECT config_sha256 FROM llmproxy_config_state'));
  });

test('a gateway restarted with an empty state dir loads it again',
  async () => {
    await gw.stop({ keep: true });
    const state = path.join(gw.dir, 'state');
    fs.rmSync(state, { recursive: true, force: true });
    fs.mkdirSync(state);
    await gw.start();
    await serves('db-only');
  });

test('the saved config keeps provider keys encrypted, and loads alone',
  async () => {
    const file = path.join(gw.dir, 'state', 'config.json');
    let saved = '';
    for (let i = 0; i < 50 && !saved.includes('api_key_enc'); i++) {
      await sleep(100);
      try { saved = fs.readFileSync(file, 'utf8'); } catch (e) { /* yet */ }
    }
    assert.match(saved, /"api_key_enc":"v1:/);
    assert.ok(!saved.includes(SECRET), 'no provider key in plain text');

    // with the database down, a restart serves from the saved config,
    // its keys decrypted with the gateway's salt key
    await gw.stop({ keep: true });
    pg.stop();
    try {
      await gw.start();
      mock.reset();
      await serves('db-only');
      const req = mock.requests.find((q) => q.body
                                     && q.body.model === 'db-only');
      assert.strictEqual(req.headers.authorization, 'Bearer ' + SECRET);
    } finally {
      pg.start();
    }
  });

// rotating LLMPROXY_SALT_KEY: each stored provider records its salt key's
// id (salt_key_id); a sync with another salt key encrypts the secrets
// again without --force, and a gateway with the new key serves

const saltId = (name) => pg.psql(
  "SELECT coalesce(salt_key_id, 'NULL') FROM llmproxy_config_entries"
  + ` WHERE kind = 'credentials' AND name = '${name}'`);

const headersEnc = (name) => pg.psql(
  "SELECT coalesce(headers_enc, 'NULL') FROM llmproxy_config_entries"
  + ` WHERE kind = 'credentials' AND name = '${name}'`);

function rotationConfig() {
  const cfg = config({ aliases: { a: 'm2' }, fallbacks: {},
                       settings: { num_retries: 2 } });
  cfg.providers.p.models['db-only'] = {};
  cfg.providers.p.headers = { 'X-Upstream-Token': HSECRET };
  return cfg;
}

async function restartWithSalt(salt) {
  await gw.stop({ keep: true });
  const state = path.join(gw.dir, 'state');
  fs.rmSync(state, { recursive: true, force: true });
  fs.mkdirSync(state);
  gw.nginxEnv = { LLMPROXY_SALT_KEY: salt };
  await gw.start();
}

function noSecretIn(text, what) {
  for (const s of [SECRET, SECRET2, SALT, SALT_B, HSECRET]) {
    assert.ok(!text.includes(s), 'a secret in ' + what);
  }
}

test('a new salt key: sync encrypts the stored secrets again, no --force',
  async () => {
    const cfg = rotationConfig();
    ok(sync(cfg, ['--force', '--prune']));
    const idA = saltId('p');
    assert.match(idA, /^[0-9a-f]{16}$/);
    assert.ok(!sha256(SALT).includes(idA), 'the id is not the AES key');
    const enc = keyEnc('p');
    const henc = headersEnc('p');
    assert.match(henc, /^v1:/);

    const v = version();
    let r = ok(sync(cfg, ['--dry-run'], { LLMPROXY_SALT_KEY: SALT_B }));
    assert.match(r.stdout,
                 /^~ credential p \(re-encrypted: salt key changed\)$/m);
    assert.match(r.stdout, /^dry run: nothing applied$/m);
    assert.strictEqual(keyEnc('p'), enc);
    assert.strictEqual(version(), v);

    r = ok(sync(cfg, [], { LLMPROXY_SALT_KEY: SALT_B }));
    assert.match(r.stdout,
                 /^~ credential p \(re-encrypted: salt key changed\)$/m);
    assert.match(r.stdout, /^0 to create, 0 to change, 0 to remove, /m);
    assert.match(r.stdout, /^1 provider re-encrypted with the current salt key/m);
    assert.match(r.stdout, /^applied \(config version \d+\)$/m);
    assert.ok(version() > v);
    assert.notStrictEqual(keyEnc('p'), enc, 'api_key_enc unchanged');
    assert.notStrictEqual(headersEnc('p'), henc, 'headers_enc unchanged');
    assert.match(keyEnc('p'), /^v1:/);
    assert.match(saltId('p'), /^[0-9a-f]{16}$/);
    assert.notStrictEqual(saltId('p'), idA);
    assert.strictEqual(data('credentials', 'p').api_key_sha256,
                       sha256(SECRET));
    noSecretIn(pg.psql('SELECT string_agg(t::text, \' \') FROM'
                       + ' llmproxy_config_entries t'), 'the database');

    // done once: the next sync with the same key has nothing to apply
    const v2 = version();
    r = ok(sync(cfg, [], { LLMPROXY_SALT_KEY: SALT_B }));
    assert.match(r.stdout, /^nothing to apply$/m);
    assert.doesNotMatch(r.stdout, /re-encrypted/);
    assert.strictEqual(version(), v2);

    // a gateway started with the new salt key decrypts both secrets
    await restartWithSalt(SALT_B);
    mock.reset();
    await serves('db-only');
    const req = mock.requests.find((q) => q.body
                                   && q.body.model === 'db-only');
    assert.ok(req, 'the mock got the request');
    assert.strictEqual(req.headers.authorization, 'Bearer ' + SECRET);
    assert.strictEqual(req.headers['x-upstream-token'], HSECRET);
    noSecretIn(gw.errorLog(), 'the error log');
  });

test('rows stored before salt key ids: encrypted again only if needed',
  () => {
    const cfg = rotationConfig();
    pg.psql("UPDATE llmproxy_config_entries SET salt_key_id = NULL"
            + " WHERE kind = 'credentials'");
    const enc = keyEnc('p');

    // the current key decrypts them: nothing to do
    let r = ok(sync(cfg, [], { LLMPROXY_SALT_KEY: SALT_B }));
    assert.match(r.stdout, /^nothing to apply$/m);
    assert.strictEqual(keyEnc('p'), enc);

    // another key does not: encrypted again, its id recorded
    r = ok(sync(cfg, [], { LLMPROXY_SALT_KEY: SALT }));
    assert.match(r.stdout,
                 /^~ credential p \(re-encrypted: salt key changed\)$/m);
    assert.notStrictEqual(keyEnc('p'), enc);
    assert.match(saltId('p'), /^[0-9a-f]{16}$/);

    r = ok(sync(cfg, [], { LLMPROXY_SALT_KEY: SALT_B }));
    assert.match(r.stdout, /^~ credential p \(re-encrypted/m);
  });

test('a stale provider sync has no key for: refused until --force/--prune',
  async () => {
    const cfg = rotationConfig();
    const withQ = rotationConfig();
    withQ.providers.q = { api_base: mock.url, interfaces: ['openai'],
                          api_key: SECRET2, models: { mq: {} } };
    ok(sync(withQ, ['--force', '--prune'], { LLMPROXY_SALT_KEY: SALT }));

    // q is not in the config: its key cannot be encrypted again
    const v = version();
    let r = sync(cfg, [], { LLMPROXY_SALT_KEY: SALT_B });
    assert.strictEqual(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /^providers\.q\.api_key: stored encrypted with another salt key/m);
    assert.match(r.stderr, /nothing applied/);
    assert.strictEqual(version(), v);

    // nor when the config has another key for it, without --force
    const otherQ = JSON.parse(JSON.stringify(withQ));
    otherQ.providers.q.api_key = SECRET2 + 'x';
    r = sync(otherQ, [], { LLMPROXY_SALT_KEY: SALT_B });
    assert.strictEqual(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /^providers\.q\.api_key: stored encrypted with another salt key/m);
    assert.strictEqual(version(), v);

    r = ok(sync(cfg, ['--prune'], { LLMPROXY_SALT_KEY: SALT_B }));
    assert.match(r.stdout, /^- credential q$/m);
    assert.match(r.stdout, /^~ credential p \(re-encrypted/m);

    // the gateway (salt key B) refused the versions salt key A wrote and
    // loads this one
    const want = pg.psql('SELECT config_sha256 FROM llmproxy_config_state');
    let st = {};
    for (let i = 0; i < 50 && st.config_sha256 !== want; i++) {
      await sleep(100);
      st = await (await fetch(gw.url + '/llmproxy/admin/status', {
        headers: { authorization: 'Bearer ' + gw.masterKey } })).json();
    }
    assert.strictEqual(st.config_sha256, want);
    mock.reset();
    await serves('db-only');
    const req = mock.requests.find((q) => q.body
                                   && q.body.model === 'db-only');
    assert.strictEqual(req.headers.authorization, 'Bearer ' + SECRET);
  });
