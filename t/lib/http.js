'use strict';
// Raw HTTP helpers for tests that care which connection (and so which
// nginx worker) carries a request.

const http = require('node:http');

// POST JSON; agent false = a fresh TCP connection for this request only
function postJSON(url, key, obj, { agent = false, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const body = typeof obj === 'string' ? obj : JSON.stringify(obj);
    const req = http.request(url, {
      method: 'POST', agent,
      headers: { authorization: 'Bearer ' + key,
                 'content-type': 'application/json',
                 'content-length': Buffer.byteLength(body), ...headers },
    }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text,
                  body: json });
      });
      res.on('error', reject);
    });
    req.setTimeout(60000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

// one keep-alive connection: every request on it goes to the same worker
function oneConnection() {
  return new http.Agent({ keepAlive: true, maxSockets: 1 });
}

module.exports = { postJSON, oneConnection };
