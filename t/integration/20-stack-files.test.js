'use strict';
// The stack files (SPEC §10) through real parsers: Debian's docker-compose
// (`config` interpolates .env.example and validates against the compose
// schema) and yamllint; what the Swarm stack promises, read from the
// parsed result; every variable named in .env.example; the Dockerfile's
// packages real Debian 12 packages that cover the libraries the built
// module and llmproxyctl need.  No Docker engine runs here: nothing is
// built or deployed.

const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { ROOT, MODULE, CTL } = require('../lib/gateway');

const STACK = path.join(ROOT, 'stack');
const ENV = path.join(STACK, '.env.example');
const FILES = ['llmproxy.yaml', 'monitoring.yaml'];

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', timeout: 60000, ...opts });
}

// `docker-compose config` of FILE: {status, stderr, json (parsed)}
function composeConfig(file) {
  const r = run('docker-compose', ['-f', file, '--env-file', ENV, 'config']);
  if (r.status !== 0) return { status: r.status, stderr: r.stderr };
  const j = run('python3', ['-c', 'import sys, yaml, json; '
    + 'json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], { input: r.stdout });
  assert.strictEqual(j.status, 0, j.stderr);
  return { status: 0, json: JSON.parse(j.stdout) };
}

// a service's volume, short ("src:target:mode") or long syntax
function vol(v) {
  if (typeof v !== 'string') return v;
  const [source, target] = v.split(':');
  return { type: source.startsWith('/') ? 'bind' : 'volume', source, target };
}
const mount = (svc, target) => (svc.volumes || []).map(vol)
  .find((v) => v.target === target);

test('every stack file passes docker-compose config and yamllint', () => {
  for (const f of FILES) {
    const r = composeConfig(path.join(STACK, f));
    assert.strictEqual(r.status, 0, `${f}: ${r.stderr}`);
  }
  const lint = run('yamllint', ['-f', 'parsable', '-c',
                                path.join(STACK, '.yamllint'),
                                ...FILES.map((f) => path.join(STACK, f))]);
  assert.strictEqual(lint.status, 0, lint.stdout + lint.stderr);
});

test('the validators refuse a broken stack file', () => {
  // the same file with one wrong value each: the parser really checks
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmproxy-stack-'));
  const text = fs.readFileSync(path.join(STACK, 'llmproxy.yaml'), 'utf8');
  const broken = {
    order: text.replace('order: start-first', 'order: start-fist'),
    replicas: text.replace(/replicas: \$\{LLMPROXY_REPLICAS:-3\}/,
                           'replicas: three'),
    indent: text.replace('    image: postgres:15', '   image: postgres:15'),
  };
  try {
    for (const [what, t] of Object.entries(broken)) {
      assert.notStrictEqual(t, text, what);
      const f = path.join(dir, what + '.yaml');
      fs.writeFileSync(f, t);
      const r = composeConfig(f);
      assert.notStrictEqual(r.status, 0, `docker-compose took ${what}`);
    }
    const f = path.join(dir, 'long.yaml');
    fs.writeFileSync(f, text.replace('  postgres:\n',
                                     '  postgres:  ' + '#'.repeat(100) + '\n'));
    const lint = run('yamllint', ['-c', path.join(STACK, '.yamllint'), f]);
    assert.notStrictEqual(lint.status, 0, 'yamllint took a 110-column line');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('llmproxy.yaml: replicas, rolling updates, Traefik, data, backup', () => {
  const c = composeConfig(path.join(STACK, 'llmproxy.yaml')).json;
  const s = c.services;
  assert.deepStrictEqual(Object.keys(s).sort(), ['antigravity-manager',
    'backup', 'cli-proxy-api', 'llmproxy', 'postgres']);

  const gw = s.llmproxy;
  assert.ok(gw.deploy.replicas >= 2, 'replicas ' + gw.deploy.replicas);
  assert.strictEqual(gw.deploy.update_config.order, 'start-first');
  assert.strictEqual(gw.deploy.update_config.failure_action, 'rollback');
  assert.strictEqual(gw.deploy.update_config.parallelism, 1);
  assert.match(gw.healthcheck.test.join(' '), /\/health\/readiness/);
  const l = gw.deploy.labels;
  assert.strictEqual(l['traefik.enable'], 'true');
  assert.match(l['traefik.http.routers.llmproxy.rule'],
               /^Host\(`llm\.example\.com`\)/);
  assert.match(l['traefik.http.routers.llmproxy.rule'],
               /!PathPrefix\(`\/metrics`\)/);
  assert.strictEqual(l['traefik.http.routers.llmproxy.tls'], 'true');
  assert.strictEqual(l['traefik.http.services.llmproxy.loadbalancer.server'
                       + '.port'], '4000');
  assert.ok(!Object.keys(l).some((k) => /sticky/.test(k)), 'no stickiness');
  assert.strictEqual(gw.labels['netdata.prometheus.url'],
                     'http://{{.IP}}:4000/metrics');
  assert.ok(gw.labels['netdata.prometheus.name']);
  assert.strictEqual(gw.environment.LLMPROXY_METRICS_ALLOW, '10.77.0.0/16');
  for (const v of ['LLMPROXY_MASTER_KEY_FILE', 'LLMPROXY_SALT_KEY_FILE',
                   'LLMPROXY_DB_PASSWORD_FILE']) {
    assert.match(gw.environment[v], /^\/run\/secrets\//, v);
  }
  const state = mount(gw, '/var/lib/llmproxy');
  assert.ok(state && state.type === 'volume', 'state path on a volume');
  assert.strictEqual(c.volumes[state.source].name,
                     'llmproxy_state_{{.Task.Slot}}');
  assert.deepStrictEqual(gw.networks && Object.keys(gw.networks).sort(),
                         ['internal', 'monitoring', 'public']);
  assert.strictEqual(c.networks.internal.driver, 'overlay');
  assert.strictEqual(c.networks.public.external, true);
  assert.strictEqual(c.networks.monitoring.external, true);

  const pg = s.postgres;
  assert.match(pg.image, /^postgres:15/);
  assert.ok(mount(pg, '/var/lib/postgresql/data'));
  assert.strictEqual(pg.labels['netdata.postgres.name'], 'llmproxy-postgres');
  assert.match(pg.labels['netdata.postgres.dsn'],
               /^postgres:\/\/netdata:[^@]+@\{\{\.IP\}\}:5432\/llmproxy$/);
  assert.strictEqual(pg.environment.POSTGRES_PASSWORD_FILE,
                     '/run/secrets/postgres_password');

  assert.match(s['cli-proxy-api'].image, /^eceasy\/cli-proxy-api:/);
  assert.ok(mount(s['cli-proxy-api'], '/root/.cli-proxy-api'));
  assert.match(s['antigravity-manager'].image,
               /^lbjlaq\/antigravity-manager:/);
  assert.ok(mount(s['antigravity-manager'], '/root/.antigravity_tools'));

  const cmd = s.backup.command.join(' ');
  assert.match(cmd, /llmproxyctl backup --to "\$\$?BACKUP_TO"/);
  assert.match(cmd, /--keep "\$\$?BACKUP_KEEP"/);
  assert.match(cmd, /sleep "\$\$?BACKUP_INTERVAL"/);
  assert.strictEqual(s.backup.environment.BACKUP_TO, 's3://my-bucket/llmproxy');
});

test('monitoring.yaml: Netdata and the generator on every node', () => {
  const c = composeConfig(path.join(STACK, 'monitoring.yaml')).json;
  const n = c.services.netdata, d = c.services['netdata-discovery'];
  assert.strictEqual(n.deploy.mode, 'global');
  assert.strictEqual(d.deploy.mode, 'global');
  assert.strictEqual(mount(n, '/etc/netdata/go.d').source,
                     mount(d, '/etc/netdata/go.d').source,
                     'one go.d volume for both');
  assert.ok(mount(d, '/var/run/docker.sock'));
  assert.strictEqual(d.environment.NETDATA_RELOAD_LABEL,
                     Object.keys(n.labels)[0]);
  assert.strictEqual(c.networks.monitoring.external, true);
});

test('.env.example names every variable the stack reads', () => {
  const env = fs.readFileSync(ENV, 'utf8');
  const set = new Set([...env.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)]
    .map((m) => m[1]));
  const mentioned = new Set([...env.matchAll(/^# ([A-Z][A-Z0-9_]*)=/gm)]
    .map((m) => m[1]));
  for (const f of FILES) {
    const text = fs.readFileSync(path.join(STACK, f), 'utf8');
    for (const m of text.matchAll(/(?<!\$)\$\{([A-Z][A-Z0-9_]*)/g)) {
      assert.ok(set.has(m[1]), `${f} uses ${m[1]}, not in .env.example`);
    }
  }
  for (const f of ['entrypoint.sh', 'netdata-discovery.sh']) {
    const text = fs.readFileSync(path.join(STACK, f), 'utf8');
    for (const m of text.matchAll(/\$\{([A-Z][A-Z0-9_]*)(:-|-|\})/g)) {
      assert.ok(set.has(m[1]) || mentioned.has(m[1]),
                `${f} reads ${m[1]}, not in .env.example`);
    }
  }
});

test('the Dockerfile installs Debian 12 packages that cover the binaries',
     () => {
  const text = fs.readFileSync(path.join(STACK, 'Dockerfile'), 'utf8')
    .replace(/\\\n/g, ' ');
  const stages = text.split(/^FROM /m).slice(1);
  assert.strictEqual(stages.length, 2, 'a build and a runtime stage');
  for (const st of stages) assert.match(st, /^debian:12\b/);
  const pkgs = stages.map((st) => {
    const m = st.match(/apt-get install -y --no-install-recommends ([^&]+)/);
    assert.ok(m, 'apt-get install in every stage');
    return m[1].trim().split(/\s+/);
  });
  // installed here (deps.sh installs them all, or their dependants), or
  // else known to apt
  const q = run('dpkg-query', ['-W', '-f=${Package} ${Status}\n',
                               ...pkgs.flat()]);
  const known = new Set([...q.stdout.matchAll(/^(\S+) install ok installed$/gm)]
    .map((m) => m[1]));
  const rest = pkgs.flat().filter((p) => !known.has(p));
  if (rest.length) {
    const show = run('apt-cache', ['show', '--no-all-versions', ...rest]);
    for (const [, p] of show.stdout.matchAll(/^Package: (\S+)/gm)) {
      known.add(p);
    }
  }
  for (const p of pkgs.flat()) assert.ok(known.has(p), 'no package ' + p);

  // the runtime stage has the package of every library the binaries need
  const runtime = new Set(pkgs[1]);
  for (const bin of [MODULE, CTL]) {
    const od = run('objdump', ['-p', bin]);
    assert.strictEqual(od.status, 0, od.stderr);
    for (const [, lib] of od.stdout.matchAll(/NEEDED\s+(\S+)/g)) {
      if (/^(libc|libm|libpthread|libdl)\.so/.test(lib)) continue;
      const q = run('dpkg', ['-S', '*/' + lib]);
      const owner = q.stdout.split(':')[0];
      assert.ok(runtime.has(owner), `${path.basename(bin)} needs ${lib} `
                + `(${owner}), not installed in the runtime stage`);
    }
  }
  assert.match(pkgs[1].join(' '), /\bnginx-core\b/);
  assert.match(pkgs[0].join(' '), /\bnginx-dev\b/);

  // what it copies exists; the entrypoint is one of them; workers not root
  for (const [, src] of text.matchAll(/^COPY (?!--from)(\S+)/gm)) {
    assert.ok(fs.existsSync(path.join(ROOT, src)), 'COPY ' + src);
  }
  const entry = text.match(/^ENTRYPOINT \["([^"]+)"\]/m)[1];
  assert.match(text, new RegExp('^COPY stack/entrypoint.sh ' + entry + '$',
                                'm'));
  assert.match(text, /useradd [^&]*llmproxy/);
  assert.match(text, /HEALTHCHECK .*\/health\/readiness/);
});
