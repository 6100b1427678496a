'use strict';
// A fake Docker Engine API on a unix socket, for the Netdata discovery
// generator: it serves the recorded answers a test sets (GET /services,
// GET /containers/json), keeps GET /events streams open for the test to
// push events into, and records every request (POST /containers/ID/restart
// among them).
//
//   const d = await fakeDocker(sockPath);
//   d.services = [...]; d.containers = [...]; d.notManager = true;
//   d.event({Type: 'container', Action: 'start', ...});
//   d.requests  [{method, path}],  d.eventStreams (open ones),  d.close()

const http = require('node:http');

function fakeDocker(sockPath) {
  const st = { services: [], containers: [], notManager: false,
               requests: [], streams: new Set() };
  const json = (res, status, obj) => {
    res.writeHead(status, { 'content-type': 'application/json',
                            'api-version': '1.43' });
    res.end(JSON.stringify(obj));
  };
  const server = http.createServer((req, res) => {
    const path = req.url.replace(/\?.*$/, '');
    st.requests.push({ method: req.method, path, url: req.url });
    if (req.method === 'GET' && path === '/services') {
      if (st.notManager) {
        return json(res, 503, { message: 'This node is not a swarm manager.'
          + ' Use "docker swarm init" or "docker swarm join" to connect this'
          + ' node to swarm and try again.' });
      }
      return json(res, 200, st.services);
    }
    if (req.method === 'GET' && path === '/containers/json') {
      return json(res, 200, st.containers);
    }
    if (req.method === 'GET' && path === '/events') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      st.streams.add(res);
      req.on('close', () => st.streams.delete(res));
      return undefined;
    }
    const m = path.match(/^\/containers\/([0-9a-f]+)\/restart$/);
    if (req.method === 'POST' && m) {
      res.writeHead(204);
      return res.end();
    }
    return json(res, 404, { message: 'page not found' });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(sockPath, () => resolve({
      get services() { return st.services; },
      set services(v) { st.services = v; },
      get containers() { return st.containers; },
      set containers(v) { st.containers = v; },
      set notManager(v) { st.notManager = v; },
      get requests() { return st.requests; },
      get eventStreams() { return st.streams.size; },
      event(obj) {
        for (const res of st.streams) res.write(JSON.stringify(obj) + '\n');
      },
      close() {
        for (const res of st.streams) res.destroy();
        return new Promise((r) => server.close(() => r()));
      },
    }));
  });
}

module.exports = { fakeDocker };
