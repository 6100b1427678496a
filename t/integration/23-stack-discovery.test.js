'use strict';
// stack/netdata-discovery.sh against a fake Docker API on a unix socket
// (t/lib/fake-docker.js) serving recorded answers of a Swarm node: the
// go.d job files it writes for netdata.postgres.* and netdata.prometheus.*
// labels, compared whole with the expected ones, as labels are added,
// changed and removed; a file is rewritten (and Netdata restarted) only
// when its content changes; the watch mode reacts to /events.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { ROOT, sleep } = require('../lib/gateway');
const { fakeDocker } = require('../lib/fake-docker');

const SCRIPT = path.join(ROOT, 'stack', 'netdata-discovery.sh');
let dir, sock, out, docker;

// A container as GET /containers/json lists it (the fields that matter,
// with their real shapes)
function container(id, name, labels, networks) {
  const nets = {};
  for (const [net, ip] of Object.entries(networks)) {
    nets[net] = { IPAMConfig: { IPv4Address: ip }, Links: null, Aliases: null,
                  NetworkID: 'n' + net.length, EndpointID: 'e' + id,
                  Gateway: '', IPAddress: ip, IPPrefixLen: 16,
                  MacAddress: '02:42:0a:00:00:02' };
  }
  return { Id: id.padEnd(64, '0'), Names: ['/' + name],
           Image: 'llmproxy:latest', Command: '/entrypoint', Created: 1764633600,
           Ports: [], Labels: labels, State: 'running',
           Status: 'Up 2 minutes (healthy)', HostConfig: { NetworkMode: 'default' },
           NetworkSettings: { Networks: nets }, Mounts: [] };
}

// a Swarm task's container labels
const task = (svc, slot, id, extra) => ({
  'com.docker.stack.namespace': 'llmproxy',
  'com.docker.swarm.node.id': 'q1w2e3r4t5y6',
  'com.docker.swarm.service.id': 'svc' + svc,
  'com.docker.swarm.service.name': 'llmproxy_' + svc,
  'com.docker.swarm.task': '',
  'com.docker.swarm.task.id': id,
  'com.docker.swarm.task.name': `llmproxy_${svc}.${slot}.${id}`,
  ...extra });

const GW = { 'netdata.prometheus.name': 'llmproxy',
             'netdata.prometheus.url': 'http://{{.IP}}:4000/metrics' };
const PG = (pw) => ({ 'netdata.postgres.name': 'llmproxy-postgres',
  'netdata.postgres.dsn': `postgres://netdata:${pw}@{{.IP}}:5432/llmproxy` });

const gw = (slot, ip) => container('a' + slot + 'b2c3d4e5f6', `llmproxy_llmproxy.${slot}.t${slot}x9`,
  task('llmproxy', slot, `t${slot}x9`, GW),
  { llmproxy_internal: '10.0.1.' + (10 + slot), public: '10.0.2.' + (10 + slot),
    monitoring: ip });

const NETDATA = container('ffeeddccbbaa', 'monitoring_netdata.q1w2e3r4t5y6.n1',
  { 'llmproxy.netdata.reload': 'true',
    'com.docker.swarm.task.name': 'monitoring_netdata.q1w2e3r4t5y6.n1' },
  { monitoring: '10.77.0.2' });

// a Swarm service as GET /services lists it
function service(name, labels) {
  return { ID: 'svc' + name, Version: { Index: 42 },
           CreatedAt: '2026-12-01T10:00:00Z', UpdatedAt: '2026-12-01T10:00:00Z',
           Spec: { Name: name, Labels: labels,
                   TaskTemplate: { ContainerSpec: { Image: 'x' } },
                   Mode: { Replicated: { Replicas: 1 } } } };
}

// labels added: postgres, two gateways, a service-level exporter; a
// labelled container off the monitoring network and Traefik are skipped
const A = {
  containers: [
    container('0123456789ab', 'llmproxy_postgres.1.p0', task('postgres', 1, 'p0',
      PG('pw1')), { llmproxy_internal: '10.0.1.5', monitoring: '10.77.0.12' }),
    gw(1, '10.77.0.21'), gw(2, '10.77.0.22'),
    container('99aa88bb77cc', 'stray', GW, { bridge: '172.17.0.3' }),
    container('1a2b3c4d5e6f', 'traefik_traefik.1.tr', { 'traefik.enable': 'true' },
              { public: '10.0.2.2' }),
    NETDATA,
  ],
  services: [
    service('llmproxy_llmproxy', { 'traefik.enable': 'true' }),
    service('exporter', { 'netdata.prometheus.name': 'node-exporter',
                          'netdata.prometheus.url': 'http://exporter:9100/metrics' }),
  ],
};

// changed: a third gateway, the postgres password; removed: the exporter's
const B = {
  containers: [
    container('0123456789ab', 'llmproxy_postgres.1.p0', task('postgres', 1, 'p0',
      PG('pw2')), { llmproxy_internal: '10.0.1.5', monitoring: '10.77.0.12' }),
    gw(1, '10.77.0.21'), gw(2, '10.77.0.22'), gw(3, '10.77.0.23'), NETDATA,
  ],
  services: [service('llmproxy_llmproxy', { 'traefik.enable': 'true' }),
             service('exporter', {})],
};

// everything gone
const C = { containers: [NETDATA], services: [] };

const HEAD = (kind, field) => '# written by llmproxy-netdata-discovery from '
  + `the Docker labels\n# netdata.${kind}.name and netdata.${kind}.${field}; `
  + 'do not edit\n';

const EXPECTED = {
  A: {
    postgres: HEAD('postgres', 'dsn') + `jobs:
  - name: "llmproxy-postgres"
    dsn: "postgres://netdata:pw1@10.77.0.12:5432/llmproxy"
`,
    prometheus: HEAD('prometheus', 'url') + `jobs:
  - name: "llmproxy-1"
    url: "http://10.77.0.21:4000/metrics"
  - name: "llmproxy-2"
    url: "http://10.77.0.22:4000/metrics"
  - name: "node-exporter"
    url: "http://exporter:9100/metrics"
`,
  },
  B: {
    postgres: HEAD('postgres', 'dsn') + `jobs:
  - name: "llmproxy-postgres"
    dsn: "postgres://netdata:pw2@10.77.0.12:5432/llmproxy"
`,
    prometheus: HEAD('prometheus', 'url') + `jobs:
  - name: "llmproxy-1"
    url: "http://10.77.0.21:4000/metrics"
  - name: "llmproxy-2"
    url: "http://10.77.0.22:4000/metrics"
  - name: "llmproxy-3"
    url: "http://10.77.0.23:4000/metrics"
`,
  },
  C: {
    postgres: HEAD('postgres', 'dsn') + 'jobs: []\n',
    prometheus: HEAD('prometheus', 'url') + 'jobs: []\n',
  },
};

const env = () => ({ ...process.env, DOCKER_SOCKET: sock,
                     NETDATA_GO_D_DIR: out,
                     NETDATA_DISCOVERY_NETWORK: 'monitoring',
                     NETDATA_RELOAD_LABEL: 'llmproxy.netdata.reload',
                     NETDATA_DISCOVERY_RESYNC: '60' });

function once() {
  return new Promise((resolve) => {
    const c = spawn('bash', [SCRIPT, '--once'], { env: env() });
    let text = '';
    c.stderr.on('data', (d) => { text += d; });
    c.on('exit', (code) => resolve({ code, text }));
  });
}

const read = (f) => fs.readFileSync(path.join(out, f + '.conf'), 'utf8');
const stamp = (f) => {
  const s = fs.statSync(path.join(out, f + '.conf'));
  return `${s.ino}:${s.mtimeMs}`;
};
const restarts = () => docker.requests.filter((r) => r.method === 'POST'
  && r.path === `/containers/${NETDATA.Id}/restart`).length;

function assertFiles(name) {
  assert.strictEqual(read('postgres'), EXPECTED[name].postgres, name);
  assert.strictEqual(read('prometheus'), EXPECTED[name].prometheus, name);
}

function set(state) {
  docker.containers = state.containers;
  docker.services = state.services;
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmproxy-discovery-'));
  sock = path.join(dir, 'docker.sock');
  out = path.join(dir, 'go.d');
  docker = await fakeDocker(sock);
});

after(async () => {
  if (docker) await docker.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('labels added: the job files, and Netdata restarted once', async () => {
  set(A);
  const r = await once();
  assert.strictEqual(r.code, 0, r.text);
  assertFiles('A');
  assert.strictEqual(restarts(), 1);

  // what go.d reads: YAML with a list of jobs, each a name and its target
  for (const [f, field] of [['postgres', 'dsn'], ['prometheus', 'url']]) {
    const y = spawnSync('python3', ['-c', 'import sys, yaml, json; '
      + 'json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)',
    path.join(out, f + '.conf')], { encoding: 'utf8' });
    assert.strictEqual(y.status, 0, y.stderr);
    const jobs = JSON.parse(y.stdout).jobs;
    assert.ok(jobs.length >= 1);
    for (const j of jobs) {
      assert.deepStrictEqual(Object.keys(j), ['name', field]);
    }
  }
});

test('nothing changed: nothing rewritten, nobody restarted', async () => {
  const before = [stamp('postgres'), stamp('prometheus')];
  const r = await once();
  assert.strictEqual(r.code, 0, r.text);
  assert.deepStrictEqual([stamp('postgres'), stamp('prometheus')], before);
  assert.strictEqual(restarts(), 1);
  assertFiles('A');
});

test('labels changed and removed', async () => {
  set(B);
  const r = await once();
  assert.strictEqual(r.code, 0, r.text);
  assertFiles('B');
  assert.strictEqual(restarts(), 2);
});

test('watch mode: an event brings the change, an idle one nothing',
     async () => {
  const c = spawn('bash', [SCRIPT], { env: env(),
                                      stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  c.stderr.on('data', (d) => { text += d; });
  try {
    for (let i = 0; i < 100 && docker.eventStreams === 0; i++) await sleep(50);
    assert.strictEqual(docker.eventStreams, 1, 'it follows /events: ' + text);
    const evUrl = docker.requests.find((q) => q.path === '/events').url;
    const filters = JSON.parse(decodeURIComponent(evUrl.split('filters=')[1]));
    assert.deepStrictEqual(filters.type, ['container', 'service']);
    assertFiles('B');
    assert.strictEqual(restarts(), 2, 'the first scan found nothing new');

    set(C);
    docker.event({ status: 'die', id: '0123456789ab', Type: 'container',
                   Action: 'die', Actor: { ID: '0123456789ab',
                   Attributes: { name: 'llmproxy_postgres.1.p0' } },
                   scope: 'local', time: 1764633700,
                   timeNano: 1764633700000000000 });
    for (let i = 0; i < 100 && (read('postgres') !== EXPECTED.C.postgres
                                || read('prometheus') !== EXPECTED.C.prometheus);
         i++) {
      await sleep(50);
    }
    assertFiles('C');
    for (let i = 0; i < 40 && restarts() < 3; i++) await sleep(50);
    assert.strictEqual(restarts(), 3);

    const s = [stamp('postgres'), stamp('prometheus')];
    const scans = docker.requests.length;
    docker.event({ Type: 'container', Action: 'start',
                   Actor: { ID: NETDATA.Id }, scope: 'local' });
    for (let i = 0; i < 100 && docker.requests.length === scans; i++) {
      await sleep(50);
    }
    await sleep(300);
    assert.ok(docker.requests.length > scans, 'the event caused a scan');
    assert.deepStrictEqual([stamp('postgres'), stamp('prometheus')], s);
    assert.strictEqual(restarts(), 3);
  } finally {
    c.kill('SIGTERM');
  }
});

test('a node that is not a manager: its containers still count', async () => {
  set(A);
  docker.notManager = true;
  const r = await once();
  docker.notManager = false;
  assert.strictEqual(r.code, 0, r.text);
  assert.strictEqual(read('postgres'), EXPECTED.A.postgres);
  assert.strictEqual(read('prometheus'), EXPECTED.A.prometheus
    .replace(/  - name: "node-exporter"\n.*\n/, ''));
});

test('no Docker API: an error, the files left as they were', async () => {
  const s = [stamp('postgres'), stamp('prometheus')];
  const c = spawnSync('bash', [SCRIPT, '--once'], { encoding: 'utf8',
    env: { ...env(), DOCKER_SOCKET: path.join(dir, 'nothing.sock') } });
  assert.notStrictEqual(c.status, 0);
  assert.match(c.stderr, /does not answer/);
  assert.deepStrictEqual([stamp('postgres'), stamp('prometheus')], s);
});
