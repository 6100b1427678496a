'use strict';
// Providers over HTTPS (as api.openai.com, api.anthropic.com): the gateway
// speaks TLS upstream with SNI, verifies the certificate against
// llmproxy_ssl_trusted_certificate, and refuses one it cannot verify.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const https = require('node:https');
const { execFileSync } = require('node:child_process');
const OpenAI = require('openai');
const { startGateway } = require('../lib/gateway');

let dir, server, port, seen = [];

function openssl(args) {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmproxy-tls-'));
  fs.chmodSync(dir, 0o755);
  // a CA of the test's own, and a certificate for "localhost"
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
           '-subj', '/CN=llmproxy test CA', '-keyout', 'ca.key',
           '-out', 'ca.pem']);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost',
           '-keyout', 'srv.key', '-out', 'srv.csr']);
  fs.writeFileSync(path.join(dir, 'ext.cnf'),
                   'subjectAltName=DNS:localhost\n');
  openssl(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey',
           'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'ext.cnf',
           '-out', 'srv.pem']);
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);

  server = https.createServer({
    key: fs.readFileSync(path.join(dir, 'srv.key')),
    cert: fs.readFileSync(path.join(dir, 'srv.pem')),
  }, (req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      seen.push({ sni: req.socket.servername, host: req.headers.host,
                  auth: req.headers.authorization, body: JSON.parse(body) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'x', object: 'chat.completion',
        created: 1, model: 'tls-up', choices: [{ index: 0,
        finish_reason: 'stop', message: { role: 'assistant',
        content: 'over tls' } }] }));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  port = server.address().port;
});

after(async () => {
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const config = () => ({
  providers: {
    secure: { api_base: `https://localhost:${port}/v1`,
              interfaces: ['openai'], api_key: 'sk-tls-secret',
              models: { tls: { model: 'tls-up' } } },
  },
});

test('an https provider is reached with TLS, SNI and its key', async () => {
  const gw = await startGateway({ config: config(),
    httpExtra: `llmproxy_ssl_trusted_certificate ${dir}/ca.pem;` });
  try {
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: gw.masterKey,
                                maxRetries: 0 });
    for (let i = 0; i < 3; i++) {
      const r = await client.chat.completions.create({ model: 'tls',
                                                       messages: [] });
      assert.strictEqual(r.choices[0].message.content, 'over tls');
    }
    assert.strictEqual(seen[0].sni, 'localhost');
    assert.strictEqual(seen[0].host, `localhost:${port}`);
    assert.strictEqual(seen[0].auth, 'Bearer sk-tls-secret');
    assert.strictEqual(seen[0].body.model, 'tls-up');
    assert.deepStrictEqual(gw.problems(), []);
  } finally {
    await gw.stop();
  }
});

test('a certificate that does not verify is refused', async () => {
  seen = [];
  const gw = await startGateway({ config: config() });   // system CAs only
  try {
    const r = await fetch(gw.baseURL + '/chat/completions', {
      method: 'POST', headers: { authorization: 'Bearer ' + gw.masterKey },
      body: JSON.stringify({ model: 'tls', messages: [] }) });
    assert.strictEqual(r.status, 502);
    assert.strictEqual(seen.length, 0, 'no request went out');
    assert.match(gw.errorLog(), /certificate verify failed|SSL/);
  } finally {
    await gw.stop();
  }
});
