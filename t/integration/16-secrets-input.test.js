'use strict';
// Secrets and input (issue 11): a provider's `headers` (an Authorization,
// say) are secrets like its api_key: encrypted with LLMPROXY_SALT_KEY in
// the database row and the state file, never in the admin config output,
// `status` or sync's output, and still sent upstream.  llmproxyctl refuses
// key options that would widen a key or that the database would refuse
// (exit 1, a clear message, the key table unchanged); the admin API
// refuses header injection.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const { startGateway, sleep } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock } = require('../mocks/openai-mock');

const SALT = 'salt-' + crypto.randomBytes(12).toString('hex');
const SECRET = 'upstream-secret-' + crypto.randomBytes(8).toString('hex');
const SECRET2 = 'upstream-other-' + crypto.randomBytes(8).toString('hex');
const SECRETS = [SECRET, SECRET2, SALT];

let pg, gw, mock;

before(async () => {
  pg = await startPostgres();
  mock = await createMock({ name: 'sec' });
  gw = await startGateway({ database: pg.url, workers: 1,
                            nginxEnv: { LLMPROXY_SALT_KEY: SALT } });
  const r = gw.ctl(['migrate']);
  assert.strictEqual(r.status, 0, r.stderr);
});

after(async () => {
  const problems = gw ? gw.problems() : [];
  const log = gw ? gw.errorLog() : '';
  if (gw) await gw.stop();
  if (mock) await mock.close();
  if (pg) pg.destroy();
  assert.deepStrictEqual(problems, []);
  for (const s of SECRETS) {
    assert.ok(!log.includes(s), 'a secret in the error log');
  }
});

function config(secret = SECRET, extra = {}) {
  return {
    providers: {
      h: { api_base: mock.url, interfaces: ['openai'],
           headers: { Authorization: 'Bearer ' + secret, 'X-Team': 'blue' },
           models: { hm: {} } },
      ...extra,
    },
  };
}

function noSecret(text, where) {
  for (const s of SECRETS) {
    assert.ok(!text.includes(s), `${where} shows a secret: ${text}`);
  }
}

// sync with the database; checks that it printed no secret
function sync(cfg, args = [], env = {}) {
  const r = gw.sync(cfg, args, { LLMPROXY_SALT_KEY: SALT, ...env });
  noSecret(r.stdout + r.stderr, 'llmproxyctl sync');
  return r;
}

function ok(r) {
  assert.strictEqual(r.status, 0, 'exit ' + r.status + ': ' + r.stdout
                     + r.stderr);
  return r;
}

const row = (name) => pg.psql(
  'SELECT t::text FROM llmproxy_config_entries t'
  + ` WHERE kind = 'credentials' AND name = '${name}'`);
const data = (name) => JSON.parse(pg.psql(
  'SELECT data::text FROM llmproxy_config_entries'
  + ` WHERE kind = 'credentials' AND name = '${name}'`) || 'null');
const headersEnc = (name) => pg.psql(
  "SELECT coalesce(headers_enc, 'NULL') FROM llmproxy_config_entries"
  + ` WHERE kind = 'credentials' AND name = '${name}'`);
const version = () => Number(pg.psql(
  'SELECT version FROM llmproxy_config_state WHERE id = 1'));

async function admin(gateway, what) {
  const res = await fetch(gateway.url + '/llmproxy/admin/' + what, {
    headers: { authorization: 'Bearer ' + gateway.masterKey } });
  return { status: res.status, text: await res.text() };
}

// the Authorization the mock got for a request to model, once it is want
async function upstreamAuth(gateway, model, want, ms = 5000) {
  const t0 = Date.now();
  let last = '';
  while (Date.now() - t0 < ms) {
    mock.reset();
    try {
      const res = await fetch(gateway.baseURL + '/chat/completions', {
        method: 'POST',
        headers: { authorization: 'Bearer ' + gateway.masterKey,
                   'content-type': 'application/json' },
        body: JSON.stringify({ model, messages: [{ role: 'user',
                                                   content: 'hi' }] }),
      });
      last = res.status + ' ' + await res.text();
      const req = mock.requests.find((q) => q.body && q.body.model === model);
      if (res.status === 200 && req) {
        if (req.headers.authorization === want) return req.headers;
        last = 'authorization ' + req.headers.authorization;
      }
    } catch (e) { last = e.message; }
    await sleep(100);
  }
  throw new Error(`${model} not served within ${ms} ms (last: ${last})`);
}

test('sync stores provider headers encrypted, the gateway sends them',
  async () => {
    const r = ok(gw.sync(config(), ['--force', '--prune'],
                         { LLMPROXY_SALT_KEY: SALT }));
    noSecret(r.stdout + r.stderr, 'llmproxyctl sync');
    assert.match(r.stdout, /^\+ credential h$/m);

    // the database row: digest and ciphertext only
    noSecret(row('h'), 'the database row');
    const d = data('h');
    assert.strictEqual(d.headers, undefined, JSON.stringify(d));
    assert.match(d.headers_sha256, /^[0-9a-f]{64}$/);
    assert.match(headersEnc('h'), /^v1:[A-Za-z0-9+/=]+$/);
    noSecret(pg.psql('SELECT string_agg(t::text, \' \') FROM'
                     + ' llmproxy_config_state t'), 'the config state');

    // decrypted by the gateway and sent upstream
    const h = await upstreamAuth(gw, 'hm', 'Bearer ' + SECRET);
    assert.strictEqual(h.authorization, 'Bearer ' + SECRET);
    assert.strictEqual(h['x-team'], 'blue');
    assert.match(r.stdout, /^gateway loaded it$/m);
  });

test('the state file keeps the headers encrypted', async () => {
  const file = path.join(gw.dir, 'state', 'config.json');
  let saved = '';
  for (let i = 0; i < 50 && !saved.includes('headers_enc'); i++) {
    try { saved = fs.readFileSync(file, 'utf8'); } catch (e) { /* yet */ }
    if (!saved.includes('headers_enc')) await sleep(100);
  }
  assert.match(saved, /"headers_enc":"v1:/);
  noSecret(saved, 'the state file');
  assert.ok(!saved.includes('X-Team'), 'header names in plain text');
});

test('neither the admin config output nor status shows them', async () => {
  const cfg = await admin(gw, 'config');
  assert.strictEqual(cfg.status, 200, cfg.text);
  noSecret(cfg.text, 'GET /llmproxy/admin/config');
  const p = JSON.parse(cfg.text).providers.find((q) => q.name === 'h');
  assert.strictEqual(p.headers, undefined);
  assert.strictEqual(p.headers_sha256, data('h').headers_sha256);

  const st = await admin(gw, 'status');
  noSecret(st.text, 'GET /llmproxy/admin/status');
  for (const args of [['status'], ['status', '--json']]) {
    const r = gw.ctl(args);
    assert.strictEqual(r.status, 0, r.stderr);
    noSecret(r.stdout + r.stderr, 'llmproxyctl ' + args.join(' '));
  }
});

test('a second sync: unchanged; new headers only with --force', async () => {
  const v = version();
  const enc = headersEnc('h');
  let r = ok(sync(config(), ['--force', '--prune']));
  assert.match(r.stdout, /^= credential h$/m);
  assert.match(r.stdout, /^nothing to apply$/m);
  assert.strictEqual(version(), v);
  assert.strictEqual(headersEnc('h'), enc);

  r = ok(sync(config(SECRET2)));
  assert.match(r.stdout, /^~ credential h \(changed; use --force/m);
  assert.strictEqual(headersEnc('h'), enc);

  r = ok(sync(config(SECRET2), ['--force']));
  assert.match(r.stdout, /^~ credential h$/m);
  assert.notStrictEqual(headersEnc('h'), enc);
  noSecret(row('h'), 'the database row');
  await upstreamAuth(gw, 'hm', 'Bearer ' + SECRET2);
  ok(sync(config(), ['--force']));
});

test('headers are not stored without LLMPROXY_SALT_KEY', () => {
  const v = version();
  const cfg = config(SECRET, {
    h2: { api_base: mock.url, interfaces: ['openai'],
          headers: { 'X-Key': SECRET2 }, models: { hm2: {} } } });
  const r = sync(cfg, ['--force'], { LLMPROXY_SALT_KEY: '' });
  assert.strictEqual(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /^providers\.h2\.headers: LLMPROXY_SALT_KEY must be set/m);
  assert.match(r.stderr, /nothing applied/);
  assert.strictEqual(version(), v);
  assert.strictEqual(row('h2'), '');
});

test('plain headers stored by an older llmproxyctl load, then get encrypted',
  async () => {
    // what an older llmproxyctl wrote: plain headers in data
    pg.psql("UPDATE llmproxy_config_entries SET data = (data - 'headers_sha256')"
            + ` || '{"headers": {"Authorization": "Bearer ${SECRET2}"}}'::jsonb,`
            + " headers_enc = NULL WHERE kind = 'credentials' AND name = 'h'");
    await upstreamAuth(gw, 'hm', 'Bearer ' + SECRET2);

    // the next sync encrypts them in place (no --force needed)
    const r = ok(sync(config(SECRET2)));
    assert.match(r.stdout, /^~ credential h: stored headers encrypted$/m);
    noSecret(row('h'), 'the database row');
    assert.match(headersEnc('h'), /^v1:/);
    await upstreamAuth(gw, 'hm', 'Bearer ' + SECRET2);
    ok(sync(config(), ['--force']));
  });

test('without a database: admin output, state file, kept headers',
  async () => {
    const gw2 = await startGateway({ workers: 1,
                                     nginxEnv: { LLMPROXY_SALT_KEY: SALT } });
    try {
      let r = ok(gw2.sync(config(), ['--force', '--prune']));
      noSecret(r.stdout + r.stderr, 'llmproxyctl sync');
      const cfg = await admin(gw2, 'config');
      noSecret(cfg.text, 'GET /llmproxy/admin/config');
      assert.match(cfg.text, /"headers_sha256":"[0-9a-f]{64}"/);
      const saved = fs.readFileSync(path.join(gw2.dir, 'state',
                                              'config.json'), 'utf8');
      assert.match(saved, /"headers_enc":"v1:/);
      noSecret(saved, 'the state file');

      r = ok(gw2.sync(config(), []));
      assert.match(r.stdout, /^= credential h$/m);

      // changed headers without --force: the gateway keeps its own
      r = ok(gw2.sync(config(SECRET2), []));
      noSecret(r.stdout + r.stderr, 'llmproxyctl sync');
      assert.match(r.stdout, /^~ credential h \(changed; use --force/m);
      await upstreamAuth(gw2, 'hm', 'Bearer ' + SECRET);

      // a posted digest that does not match is not what the gateway reports
      const doc = JSON.parse((await admin(gw2, 'config')).text);
      delete doc.generation;
      doc.providers[0].headers = { 'X-A': 'v' };
      doc.providers[0].headers_sha256 = '2'.repeat(64);
      const res = await fetch(gw2.url + '/llmproxy/admin/config', {
        method: 'POST',
        headers: { authorization: 'Bearer ' + gw2.masterKey },
        body: JSON.stringify(doc) });
      assert.strictEqual(res.status, 200, await res.text());
      const got = JSON.parse((await admin(gw2, 'config')).text);
      assert.strictEqual(got.providers[0].headers_sha256,
                         crypto.createHash('sha256')
                           .update('{"X-A":"v"}').digest('hex'));
    } finally {
      await gw2.stop();
    }
  });

test('the admin API refuses header injection and framing headers',
  async () => {
    const cfg = JSON.parse((await admin(gw, 'config')).text);
    const bad = [
      ['X-A', `Bearer ${SECRET}\r\nX-Injected: 1`],
      ['Content-Length', '0'],
      ['Host', 'evil.example'],
      ['Bad Name', 'v'],
      ['X-A', `${SECRET}\u0001`],
    ];
    for (const [name, value] of bad) {
      const doc = JSON.parse(JSON.stringify(cfg));
      delete doc.generation;
      for (const p of doc.providers) {
        delete p.headers_sha256;
        delete p.resolved;
        p.headers = { [name]: value };
      }
      const res = await fetch(gw.url + '/llmproxy/admin/config', {
        method: 'POST',
        headers: { authorization: 'Bearer ' + gw.masterKey,
                   'content-type': 'application/json' },
        body: JSON.stringify(doc) });
      const text = await res.text();
      assert.strictEqual(res.status, 400, `${name}: ${res.status} ${text}`);
      assert.match(text, /headers/);
      noSecret(text, 'the admin API error');
    }
    noSecret(gw.errorLog(), 'the error log');
    await upstreamAuth(gw, 'hm', 'Bearer ' + SECRET);
  });

test('the admin API refuses numbers out of range, survives a nameless '
     + 'provider', async () => {
  const cfg = JSON.parse((await admin(gw, 'config')).text);
  const post = async (doc) => {
    const res = await fetch(gw.url + '/llmproxy/admin/config', {
      method: 'POST',
      headers: { authorization: 'Bearer ' + gw.masterKey,
                 'content-type': 'application/json' },
      body: typeof doc === 'string' ? doc : JSON.stringify(doc) });
    return { status: res.status, text: await res.text() };
  };
  const base = () => {
    const doc = JSON.parse(JSON.stringify(cfg));
    delete doc.generation;
    return doc;
  };

  // 1e400 parses as infinity: it must not reach an integer conversion
  for (const [field, value] of [['rpm', '1e400'], ['tpm', '-1'],
                                ['weight', '1.5'], ['rpm', '1e30'],
                                ['input_cost_per_million', '1e400']]) {
    const doc = base();
    doc.deployments[0][field] = 12345;
    const text = JSON.stringify(doc).replace(`"${field}":12345`,
                                             `"${field}":${value}`);
    const r = await post(text);
    assert.strictEqual(r.status, 400, `${field} ${value}: ${r.text}`);
    assert.match(r.text, new RegExp(`deployments\\.h/hm\\.${field}`));
  }

  // a provider without a name that relies on the gateway's key
  const doc = base();
  doc.providers.push({ api_base: mock.url, interfaces: ['openai'],
                       api_key_sha256: '0'.repeat(64), headers: {} });
  let r = await post(doc);
  assert.strictEqual(r.status, 400, r.text);
  delete doc.providers[1].api_key_sha256;
  doc.providers[1].headers_sha256 = '1'.repeat(64);
  delete doc.providers[1].headers;
  r = await post(doc);
  assert.strictEqual(r.status, 400, r.text);
  assert.deepStrictEqual(gw.problems(), []);
  await upstreamAuth(gw, 'hm', 'Bearer ' + SECRET);
});

// llmproxyctl key: refused before the database is asked

const keys = () => pg.psql('SELECT coalesce(string_agg(t::text, \' \''
                           + ' ORDER BY key_hash), \'\') FROM llmproxy_keys t');

test('llmproxyctl key refuses what would widen a key or break', () => {
  let r = gw.ctl(['key', 'create', '--alias', 'base', '--models', 'hm']);
  assert.strictEqual(r.status, 0, r.stderr);
  const before = keys();

  const refused = [
    [['--models', ''], /--models: .*empty/],
    [['--models', ','], /--models: .*empty/],
    [['--models', ' '], /--models: .*empty/],
    [['--models', 'hm,,x'], /--models: name 2 is empty/],
    [['--access-groups', ''], /--access-groups: .*empty/],
    [['--max-budget', 'nan'], /--max-budget: expected an amount/],
    [['--max-budget', 'inf'], /--max-budget: expected an amount/],
    [['--max-budget', '-1'], /--max-budget: expected an amount/],
    [['--max-budget', '1e400'], /--max-budget: expected an amount/],
    [['--max-budget', '0x10'], /--max-budget: expected an amount/],
    [['--rpm', '-1'], /--rpm: expected a whole number/],
    [['--rpm', '1.5'], /--rpm: expected a whole number/],
    [['--rpm', '0'], /--rpm: expected a whole number/],
    [['--rpm', '2147483648'], /--rpm: expected a whole number/],
    [['--tpm', '99999999999999999999'], /--tpm: expected a whole number/],
    [['--budget-duration', '1e5'], /--budget-duration: expected a duration/],
    [['--budget-duration', '99999999999999d'],
     /--budget-duration: expected a duration/],
    [['--expires', '-1d'], /--expires: expected a duration/],
    [['--expires', '1000000d'], /--expires: expected a duration/],
    [['--alias', 'a\u0001b'], /--alias: contains control characters/],
    [['--alias', 'a\u0085b'], /--alias: contains control characters/],
    [['--alias', 'x'.repeat(200)], /--alias: is too long/],
    [['--alias', 'sk-lookalike'], /--alias: must not start with "sk-"/],
    [['--alias', ''], /--alias: is empty/],
    [['--bogus'], /unrecognized option/],
    [['--models', 'hm', '--models', 'x'], /--models given more than once/],
    [['--spend', '1'], /--spend does not apply/],
  ];
  for (const [args, message] of refused) {
    r = gw.ctl(['key', 'create', ...args]);
    assert.strictEqual(r.status, 1, `create ${args}: exit ${r.status} `
                       + r.stdout + r.stderr);
    assert.match(r.stderr, message, `create ${args}`);
    assert.doesNotMatch(r.stderr, /database:/, `create ${args}`);
    assert.strictEqual(r.stdout, '', `create ${args}: printed a key`);

    if (args[0] === '--spend' || args[0] === '--bogus') continue;
    r = gw.ctl(['key', 'update', 'base', ...args]);
    assert.strictEqual(r.status, 1, `update ${args}: exit ${r.status} `
                       + r.stdout + r.stderr);
    assert.match(r.stderr, message, `update ${args}`);
    assert.doesNotMatch(r.stderr, /database:/, `update ${args}`);
  }
  for (const v of ['nan', 'inf', '-1', '1e400']) {
    r = gw.ctl(['key', 'update', 'base', '--spend', v]);
    assert.strictEqual(r.status, 1, `--spend ${v}: ` + r.stderr);
    assert.match(r.stderr, /--spend: expected an amount/);
  }
  r = gw.ctl(['key', 'update', 'base', '--block', '--unblock']);
  assert.strictEqual(r.status, 1, r.stderr);
  r = gw.ctl(['key', 'revoke', 'base', '--models', 'x']);
  assert.strictEqual(r.status, 1, r.stderr);
  assert.match(r.stderr, /--models does not apply/);
  assert.strictEqual(keys(), before, 'a refused command changed the keys');

  // text PostgreSQL would refuse never reaches it: invalid UTF-8 in an
  // alias looked up, or anywhere in config.json
  const ctl = path.join(__dirname, '..', '..', 'build', 'llmproxyctl');
  r = spawnSync('bash', ['-c', `"${ctl}" key info "$(printf 'a\\xff')"`],
                { env: gw.env(), encoding: 'utf8' });
  assert.strictEqual(r.status, 1, r.stderr);
  assert.match(r.stderr, /KEY_OR_ALIAS is not valid UTF-8/);
  const file = path.join(gw.dir, 'bad-utf8.json');
  fs.writeFileSync(file, Buffer.concat([
    Buffer.from('{"providers": {"p'), Buffer.from([0xff]),
    Buffer.from('": {"api_base": "http://h:1", "interfaces": ["openai"],'
                + ' "models": {"m": {}}}}}')]));
  const v = version();
  r = gw.ctl(['sync', '-c', file, '--force'], { LLMPROXY_SALT_KEY: SALT });
  assert.strictEqual(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /^\S*bad-utf8\.json: not valid UTF-8 on line 1$/m);
  assert.doesNotMatch(r.stderr, /database:/);
  assert.strictEqual(version(), v);

  // the other commands: a repeated option is refused, not last-one-wins
  for (const args of [['sync', '--only', 'models', '--only', 'aliases'],
                      ['usage', '--since', '1d', '--since', '2d'],
                      ['usage', '--since', '99999999d'],
                      ['status', '--json', '--json']]) {
    r = gw.ctl(args);
    assert.strictEqual(r.status, 1, args.join(' ') + ': ' + r.stderr);
    assert.match(r.stderr, /given more than once|--since: expected/);
  }

  // a duplicate alias on update: a message, not the database's
  r = gw.ctl(['key', 'create', '--alias', 'other']);
  assert.strictEqual(r.status, 0, r.stderr);
  const withOther = keys();
  r = gw.ctl(['key', 'update', 'other', '--alias', 'base']);
  assert.strictEqual(r.status, 1, r.stderr);
  assert.match(r.stderr, /a key with alias "base" exists already/);
  assert.strictEqual(keys(), withOther);
  gw.ctl(['key', 'revoke', 'other']);

  assert.notStrictEqual(before, '');
  r = gw.ctl(['key', 'create', '--alias', 'edge', '--models', ' hm , x ',
              '--max-budget', '12.5e2', '--rpm', '2147483647',
              '--tpm', '1', '--expires', '36500d',
              '--budget-duration', '1w']);
  assert.strictEqual(r.status, 0, 'the limits themselves are fine: '
                     + r.stderr);
  const info = JSON.parse(gw.ctl(['key', 'info', 'edge', '--json']).stdout);
  assert.strictEqual(info.models, 'hm,x');
  assert.strictEqual(info.rpm, '2147483647');
  assert.strictEqual(Number(info.max_budget), 1250);
});

test('every refusal left the key table as it was', () => {
  // base as created, other revoked, edge added: nothing else changed
  const rows = pg.psql("SELECT alias || ' ' || array_to_string(models, ',')"
                       + " || ' ' || coalesce(rpm::text, '-') || ' '"
                       + " || coalesce(max_budget::text, '-') || ' '"
                       + ' || spend || blocked FROM llmproxy_keys'
                       + ' ORDER BY alias').split('\n');
  assert.deepStrictEqual(rows, ['base hm - - 0false', 'edge hm,x 2147483647'
                                + ' 1250 0false', 'other  - - 0false']);
});
