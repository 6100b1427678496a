'use strict';
// Backups (SPEC §11; issue 16): `llmproxyctl backup` to a real S3 server
// on this machine (s3rver) behind a front that checks AWS Signature V4,
// `backup list`, and `restore` into a fresh PostgreSQL where the same
// virtual keys work through a gateway and `llmproxyctl usage` shows the
// same totals; a damaged or incomplete backup is refused before the
// database is touched; multipart uploads, --keep, local directories.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const OpenAI = require('openai');
const { startGateway, sleep, CTL, until } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock } = require('../mocks/openai-mock');
const { verifySigV4, signV4, startS3, sha256 } =
  require('../lib/s3-sigv4-front');

const SALT = 'salt-' + crypto.randomBytes(12).toString('hex');
const UPSTREAM = 'sk-upstream-' + crypto.randomBytes(8).toString('hex');
const AKID = 'AKIDLLMPROXYTEST';
const SECRET = 'secret/' + crypto.randomBytes(12).toString('base64');
const AKID2 = 'ASIATEMPORARYTEST';
const SECRET2 = 'temp/' + crypto.randomBytes(12).toString('base64');
const TOKEN = 'token/' + crypto.randomBytes(24).toString('base64');
const BUCKET = 'llmproxy-backups';
const TO = `s3://${BUCKET}/nightly`;
const RECORDS = 100000;

let pg, pg2, gw, gw2, mock, s3, tmp;
let keyA, keyB;
const rates = [];

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmproxy-backup-t-'));
  [pg, pg2] = await Promise.all([startPostgres(), startPostgres()]);
  mock = await createMock({ name: 'bk', usage: { prompt_tokens: 7,
                                                completion_tokens: 3 } });
  s3 = await startS3({ dir: path.join(tmp, 's3'), buckets: [BUCKET],
                       credentials: { [AKID]: SECRET, [AKID2]: SECRET2 },
                       sessionTokens: { [AKID2]: TOKEN } });
  gw = await startGateway({ database: pg.url,
                            httpExtra: 'llmproxy_usage_flush 100ms;',
                            nginxEnv: { LLMPROXY_SALT_KEY: SALT } });
  const r = gw.sync(config(), ['--force', '--prune'],
                    { LLMPROXY_SALT_KEY: SALT });
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  keyA = created(gw.ctl(['key', 'create', '--alias', 'team-a',
                         '--max-budget', '1000']));
  keyB = created(gw.ctl(['key', 'create', '--alias', 'team-b',
                         '--models', 'm1', '--rpm', '1000']));
  await until(async () => (await status(gw, keyA)) === 200);
  await until(async () => (await status(gw, keyB)) === 200);
  // a few records written by the gateway itself, then 100,000 more
  for (let i = 0; i < 5; i++) assert.strictEqual(await status(gw, keyA), 200);
  await until(() => Number(pg.psql('SELECT count(*) FROM llmproxy_usage'))
              >= 7);
  // into the table of rows: through the view llmproxy_usage, its INSTEAD
  // OF trigger inserts row by row, and the daily totals' statement
  // trigger runs once a row (about 2 minutes for these)
  pg.psql(`INSERT INTO llmproxy_usage_rows SELECT gen_random_uuid(),
      now() - make_interval(secs => i), k.key_hash, k.alias,
      CASE WHEN i % 3 = 0 THEN 'm1' ELSE 'm2' END, 'p/m1', 'openai',
      'chat/completions', i % 2 = 0, CASE WHEN i % 50 = 0 THEN 502
      ELSE 200 END, i % 1000, i % 300, i % 1000 + i % 300,
      (i % 1000) * 1e-6, i % 900, i % 400, 1, 0, NULL
    FROM generate_series(1, ${RECORDS}) i
    JOIN llmproxy_keys k ON k.alias = CASE WHEN i % 4 = 0 THEN 'team-b'
      ELSE 'team-a' END`);
});

after(async () => {
  const problems = [gw, gw2].filter(Boolean).flatMap((g) => g.problems());
  if (gw) await gw.stop();
  if (gw2) await gw2.stop();
  if (mock) await mock.close();
  if (s3) await s3.close();
  if (pg) pg.destroy();
  if (pg2) pg2.destroy();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  if (rates.length) process.stderr.write('# ' + rates.join('\n# ') + '\n');
  assert.deepStrictEqual(problems, []);
});

function config() {
  return {
    providers: {
      p: { api_base: mock.url, interfaces: ['openai'], api_key: UPSTREAM,
           models: { m1: { input_cost_per_million: 2 }, m2: {} } },
    },
    aliases: { fast: 'm1' },
  };
}

function created(r) {
  assert.strictEqual(r.status, 0, r.stderr);
  return r.stdout.trim();
}

async function status(g, key, model = 'm1') {
  try {
    await new OpenAI({ baseURL: g.baseURL, apiKey: key, maxRetries: 0 })
      .chat.completions.create({ model,
        messages: [{ role: 'user', content: 'hi' }] });
    return 200;
  } catch (e) { return e.status; }
}

// llmproxyctl without blocking the event loop: s3rver and its front run
// in this process
function ctl(args, env = {}) {
  return new Promise((resolve) => {
    execFile(CTL, args, {
      env: { ...process.env, LLMPROXY_DATABASE_URL: pg.url,
             AWS_ACCESS_KEY_ID: AKID, AWS_SECRET_ACCESS_KEY: SECRET,
             AWS_REGION: 'us-east-1', LLMPROXY_S3_ENDPOINT: s3.url,
             LLMPROXY_SALT_KEY: '', LLMPROXY_BACKUP_DIR: '',
             LLMPROXY_S3_PART_SIZE: '', ...env },
      encoding: 'utf8', timeout: 90000, maxBuffer: 1 << 24,
    }, (err, stdout, stderr) => {
      const r = { status: err ? (typeof err.code === 'number' ? err.code
                                                             : -1) : 0,
                  stdout, stderr };
      for (const s of [SECRET, SECRET2, TOKEN, UPSTREAM, SALT, keyA, keyB]) {
        assert.ok(!s || !(stdout + stderr).includes(s),
                  'llmproxyctl printed a secret');
      }
      resolve(r);
    });
  });
}

function ok(r) {
  assert.strictEqual(r.status, 0, `exit ${r.status}: ${r.stdout}${r.stderr}`);
  return r;
}

async function backup(args = [], env = {}) {
  const r = ok(await ctl(['backup', '--to', TO, ...args], env));
  const m = /^backup (llmproxy-\S+): .* in ([\d.]+) s \((\d+) rows\/s\)/m
    .exec(r.stdout);
  assert.ok(m, r.stdout);
  return { name: m[1], stdout: r.stdout, rate: Number(m[3]) };
}

async function list(from = TO) {
  const r = ok(await ctl(['backup', 'list', '--from', from, '--json']));
  return JSON.parse(r.stdout);
}

// a signed request straight to the store, as a client other than
// llmproxyctl would send it
async function s3req(method, key, body = Buffer.alloc(0), query = '') {
  const p = key === null ? `/${BUCKET}` : `/${BUCKET}/nightly/${key}`;
  const headers = {
    host: new URL(s3.url).host,
    'x-amz-date': new Date().toISOString().replace(/[-:]|\.\d+/g, ''),
    'x-amz-content-sha256': sha256(body),
  };
  headers.authorization = signV4({ method, path: p, query, headers, body,
                                   region: 'us-east-1', service: 's3',
                                   accessKeyId: AKID, secret: SECRET });
  const res = await fetch(s3.url + p + (query ? '?' + query : ''), {
    method, headers,
    body: method === 'GET' || method === 'DELETE' ? undefined : body });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

function usageJSON(url) {
  return ctl(['usage', '--since', '30d', '--by', 'key', '--json'],
             { LLMPROXY_DATABASE_URL: url });
}

// AWS's published Signature V4 test suite, "get-vanilla" family
// (aws-sig-v4-test-suite: key AKIDEXAMPLE, 20150830T123600Z, us-east-1,
// service "service")
const VECTORS = [
  ['get-vanilla', '',
   '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'],
  ['get-vanilla-query', '',
   '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'],
  ['get-vanilla-empty-query-key', 'Param1=value1',
   'a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb'],
  ['get-vanilla-query-order-key-case', 'Param2=value2&Param1=value1',
   'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500'],
  ['get-vanilla-query-unreserved',
   '-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz='
   + '-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
   '9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197'],
  ['get-vanilla-utf8-query', '%E1%88%B4=bar',
   '2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04'],
];

test('the front checks signatures: AWS\'s get-vanilla vectors pass, a '
     + 'wrong secret, a changed query or body fails', () => {
  const secret = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
  const check = (query, sig, creds = { AKIDEXAMPLE: secret }) =>
    verifySigV4({
      method: 'GET', path: '/', query, body: '',
      headers: { host: 'example.amazonaws.com',
                 'x-amz-date': '20150830T123600Z',
                 authorization: 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/'
                   + '20150830/us-east-1/service/aws4_request, '
                   + `SignedHeaders=host;x-amz-date, Signature=${sig}` },
      credentials: creds, region: 'us-east-1', service: 'service',
      now: null });
  for (const [name, query, sig] of VECTORS) {
    assert.deepStrictEqual(check(query, sig),
                           { ok: true, accessKeyId: 'AKIDEXAMPLE' }, name);
    assert.strictEqual(check(query, sig, { AKIDEXAMPLE: secret + 'x' })
                       .code, 'SignatureDoesNotMatch', name);
  }
  assert.strictEqual(check('Param1=value2', VECTORS[2][2]).code,
                     'SignatureDoesNotMatch');
  // and signV4 makes the published signature
  assert.match(signV4({ method: 'GET', path: '/',
                        query: 'Param2=value2&Param1=value1',
                        headers: { host: 'example.amazonaws.com',
                                   'x-amz-date': '20150830T123600Z' },
                        region: 'us-east-1', service: 'service',
                        accessKeyId: 'AKIDEXAMPLE', secret }),
               new RegExp(VECTORS[3][2] + '$'));
  // s3: the body must be the one x-amz-content-sha256 names
  const headers = { host: 'h', 'x-amz-date': '20150830T123600Z',
                    'x-amz-content-sha256': sha256('abc') };
  headers.authorization = signV4({ method: 'PUT', path: '/b/k', headers,
                                   region: 'us-east-1', service: 's3',
                                   accessKeyId: 'A', secret: 's' });
  const s3check = (body) => verifySigV4({ method: 'PUT', path: '/b/k',
    headers, body, credentials: { A: 's' }, region: 'us-east-1',
    service: 's3', now: null });
  assert.strictEqual(s3check('abc').ok, true);
  assert.strictEqual(s3check('abd').code, 'XAmzContentSHA256Mismatch');
});

test('llmproxyctl with a wrong secret is refused by the store', async () => {
  const before = s3.rejected.length;
  const r = await ctl(['backup', '--to', TO],
                      { AWS_SECRET_ACCESS_KEY: SECRET + 'x' });
  assert.strictEqual(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /HTTP 403 SignatureDoesNotMatch/);
  assert.match(r.stderr, /backup failed; nothing was kept/);
  assert.ok(s3.rejected.length > before);
  assert.deepStrictEqual(await list(), []);
  // temporary credentials: the session token is sent and signed
  const temp = { AWS_ACCESS_KEY_ID: AKID2, AWS_SECRET_ACCESS_KEY: SECRET2 };
  ok(await ctl(['backup', 'list', '--from', TO],
               { ...temp, AWS_SESSION_TOKEN: TOKEN }));
  for (const t of ['', TOKEN + 'x']) {
    const r = await ctl(['backup', 'list', '--from', TO],
                        { ...temp, AWS_SESSION_TOKEN: t });
    assert.strictEqual(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /HTTP 403 InvalidToken/);
  }
  // and every request of a good run passes the check, its body hashed
  s3.requests.length = 0;
  s3.rejected.length = 0;
  await backup();
  assert.ok(s3.requests.length >= 6);
  assert.deepStrictEqual(s3.rejected, []);
});

test('backup to S3, restore into a fresh PostgreSQL: the same keys work '
     + 'through a gateway, usage totals are the same', async () => {
  const b = await backup();
  rates.push(`backup to S3: ${RECORDS + 7}+ rows at ${b.rate} rows/s`);
  const l = await list();
  assert.ok(l.some((x) => x.name === b.name && x.complete), b.name);

  const r = ok(await ctl(['restore', b.name, '--from', TO],
                         { LLMPROXY_DATABASE_URL: pg2.url }));
  assert.match(r.stdout, /every SHA-256 matches/);
  const m = /^restored \S+: (\d+) rows in [\d.]+ s \((\d+) rows\/s\)/m
    .exec(r.stdout);
  assert.ok(m, r.stdout);
  assert.ok(Number(m[1]) > RECORDS);
  rates.push(`restore from S3: ${m[1]} rows at ${m[2]} rows/s`);

  const [u1, u2] = await Promise.all([usageJSON(pg.url), usageJSON(pg2.url)]);
  ok(u1);
  ok(u2);
  const t1 = JSON.parse(u1.stdout), t2 = JSON.parse(u2.stdout);
  assert.ok(t1.total.requests > RECORDS, u1.stdout);
  assert.deepStrictEqual(t2.rows, t1.rows);
  assert.deepStrictEqual(t2.total, t1.total);

  // keys (hashes, limits, spend) and the sealed provider key, exactly
  const keys = 'SELECT key_hash, alias, models, max_budget, rpm, spend,'
    + ' revoked_at, created_at, updated_at FROM llmproxy_keys ORDER BY 1';
  assert.strictEqual(pg2.psql(keys), pg.psql(keys));
  const cfg = 'SELECT kind, name, data, api_key_enc FROM'
    + ' llmproxy_config_entries ORDER BY 1, 2';
  assert.strictEqual(pg2.psql(cfg), pg.psql(cfg));
  assert.ok(!pg2.psql(cfg).includes(UPSTREAM));

  // a gateway on the restored database: the keys work, with their limits,
  // and the provider key (decrypted with the same salt key) reaches the
  // provider
  gw2 = await startGateway({ database: pg2.url,
                             nginxEnv: { LLMPROXY_SALT_KEY: SALT } });
  await until(async () => (await status(gw2, keyA)) === 200);
  mock.reset();
  assert.strictEqual(await status(gw2, keyB, 'm1'), 200);
  assert.strictEqual(mock.requests[0].headers.authorization,
                     'Bearer ' + UPSTREAM);
  assert.strictEqual(await status(gw2, keyB, 'm2'), 403,
                     'team-b is limited to m1');
  assert.strictEqual(await status(gw2, 'sk-' + 'x'.repeat(48)), 401);
});

test('restore over a live database: refused while it holds newer data; '
     + 'with --force the gateway applies the restored keys and config',
     async () => {
  const b = await backup();
  // after the backup: model m2 gone from the config, team-a revoked, a
  // new key created
  const cfg = config();
  delete cfg.providers.p.models.m2;
  const sy = gw.sync(cfg, ['--force', '--prune'], { LLMPROXY_SALT_KEY: SALT });
  assert.strictEqual(sy.status, 0, sy.stdout + sy.stderr);
  await until(async () => (await status(gw, keyA, 'm2')) !== 200);
  ok(await ctl(['key', 'revoke', 'team-a']));
  const keyC = created(gw.ctl(['key', 'create', '--alias', 'team-c']));
  await until(async () => (await status(gw, keyA)) === 401);
  await until(async () => (await status(gw, keyC)) === 200);

  const refused = await ctl(['restore', b.name, '--from', TO]);
  assert.strictEqual(refused.status, 1, refused.stdout + refused.stderr);
  assert.match(refused.stderr, /newer than the backup.*--force/);
  assert.strictEqual(pg.psql("SELECT count(*) FROM llmproxy_keys WHERE "
                             + "alias = 'team-c'"), '1');

  ok(await ctl(['restore', b.name, '--from', TO, '--force']));
  // no reload: the gateway's poller sees the restored change numbers,
  // for the keys and for the config
  await until(async () => (await status(gw, keyA)) === 200);
  await until(async () => (await status(gw, keyA, 'm2')) === 200);
  // a key the backup does not have is kept, revoked, so no gateway that
  // still holds it accepts it
  await until(async () => (await status(gw, keyC)) === 401);
  assert.strictEqual(pg.psql("SELECT revoked_at IS NOT NULL FROM "
                             + "llmproxy_keys WHERE alias = 'team-c'"), 't');
});

test('a corrupted or truncated part is refused before the database is '
     + 'touched', async () => {
  const b = await backup();
  const key = `${b.name}/llmproxy_usage_rows.copy.gz`;
  const got = await s3req('GET', key);
  assert.strictEqual(got.status, 200);
  const good = got.body;
  const marker = "SELECT count(*) FROM llmproxy_keys";
  const keysBefore = pg2.psql(marker);
  ok(await ctl(['key', 'create', '--alias', 'after-restore'],
               { LLMPROXY_DATABASE_URL: pg2.url }));

  // one byte flipped in the middle: same size, another SHA-256
  const bad = Buffer.from(good);
  bad[bad.length >> 1] ^= 0x55;
  assert.strictEqual((await s3req('PUT', key, bad)).status, 200);
  let r = await ctl(['restore', b.name, '--from', TO, '--force'],
                    { LLMPROXY_DATABASE_URL: pg2.url });
  assert.strictEqual(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stderr,
               /llmproxy_usage_rows\.copy\.gz does not match its SHA-256/);
  assert.match(r.stderr, /refused; the database was not touched/);

  // the upload cut short
  assert.strictEqual((await s3req('PUT', key,
                                  good.subarray(0, good.length - 1000)))
                     .status, 200);
  r = await ctl(['restore', b.name, '--from', TO, '--force'],
                { LLMPROXY_DATABASE_URL: pg2.url });
  assert.strictEqual(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /truncated or damaged/);

  // --dry-run checks the same way
  r = await ctl(['restore', b.name, '--from', TO, '--dry-run']);
  assert.strictEqual(r.status, 2);

  // a part gone
  assert.strictEqual((await s3req('DELETE', key)).status, 204);
  r = await ctl(['restore', b.name, '--from', TO, '--force'],
                { LLMPROXY_DATABASE_URL: pg2.url });
  assert.strictEqual(r.status, 2);
  assert.match(r.stderr, /is missing: the backup is incomplete/);

  // the database saw none of it
  assert.strictEqual(pg2.psql(marker), String(Number(keysBefore) + 1));
  assert.strictEqual(pg2.psql("SELECT count(*) FROM llmproxy_keys WHERE "
                              + "alias = 'after-restore'"), '1');

  // a backup without its manifest (the upload stopped before the end) is
  // listed as incomplete and never restored
  const c = await backup();
  assert.strictEqual((await s3req('DELETE', `${c.name}/manifest.json`))
                     .status, 204);
  const item = (await list()).find((x) => x.name === c.name);
  assert.strictEqual(item.complete, false);
  r = await ctl(['restore', c.name, '--from', TO, '--force'],
                { LLMPROXY_DATABASE_URL: pg2.url });
  assert.strictEqual(r.status, 2);
  assert.match(r.stderr, /incomplete backup \(no manifest\): not restored/);
  assert.strictEqual(pg2.psql(marker), String(Number(keysBefore) + 1));
});

test('multipart with a small part size; a part that keeps failing is '
     + 'retried, then the upload is aborted and nothing is left', async () => {
  s3.requests.length = 0;
  const b = await backup(['--part-size', '64k']);
  const parts = s3.requests.filter((q) => q.method === 'PUT'
                                   && /partNumber=/.test(q.query));
  assert.ok(parts.length >= 10, `${parts.length} parts`);
  assert.ok(parts.every((q) => q.status === 200 && q.bytes <= 65536));
  assert.ok(s3.requests.some((q) => q.method === 'POST'
                             && /^uploads=?$/.test(q.query)));
  assert.ok(s3.requests.some((q) => q.method === 'POST'
                             && /^uploadId=/.test(q.query)
                             && q.status === 200));
  // the object is whole: its restore checks out
  const r = ok(await ctl(['restore', b.name, '--from', TO, '--dry-run']));
  assert.match(r.stdout, /llmproxy_usage_rows\s+100\d{3} rows/);

  // the same through the environment variable
  s3.requests.length = 0;
  await backup([], { LLMPROXY_S3_PART_SIZE: '128k' });
  assert.ok(s3.requests.filter((q) => /partNumber=/.test(q.query)).length
            >= 5);

  // part 3 fails every time: 4 tries, then AbortMultipartUpload, and the
  // files already written are deleted
  const names = (await list()).map((x) => x.name);
  s3.requests.length = 0;
  s3.faults.failPart = 3;
  let f;
  try {
    f = await ctl(['backup', '--to', TO, '--part-size', '64k']);
  } finally {
    s3.faults.failPart = 0;
  }
  assert.strictEqual(f.status, 2, f.stdout + f.stderr);
  assert.match(f.stderr, /try 4 of 4/);
  assert.match(f.stderr, /backup failed; nothing was kept/);
  assert.strictEqual(s3.requests.filter((q) => /partNumber=3&/
                                        .test(q.query)).length, 4);
  assert.ok(s3.requests.some((q) => q.method === 'DELETE'
                             && /^uploadId=/.test(q.query)
                             && q.status === 204), 'aborted');
  assert.deepStrictEqual((await list()).map((x) => x.name), names);
  // and no multipart upload is left open in the store
  const up = await s3req('GET', null, Buffer.alloc(0), 'uploads=');
  assert.strictEqual(up.status, 200);
  assert.match(up.body.toString(), /<ListMultipartUploadsResult>/);
  assert.doesNotMatch(up.body.toString(), /<Upload>/);
});

test('--keep N deletes all but the newest N backups', async () => {
  await backup();
  await backup();
  const before = (await list()).map((x) => x.name);
  assert.ok(before.length >= 3);
  const b = await backup(['--keep', '2']);
  assert.match(b.stdout, /^deleted llmproxy-/m);
  const after = (await list()).map((x) => x.name);
  assert.deepStrictEqual(after, [before[before.length - 1], b.name]);
  const r = await ctl(['backup', '--to', TO, '--keep', '0']);
  assert.strictEqual(r.status, 1);
});

test('a local-directory backup with a directory archive', async () => {
  const dir = path.join(tmp, 'local');
  const auth = path.join(tmp, 'cliproxy-auths');
  fs.mkdirSync(path.join(auth, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(auth, 'a.json'), '{"token":"t1"}');
  fs.writeFileSync(path.join(auth, 'sub', 'b.json'), 'x'.repeat(2000));
  // names beyond ustar's 100 + 155 bytes go in pax headers
  const longDir = 'd'.repeat(120), longFile = 'f'.repeat(130) + '.json';
  fs.mkdirSync(path.join(auth, longDir));
  fs.writeFileSync(path.join(auth, longDir, longFile), '{"long":true}');
  fs.symlinkSync(path.join(longDir, longFile), path.join(auth, 'link'));
  // a table with a serial id (as a later migration might add): after a
  // restore its sequence is past the restored ids
  const serial = 'CREATE TABLE llmproxy_t_serial (id bigserial PRIMARY KEY,'
    + ' v text)';
  pg.psql(serial);
  pg2.psql(serial);
  pg.psql("INSERT INTO llmproxy_t_serial (v) VALUES ('a'), ('b'), ('c')");
  let b, tables;
  try {
    b = ok(await ctl(['backup', '--path', auth],
                     { LLMPROXY_BACKUP_DIR: dir }));
    // every llmproxy table but the migrations' own, whatever later
    // migrations add
    tables = pg.psql(`SELECT c.relname FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()
        AND c.relname LIKE 'llmproxy\\_%'
        AND c.relname <> 'llmproxy_schema_migrations'`)
      .split('\n').filter(Boolean).map((t) => `${t}.copy.gz`);
  } finally {
    pg.psql('DROP TABLE llmproxy_t_serial');
  }
  const name = /^backup (\S+):/.exec(b.stdout)[1];
  const files = fs.readdirSync(path.join(dir, name)).sort();
  for (const t of ['llmproxy_config_entries.copy.gz',
    'llmproxy_config_state.copy.gz', 'llmproxy_keys.copy.gz',
    'llmproxy_t_serial.copy.gz', 'llmproxy_usage_batches.copy.gz',
    'llmproxy_usage_daily.copy.gz', 'llmproxy_usage_packs.copy.gz',
    'llmproxy_usage_rows.copy.gz']) {
    assert.ok(tables.includes(t), t);
  }
  assert.deepStrictEqual(files, [...tables, 'manifest.json',
    'path-1-cliproxy-auths.tar.gz'].sort());
  for (const f of files) {
    assert.strictEqual(fs.statSync(path.join(dir, name, f)).mode & 0o777,
                       0o600, f);
  }
  const man = JSON.parse(fs.readFileSync(path.join(dir, name,
                                                   'manifest.json')));
  assert.strictEqual(man.schema_version, Number(pg.psql(
    'SELECT max(version) FROM llmproxy_schema_migrations')));
  assert.strictEqual(man.paths[0].files, 3);
  for (const t of man.tables) {
    assert.strictEqual(sha256(fs.readFileSync(path.join(dir, name, t.file))),
                       t.sha256, t.table);
  }
  const l = JSON.parse(ok(await ctl(['backup', 'list', '--dir', dir,
                                     '--json'])).stdout);
  assert.deepStrictEqual(l.map((x) => [x.name, x.complete]), [[name, true]]);

  const out = path.join(tmp, 'restored-files');
  const r = ok(await ctl(['restore', name, '--dir', dir, '--force',
                          '--files', out],
                         { LLMPROXY_DATABASE_URL: pg2.url }));
  assert.strictEqual(pg2.psql("INSERT INTO llmproxy_t_serial (v) VALUES"
                             + " ('d') RETURNING id"), '4');
  pg2.psql('DROP TABLE llmproxy_t_serial');
  const m = /\((\d+) rows\/s\)/.exec(r.stdout);
  rates.push(`restore from a directory: ${m[1]} rows/s`);
  const tar = require('node:child_process').spawnSync('tar', ['-xzf',
    path.join(out, 'path-1-cliproxy-auths.tar.gz'), '-C', out]);
  assert.strictEqual(tar.status, 0, String(tar.stderr));
  assert.strictEqual(fs.readFileSync(path.join(out, 'cliproxy-auths',
                                               'sub', 'b.json'), 'utf8'),
                     'x'.repeat(2000));
  assert.strictEqual(fs.readFileSync(path.join(out, 'cliproxy-auths',
                                               'link'), 'utf8'),
                     '{"long":true}');
  assert.strictEqual(fs.readlinkSync(path.join(out, 'cliproxy-auths',
                                               'link')),
                     path.join(longDir, longFile));
  const [u1, u2] = await Promise.all([usageJSON(pg.url), usageJSON(pg2.url)]);
  assert.deepStrictEqual(JSON.parse(u2.stdout).total,
                         JSON.parse(u1.stdout).total);

  // a manifest naming a table that is not llmproxy's is refused, even
  // with matching checksums: restore never truncates other tables
  pg2.psql('CREATE TABLE victim (x integer); INSERT INTO victim VALUES (42)');
  const evil = 'llmproxy-20000101T000000.000Z';
  fs.cpSync(path.join(dir, name), path.join(dir, evil), { recursive: true });
  const gz = require('node:zlib').gzipSync('1\n');
  fs.writeFileSync(path.join(dir, evil, 'victim.copy.gz'), gz);
  man.tables.push({ table: 'victim', columns: ['x'], rows: 1,
                    file: 'victim.copy.gz', bytes: gz.length,
                    sha256: sha256(gz) });
  fs.writeFileSync(path.join(dir, evil, 'manifest.json'),
                   JSON.stringify(man));
  const ev = await ctl(['restore', evil, '--dir', dir, '--force'],
                       { LLMPROXY_DATABASE_URL: pg2.url });
  assert.strictEqual(ev.status, 2, ev.stdout + ev.stderr);
  assert.match(ev.stderr, /the manifest is damaged/);
  assert.strictEqual(pg2.psql('SELECT x FROM victim'), '42');
  // without its manifest a local backup is incomplete too
  fs.rmSync(path.join(dir, evil, 'manifest.json'));
  const inc = await ctl(['restore', evil, '--dir', dir, '--force'],
                        { LLMPROXY_DATABASE_URL: pg2.url });
  assert.strictEqual(inc.status, 2);
  assert.match(inc.stderr, /incomplete backup \(no manifest\): not restored/);

  // a corrupted local file is refused too
  const f = path.join(dir, name, 'llmproxy_keys.copy.gz');
  fs.appendFileSync(f, 'x');
  const bad = await ctl(['restore', name, '--dir', dir, '--force'],
                        { LLMPROXY_DATABASE_URL: pg2.url });
  assert.strictEqual(bad.status, 2);
  assert.match(bad.stderr, /truncated or damaged/);

  // --keep in a directory; a leftover NAME.partial is incomplete and goes
  // with the old ones
  fs.mkdirSync(path.join(dir, 'llmproxy-20000101T000000.001Z.partial'));
  const before = JSON.parse(ok(await ctl(['backup', 'list', '--dir', dir,
                                          '--json'])).stdout);
  assert.deepStrictEqual(before.map((x) => x.complete), [false, false, true]);
  const k = ok(await ctl(['backup', '--dir', dir, '--keep', '1']));
  const kept = /^backup (\S+):/.exec(k.stdout)[1];
  assert.deepStrictEqual(fs.readdirSync(dir), [kept]);
});

test('a restore and a gateway writing usage records at the same time do '
     + 'not deadlock', async () => {
  const b = await backup();
  ok(await ctl(['restore', b.name, '--from', TO, '--force'],
               { LLMPROXY_DATABASE_URL: pg2.url }));
  // what a gateway's usage write does: batch ids, then (later) the keys'
  // spend, in one transaction that is open when the restore starts
  const gateway = new Promise((resolve) => {
    const p = execFile('psql', [pg2.url, '-v', 'ON_ERROR_STOP=1', '-Atq'],
                       { encoding: 'utf8' }, (err, stdout, stderr) =>
                         resolve({ status: err ? err.code : 0, stderr }));
    p.stdin.end(`BEGIN;
      INSERT INTO llmproxy_usage_batches (batch_id)
        VALUES (gen_random_uuid());
      SELECT pg_sleep(2);
      UPDATE llmproxy_keys SET spend = spend + 1 WHERE alias = 'team-a';
      COMMIT;`);
  });
  await sleep(500);
  const r = await ctl(['restore', b.name, '--from', TO, '--force'],
                      { LLMPROXY_DATABASE_URL: pg2.url });
  const g = await gateway;
  assert.strictEqual(g.status, 0, g.stderr);
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  // the restore came after the gateway's commit: the backup's spend
  assert.strictEqual(pg2.psql("SELECT spend FROM llmproxy_keys WHERE "
                              + "alias = 'team-a'"),
                     pg.psql("SELECT spend FROM llmproxy_keys WHERE "
                             + "alias = 'team-a'"));
});

test('a backup from before schema 10 (records in the table llmproxy_usage) '
     + 'restores into llmproxy_usage_rows, and no pack from before the '
     + 'restore survives', async () => {
  // a backup as an llmproxyctl of schema 9 made it: every record in one
  // table, llmproxy_usage (its columns are those of llmproxy_usage_rows,
  // the table renamed), no packs
  const dir = path.join(tmp, 'old-schema');
  const b = ok(await ctl(['backup'], { LLMPROXY_BACKUP_DIR: dir }));
  const name = /^backup (\S+):/.exec(b.stdout)[1];
  const where = path.join(dir, name);
  const man = JSON.parse(fs.readFileSync(path.join(where, 'manifest.json')));
  const rowsEntry = man.tables.find((t) => t.table === 'llmproxy_usage_rows');
  assert.ok(man.tables.some((t) => t.table === 'llmproxy_usage_packs'
                            && t.rows > 0), 'the gateway wrote packs');
  const text = path.join(tmp, 'old-usage.copy');
  pg.psql(`\\copy (SELECT ${rowsEntry.columns.join(', ')} FROM `
          + `llmproxy_usage) TO '${text}'`);
  const gz = require('node:zlib').gzipSync(fs.readFileSync(text));
  const records = Number(pg.psql('SELECT count(*) FROM llmproxy_usage'));
  assert.ok(records > RECORDS);
  for (const t of man.tables.filter((t) => /^llmproxy_usage_(rows|packs)$/
                                    .test(t.table))) {
    fs.rmSync(path.join(where, t.file));
  }
  fs.writeFileSync(path.join(where, 'llmproxy_usage.copy.gz'), gz);
  man.schema_version = 9;
  man.tables = man.tables.filter((t) => !/^llmproxy_usage_(rows|packs)$/
                                 .test(t.table));
  man.tables.push({ table: 'llmproxy_usage', columns: rowsEntry.columns,
                    rows: records, file: 'llmproxy_usage.copy.gz',
                    bytes: gz.length, sha256: sha256(gz) });
  fs.writeFileSync(path.join(where, 'manifest.json'), JSON.stringify(man));

  // the database restored into holds records of its own, all in packs,
  // one of them written after the backup's snapshot
  pg2.psql(`INSERT INTO llmproxy_usage_rows SELECT gen_random_uuid(),
      now() + interval '1 hour', NULL, NULL, 'm9', 'p/m9', 'openai',
      'chat/completions', false, 200, 5, 5, 10, 1, 1, 1, 1, 0, NULL`);
  pg2.psql("SELECT llmproxy_usage_pack_rows('infinity')");
  assert.strictEqual(pg2.psql('SELECT count(*) FROM llmproxy_usage_rows'),
                     '0');
  assert.ok(Number(pg2.psql('SELECT count(*) FROM llmproxy_usage_packs'))
            > 0);

  const refused = await ctl(['restore', name, '--dir', dir],
                            { LLMPROXY_DATABASE_URL: pg2.url });
  assert.strictEqual(refused.status, 1, refused.stdout + refused.stderr);
  assert.match(refused.stderr, /newer than the backup/);

  ok(await ctl(['restore', name, '--dir', dir, '--force'],
               { LLMPROXY_DATABASE_URL: pg2.url }));
  assert.strictEqual(pg2.psql('SELECT count(*) FROM llmproxy_usage_packs'),
                     '0');
  assert.strictEqual(pg2.psql('SELECT count(*) FROM llmproxy_usage_rows'),
                     String(records));
  // the records exactly, and the same report
  const digest = "SELECT md5(string_agg(u::text, ',' ORDER BY request_id))"
    + ' FROM llmproxy_usage u';
  assert.strictEqual(pg2.psql(digest), pg.psql(digest));
  const [u1, u2] = await Promise.all([usageJSON(pg.url), usageJSON(pg2.url)]);
  ok(u1);
  ok(u2);
  const t1 = JSON.parse(u1.stdout), t2 = JSON.parse(u2.stdout);
  assert.ok(t1.total.requests >= records, u1.stdout);
  assert.deepStrictEqual(t2.rows, t1.rows);
  assert.deepStrictEqual(t2.total, t1.total);

  // one from before schema 5 has no daily totals either: the restore
  // empties them and adds up the restored records into them
  const older = 'llmproxy-20000101T000000.005Z';
  fs.cpSync(where, path.join(dir, older), { recursive: true });
  const daily = man.tables.find((t) => t.table === 'llmproxy_usage_daily');
  fs.rmSync(path.join(dir, older, daily.file));
  man.schema_version = 4;
  man.tables = man.tables.filter((t) => t !== daily);
  fs.writeFileSync(path.join(dir, older, 'manifest.json'),
                   JSON.stringify(man));
  pg2.psql("UPDATE llmproxy_usage_daily SET requests = requests + 1000");
  ok(await ctl(['restore', older, '--dir', dir, '--force'],
               { LLMPROXY_DATABASE_URL: pg2.url }));
  const totals = 'SELECT sum(requests), sum(errors), sum(prompt_tokens),'
    + ' sum(completion_tokens), sum(lat_lt_500), count(*)'
    + ' FROM llmproxy_usage_daily';
  assert.strictEqual(pg2.psql(totals), pg.psql(totals));
  const u3 = ok(await usageJSON(pg2.url));
  const t3 = JSON.parse(u3.stdout);
  for (const [a, b] of [[t3.total, t1.total],
                        ...t1.rows.map((r, i) => [t3.rows[i], r])]) {
    assert.deepStrictEqual({ ...a, cost: 0 }, { ...b, cost: 0 });
    assert.ok(Math.abs(a.cost - b.cost) < 1e-9, `${a.cost} != ${b.cost}`);
  }
});
