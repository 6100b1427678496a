'use strict';
// A real PostgreSQL cluster for a test file, in a temp dir on a free port.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const { freePort: closedPort } = require('../mocks/openai-mock');
const { ROOT } = require('./gateway');

const PG_SH = path.join(ROOT, 'scripts', 'pg.sh');

async function startPostgres() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmproxy-pg-'));
  fs.chmodSync(dir, 0o755);
  const data = path.join(dir, 'data');
  const port = await closedPort();
  const url = execFileSync('bash', [PG_SH, 'start', data, String(port)],
                           { encoding: 'utf8' }).trim();
  return {
    url, port, dir,
    psql(sql) {
      const r = spawnSync('psql', [url, '-Atqc', sql], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error('psql: ' + r.stderr);
      return r.stdout.trim();
    },
    stop() { execFileSync('bash', [PG_SH, 'stop', data]); },
    start() { execFileSync('bash', [PG_SH, 'start', data, String(port)]); },
    destroy() {
      spawnSync('bash', [PG_SH, 'stop', data]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startPostgres };
