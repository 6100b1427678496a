'use strict';
// Retention (SPEC section 8; issue 13): usage records older than
// llmproxy_usage_retention are deleted by the gateway, in batches, in the
// background; the daily totals and the keys' spend stay as they were, and
// `llmproxyctl usage` answers whole days from the daily totals, so a
// report over old days is the same after their records are gone, and a
// year of daily rows answers quickly.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { startGateway, Gateway, sleep, ROOT } = require('../lib/gateway');
const { startPostgres } = require('../lib/pg');

const CTL = path.join(ROOT, 'build', 'llmproxyctl');
const OLD = 12000 + 30;     // more than two batches of 5000
const RECENT = 20;

let pg, gw;

const ctl = (args) => spawnSync(CTL, args, {
  encoding: 'utf8', timeout: 60000,
  env: { ...process.env, LLMPROXY_DATABASE_URL: pg.url },
});

function report(args) {
  const r = ctl(['usage', ...args, '--json']);
  assert.strictEqual(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const daily = () => pg.psql(
  'SELECT string_agg(t::text, E\'\\n\' ORDER BY t::text)'
  + ' FROM llmproxy_usage_daily t');

function records(ago, n, model, latency) {
  return `INSERT INTO llmproxy_usage (request_id, created_at, key_hash,
      key_alias, model, deployment, interface, endpoint, stream, status,
      prompt_tokens, completion_tokens, total_tokens, cost, latency_ms,
      attempts, fallbacks)
    SELECT gen_random_uuid(), now() - interval '${ago}'
             - make_interval(secs => i % 600),
           k.key_hash, k.key_alias, '${model}', 'p/${model}', 'openai',
           'chat/completions', false, CASE WHEN i % 10 = 0 THEN 500 ELSE 200
           END, 100, 50, 150, 0.001, ${latency}, 1, 0
    FROM generate_series(1, ${n}) i,
         (SELECT key_hash, alias AS key_alias FROM llmproxy_keys
          WHERE alias = 'ret-team') k;`;
}

before(async () => {
  pg = await startPostgres();
  let r = ctl(['migrate']);
  assert.strictEqual(r.status, 0, r.stderr);
  r = ctl(['key', 'create', '--alias', 'ret-team']);
  assert.strictEqual(r.status, 0, r.stderr);
  pg.psql(records('10 days', 12000, 'old-a', '(i * 37) % 3000')
          + records('40 days', 30, 'old-b', '(i * 11) % 700')
          + records('400 days', 5, 'ancient', '100')
          + records('1 minute', RECENT, 'new-a', '(i * 13) % 400')
          + "UPDATE llmproxy_keys SET spend = 1.5 WHERE alias = 'ret-team'");
  // the records older than 20 days in packs, as a gateway writes them
  // (schema 10); the others stay rows
  pg.psql("SELECT llmproxy_usage_pack_rows(now() - interval '20 days')");
  assert.strictEqual(pg.psql('SELECT sum(n) FROM llmproxy_usage_packs'),
                     String(30 + 5));
});

after(async () => {
  const problems = gw ? gw.problems() : [];
  if (gw) await gw.stop();
  if (pg) pg.destroy();
  assert.deepStrictEqual(problems, []);
});

test('nginx -t refuses a retention under a day, takes off, 0 and 1d', () => {
  const check = (line) => {
    const g = new Gateway({ httpExtra: line });
    g.port = 1;
    fs.writeFileSync(g.confFile, require('../lib/gateway').nginxConf(g));
    const r = g.nginx(['-t']);
    fs.rmSync(g.dir, { recursive: true, force: true });
    return r;
  };
  let r = check('llmproxy_usage_retention 12h;');
  assert.notStrictEqual(r.status, 0);
  assert.match(r.stderr, /llmproxy_usage_retention.*at least 1d/);
  r = check('llmproxy_usage_retention 1d every=0s;');
  assert.notStrictEqual(r.status, 0);
  for (const ok of ['off', '0', '1d', '90d every=10m']) {
    r = check(`llmproxy_usage_retention ${ok};`);
    assert.strictEqual(r.status, 0, ok + ': ' + r.stderr);
  }
});

test('old records are deleted; daily totals, spend and reports stay',
     async () => {
  const byModel = report(['--since', '365d', '--by', 'model']);
  const byDay = report(['--since', '365d', '--by', 'day']);
  const byKey = report(['--since', '365d', '--by', 'key']);
  assert.strictEqual(byModel.total.requests, OLD + RECENT);
  const totals = daily();
  const spend = pg.psql("SELECT spend FROM llmproxy_keys"
                        + " WHERE alias = 'ret-team'");

  gw = await startGateway({
    database: pg.url, workers: 2,
    httpExtra: 'llmproxy_usage_retention 1d every=1s;',
  });

  const t0 = Date.now();
  let left;
  for (;;) {
    left = Number(pg.psql("SELECT count(*) FROM llmproxy_usage"
                          + " WHERE created_at < now() - interval '1 day'"));
    if (left === 0 || Date.now() - t0 > 20000) break;
    await sleep(200);
  }
  assert.strictEqual(left, 0, 'old records left after 20 s');
  console.log(`# ${OLD + 5} old records deleted within ${Date.now() - t0} ms`);
  assert.strictEqual(Number(pg.psql('SELECT count(*) FROM llmproxy_usage')),
                     RECENT);

  assert.strictEqual(daily(), totals);
  assert.strictEqual(pg.psql("SELECT spend FROM llmproxy_keys"
                             + " WHERE alias = 'ret-team'"), spend);
  assert.deepStrictEqual(report(['--since', '365d', '--by', 'model']),
                         byModel);
  assert.deepStrictEqual(report(['--since', '365d', '--by', 'day']), byDay);
  assert.deepStrictEqual(report(['--since', '365d', '--by', 'key']), byKey);
  assert.match(gw.errorLog(), /usage retention deleted \d+ records/);
});

test('a gateway leaves the run to the one holding the advisory lock',
     async () => {
  // another gateway's run, as PostgreSQL sees it: a session holding the lock
  const other = spawn('psql', [pg.url, '-Atq'], { stdio: 'pipe' });
  let out = '';
  other.stdout.on('data', (d) => { out += d; });
  other.stdin.write("SELECT 'locked', pg_advisory_lock("
                    + "hashtext('llmproxy_usage_retention'));\n");
  const t0 = Date.now();
  while (!/locked/.test(out) && Date.now() - t0 < 10000) await sleep(50);
  assert.match(out, /locked/);
  try {
    pg.psql(records('10 days', 100, 'old-c', '100'));
    await sleep(3000);      // three runs of "every=1s"
    assert.strictEqual(Number(pg.psql("SELECT count(*) FROM llmproxy_usage"
                                      + " WHERE model = 'old-c'")), 100);
  } finally {
    other.stdin.end();
  }
  const t1 = Date.now();
  let left;
  do {
    await sleep(200);
    left = Number(pg.psql("SELECT count(*) FROM llmproxy_usage"
                          + " WHERE model = 'old-c'"));
  } while (left !== 0 && Date.now() - t1 < 10000);
  assert.strictEqual(left, 0, 'not deleted once the lock was free');
});

test('a report over a year of daily rows answers from them', () => {
  const before = report(['--since', '365d', '--by', 'model']).total;
  const lt = [25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000,
              7500, 10000, 15000, 20000, 30000, 60000, 120000];
  // 364 whole days of 550 models: 200,200 rows
  pg.psql(`INSERT INTO llmproxy_usage_daily (day, key_hash, model,
      deployment, requests, errors, prompt_tokens, completion_tokens, cost,
      latency_ms_sum, latency_ms_max, ${lt.map((n) => 'lat_lt_' + n)})
    SELECT (now() AT TIME ZONE 'UTC')::date - d, '', 'bulk-' || m, 'p/bulk',
           10, 1, 1000, 500, 0.01, 2000, 400,
           ${lt.map((n) => (n <= 100 ? 0 : n <= 300 ? 5 : 10))}
    FROM generate_series(1, 364) d, generate_series(1, 550) m`);
  const t0 = process.hrtime.bigint();
  const r = report(['--since', '365d', '--by', 'model']);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`# llmproxyctl usage over 200,200 daily rows: ${ms.toFixed(0)}`
              + ' ms');
  assert.strictEqual(r.total.requests, before.requests + 200200 * 10);
  assert.strictEqual(r.total.errors, before.errors + 200200);
  assert.strictEqual(r.total.prompt_tokens,
                     before.prompt_tokens + 200200 * 1000);
  assert.ok(Math.abs(r.total.cost - (before.cost + 2002)) < 1e-6);
  const bulk = r.rows.find((x) => x.model === 'bulk-1');
  assert.strictEqual(bulk.requests, 3640);
  assert.strictEqual(bulk.avg_latency_ms, 200);
  // half the requests under 300 ms, all under 500: P95 in 300..500
  assert.ok(bulk.p95_latency_ms > 300 && bulk.p95_latency_ms <= 500,
            String(bulk.p95_latency_ms));
});
