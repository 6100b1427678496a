'use strict';
// What a user tries first: `make run` (scripts/run.sh after the build)
// starts its own PostgreSQL, writes its nginx.conf, pushes the example
// config, prints a curl example, and stops everything on Ctrl-C.

const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { ROOT, sleep } = require('../lib/gateway');
const { freePort } = require('../mocks/openai-mock');

test('make run starts the gateway with its own database', async () => {
  const varDir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmproxy-run-'));
  fs.chmodSync(varDir, 0o755);
  const port = await freePort();
  const pgPort = await freePort();
  const env = { ...process.env, LLMPROXY_LISTEN: `127.0.0.1:${port}`,
                LLMPROXY_VAR: varDir, LLMPROXY_PG_PORT: String(pgPort) };
  delete env.LLMPROXY_DATABASE_URL;
  delete env.LLMPROXY_MASTER_KEY;

  const child = spawn('bash', [path.join(ROOT, 'scripts', 'run.sh')],
                      { cwd: ROOT, env });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((r) => child.on('exit', r));

  try {
    let ready;
    for (let i = 0; i < 300 && !ready; i++) {
      await sleep(100);
      try {
        const r = await fetch(`http://127.0.0.1:${port}/health/readiness`);
        if (r.status === 200) ready = await r.json();
      } catch (e) { /* not yet */ }
    }
    assert.ok(ready, 'ready within 30 s:\n' + out);
    assert.strictEqual(ready.database, 'connected');

    for (let i = 0; i < 50 && !/Ctrl-C stops it/.test(out); i++) {
      await sleep(100);
    }
    assert.match(out, /applied \(config version \d+\)/);
    assert.match(out, /curl http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions/);
    const key = fs.readFileSync(path.join(varDir, 'master_key'), 'utf8')
      .trim();
    assert.ok(!out.includes(key), 'the master key is not printed');

    const models = await fetch(`http://127.0.0.1:${port}/v1/models`, {
      headers: { authorization: 'Bearer ' + key } });
    assert.strictEqual(models.status, 200);
    const ids = (await models.json()).data.map((m) => m.id);
    assert.ok(ids.includes('gpt-5'), ids.join(','));
  } finally {
    child.kill('SIGTERM');
    await exited;
  }

  const pg = spawnSync('bash', ['-c', `ls /usr/lib/postgresql/*/bin/pg_ctl`],
                       { encoding: 'utf8' }).stdout.trim().split('\n').pop();
  const st = spawnSync('runuser', ['-u', 'postgres', '--', pg, '-D',
                                   path.join(varDir, 'pg'), 'status'],
                       { encoding: 'utf8' });
  assert.notStrictEqual(st.status, 0, 'PostgreSQL was stopped');
  await assert.rejects(fetch(`http://127.0.0.1:${port}/health/liveliness`));
  fs.rmSync(varDir, { recursive: true, force: true });
});
