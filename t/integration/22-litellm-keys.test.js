'use strict';
// Moving from LiteLLM end to end (SPEC §12): its config.yaml through
// `import litellm` and `sync` into the database, its keys through
// `import litellm-keys` from a PostgreSQL holding LiteLLM's own
// "LiteLLM_VerificationToken" table; the very same keys then work (or are
// refused: blocked, expired, over budget) at the gateway.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const OpenAI = require('openai');
const { startGateway, sleep, ROOT, CTL } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');
const { createMock } = require('../mocks/openai-mock');

const SALT = 'salt-' + crypto.randomBytes(12).toString('hex');
const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');
const newKey = () => 'sk-' + crypto.randomBytes(16).toString('hex');

let pg, gw, mock, tmp, litellmUrl;
const K = {};

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmproxy-litellm-keys-'));
  pg = await startPostgres();
  mock = await createMock({ name: 'up' });
  gw = await startGateway({ database: pg.url, zone: '32m',
                            nginxEnv: { LLMPROXY_SALT_KEY: SALT } });

  // LiteLLM's database beside llmproxy's, in the same cluster
  pg.psql('CREATE DATABASE litellm');
  litellmUrl = pg.url.replace(/\/[^/?]*(\?|$)/, '/litellm$1');
  const r = spawnSync('psql', [litellmUrl, '-qv', 'ON_ERROR_STOP=1', '-f',
                               path.join(ROOT, 't', 'data', 'litellm',
                                         'litellm_schema.sql')],
                      { encoding: 'utf8' });
  assert.strictEqual(r.status, 0, r.stderr);

  for (const k of ['plain', 'blocked', 'expired', 'broke', 'team', 'all',
                   'teamBlocked', 'weird']) {
    K[k] = newKey();
  }
  const row = (key, cols) => {
    const names = ['token', 'key_name', ...Object.keys(cols)];
    const vals = [`'${sha(key)}'`, `'sk-...${key.slice(-4)}'`,
                  ...Object.values(cols)];
    return `INSERT INTO "LiteLLM_VerificationToken" (${names.map((n) =>
      '"' + n + '"').join(',')}) VALUES (${vals.join(',')});`;
  };
  lite(`
INSERT INTO "LiteLLM_TeamTable" (team_id, team_alias, models, blocked)
  VALUES ('t1', 'research', '{beta}', false),
         ('t2', 'frozen', '{}', true);
${row(K.plain, { key_alias: "'team-a'", models: "'{gpt-4o}'",
                 max_budget: 10, spend: 1.5, budget_duration: "'30d'",
                 budget_reset_at: "now() + interval '20 days'",
                 rpm_limit: 100, tpm_limit: 100000,
                 expires: "now() + interval '90 days'",
                 user_id: "'alice@example.com'",
                 metadata: `'{"env": "prod"}'` })}
${row(K.blocked, { key_alias: "'blocked-key'", blocked: 'true' })}
${row(K.expired, { key_alias: "'old'",
                   expires: "now() - interval '1 day'" })}
${row(K.broke, { key_alias: "'broke'", max_budget: 1, spend: 2 })}
${row(K.team, { key_alias: "'research-key'", team_id: "'t1'",
                models: "'{}'" })}
${row(K.all, { models: "'{all-proxy-models}'", blocked: 'false' })}
${row(K.teamBlocked, { key_alias: "'frozen-key'", team_id: "'t2'" })}
${row(K.weird, { key_alias: "E'evil\\n\\u001b[31m'", models: "'{gpt-4o}'" })}
`);
});

after(async () => {
  const problems = gw ? gw.problems() : [];
  if (gw) await gw.stop();
  if (mock) await mock.close();
  if (pg) pg.destroy();
  fs.rmSync(tmp, { recursive: true, force: true });
  assert.deepStrictEqual(problems, []);
});

function lite(sql) {
  const r = spawnSync('psql', [litellmUrl, '-Atqv', 'ON_ERROR_STOP=1', '-c',
                               sql], { encoding: 'utf8' });
  assert.strictEqual(r.status, 0, r.stderr);
  return r.stdout.trim();
}

const importKeys = (...args) => gw.ctl(['import', 'litellm-keys',
                                        litellmUrl, ...args]);

async function status(key, model) {
  const sdk = new OpenAI({ baseURL: gw.baseURL, apiKey: key,
                           maxRetries: 0 });
  try {
    await sdk.chat.completions.create({
      model, messages: [{ role: 'user', content: 'hi' }] });
    return 200;
  } catch (e) { return e.status; }
}

async function until(fn, ms = 8000) {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return;
    if (Date.now() - t0 > ms) throw new Error('not within ' + ms + ' ms');
    await sleep(150);
  }
}

test('config.yaml: import, sync into the database, the gateway loads it',
     async () => {
  const yaml = path.join(tmp, 'config.yaml');
  fs.writeFileSync(yaml, `
model_list:
  - model_name: gpt-4o
    litellm_params: &up
      model: openai/upstream-4o
      api_base: ${mock.url}
      api_key: os.environ/UPSTREAM_KEY
    model_info:
      input_cost_per_token: 0.0000025
      output_cost_per_token: 0.00001
  - model_name: research-model
    litellm_params: {<<: *up, model: openai/upstream-research}
    model_info: {access_groups: [beta]}
router_settings:
  model_group_alias: {gpt-4: gpt-4o}
`);
  const out = path.join(tmp, 'out');
  fs.mkdirSync(out);
  let r = spawnSync(CTL, ['import', 'litellm', yaml, '-o', out],
                    { encoding: 'utf8' });
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  r = gw.ctl(['sync', '-c', path.join(out, 'config.json'), '--force'],
             { LLMPROXY_SALT_KEY: SALT, UPSTREAM_KEY: 'sk-up-secret' });
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  await until(async () => await status(gw.masterKey, 'gpt-4') === 200);
  assert.strictEqual(mock.requests.at(-1).headers.authorization,
                     'Bearer sk-up-secret');
});

test('--dry-run reports and writes nothing', () => {
  const r = importKeys('--dry-run');
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /dry run: 8 keys: 8 new, 0 changed, 0 unchanged/);
  assert.strictEqual(pg.psql('SELECT count(*) FROM llmproxy_keys'), '0');
});

test('keys import with their hashes, limits, budgets, expiry and blocked '
     + 'state; what has no counterpart is reported', () => {
  const r = importKeys();
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^8 keys: 8 new, 0 changed, 0 unchanged, 0 skipped/m);
  assert.match(r.stdout, /^\+ key "team-a"$/m);
  assert.match(r.stdout, /^ {2}user_id: set on 1 key$/m);
  assert.match(r.stdout, /^ {2}metadata: set on 1 key$/m);
  assert.match(r.stdout, /^ {2}team_id: set on 2 keys$/m);
  // the keys themselves are never printed
  for (const k of Object.values(K)) {
    assert.ok(!r.stdout.includes(k) && !r.stderr.includes(k));
  }

  const row = pg.psql(`SELECT alias, models, access_groups, max_budget,
      spend, budget_duration_seconds, rpm, tpm, blocked,
      expires_at > now() + interval '89 days',
      budget_reset_at > now() + interval '19 days'
    FROM llmproxy_keys WHERE key_hash = '${sha(K.plain)}'`);
  assert.strictEqual(row, 'team-a|{gpt-4o}|{gpt-4o}|10|1.5|2592000|100|'
                     + '100000|f|t|t');
  // a team key without models of its own gets the team's: never widened
  assert.strictEqual(pg.psql(`SELECT models FROM llmproxy_keys
    WHERE key_hash = '${sha(K.team)}'`), '{beta}');
  assert.strictEqual(pg.psql(`SELECT models FROM llmproxy_keys
    WHERE key_hash = '${sha(K.all)}'`), '{}');
  assert.strictEqual(pg.psql(`SELECT blocked FROM llmproxy_keys
    WHERE key_hash = '${sha(K.teamBlocked)}'`), 't');
  // an alias with control characters: kept out, and off the terminal
  assert.strictEqual(pg.psql(`SELECT alias IS NULL FROM llmproxy_keys
    WHERE key_hash = '${sha(K.weird)}'`), 't');
  assert.match(r.stdout, /the alias has control characters/);
  assert.ok(!r.stdout.includes('\u001b') && !r.stdout.includes('evil'));
});

test('a second run changes nothing', () => {
  const seq = pg.psql('SELECT max(change_seq) FROM llmproxy_keys');
  const r = importKeys();
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^8 keys: 0 new, 0 changed, 8 unchanged/m);
  assert.strictEqual(pg.psql('SELECT max(change_seq) FROM llmproxy_keys'),
                     seq);
});

test('the same keys work at the gateway, and are refused where LiteLLM '
     + 'refused them', async () => {
  await until(async () => await status(K.plain, 'gpt-4o') === 200);
  assert.strictEqual(await status(K.plain, 'gpt-4'), 200);  // alias
  assert.strictEqual(await status(K.plain, 'research-model'), 403);
  assert.strictEqual(await status(K.team, 'research-model'), 200);
  assert.strictEqual(await status(K.team, 'gpt-4o'), 403);
  assert.strictEqual(await status(K.all, 'research-model'), 200);
  assert.strictEqual(await status(K.blocked, 'gpt-4o'), 401);
  assert.strictEqual(await status(K.teamBlocked, 'gpt-4o'), 401);
  assert.strictEqual(await status(K.expired, 'gpt-4o'), 401);
  assert.strictEqual(await status(K.broke, 'gpt-4o'), 429);
  assert.strictEqual(await status(newKey(), 'gpt-4o'), 401);
});

test('a change in LiteLLM is carried by the next run; spend never goes '
     + 'back', async () => {
  // the requests above are billed when their records are written (every
  // 200ms): wait for that, or "the higher stays" would compare with 1.5
  await until(async () => pg.psql(`SELECT spend > 1.5 FROM llmproxy_keys
    WHERE key_hash = '${sha(K.plain)}'`) === 't');
  lite(`UPDATE "LiteLLM_VerificationToken" SET blocked = true, spend = 0.5
        WHERE key_alias = 'team-a'`);
  const r = importKeys();
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^~ key "team-a"$/m);
  assert.match(r.stdout, /^8 keys: 0 new, 1 changed, 7 unchanged/m);
  // LiteLLM's 0.5 is below what the key has spent by now (its 1.5 and
  // the requests above): the higher stays
  assert.strictEqual(pg.psql(`SELECT blocked, spend > 1.5 FROM llmproxy_keys
    WHERE key_hash = '${sha(K.plain)}'`), 't|t');
  await until(async () => await status(K.plain, 'gpt-4o') === 401);
});

test('not LiteLLM\'s database, or none: a clear error', () => {
  let r = gw.ctl(['import', 'litellm-keys', pg.url]);
  assert.strictEqual(r.status, 2);
  assert.match(r.stderr, /no table "LiteLLM_VerificationToken"/);
  r = gw.ctl(['import', 'litellm-keys',
              'postgresql://nobody:hunter2@127.0.0.1:1/x']);
  assert.strictEqual(r.status, 2);
  assert.match(r.stderr, /cannot connect to LiteLLM's database/);
  assert.ok(!r.stderr.includes('hunter2'));
});
