'use strict';
// A mock OpenAI-style provider: the only fake in the tests (providers are
// what a user does not run).  Records every request it gets.

const http = require('node:http');

function completion(model, name) {
  return {
    id: 'chatcmpl-' + name, object: 'chat.completion', created: 1700000000,
    model,
    choices: [{ index: 0, finish_reason: 'stop',
                message: { role: 'assistant', content: 'hello from ' + name } }],
    usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
  };
}

function answer(req, res, body, opts) {
  const model = body.model;
  const send = (status, obj, headers = {}) => {
    const text = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json',
                            'x-mock-name': opts.name, ...headers });
    res.end(text);
  };
  const path = req.url.replace(/\?.*$/, '');

  if (path.endsWith('/chat/completions')) {
    if (body.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream',
                           'x-mock-name': opts.name });
      const chunks = opts.chunks || 5;
      let i = 0;
      const tick = () => {
        if (res.destroyed) return;
        if (i < chunks) {
          res.write('data: ' + JSON.stringify({
            id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1,
            model, choices: [{ index: 0, delta: i === 0
              ? { role: 'assistant', content: 'c' + i } : { content: 'c' + i },
              finish_reason: null }] }) + '\n\n');
          i++;
          setTimeout(tick, opts.delay || 0);
          return;
        }
        res.write('data: ' + JSON.stringify({
          id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1,
          model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })
          + '\n\n');
        if (body.stream_options && body.stream_options.include_usage) {
          res.write('data: ' + JSON.stringify({
            id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1,
            model, choices: [],
            usage: { prompt_tokens: 11, completion_tokens: chunks,
                     total_tokens: 11 + chunks } }) + '\n\n');
        }
        res.end('data: [DONE]\n\n');
      };
      tick();
      return;
    }
    return send(200, completion(model, opts.name));
  }
  if (path.endsWith('/completions')) {
    return send(200, { id: 'cmpl-1', object: 'text_completion', created: 1,
      model, choices: [{ index: 0, text: 'hi', finish_reason: 'stop',
                         logprobs: null }],
      usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } });
  }
  if (path.endsWith('/embeddings')) {
    const vec = [0.1, 0.2, 0.3];
    const embedding = body.encoding_format === 'base64'
      ? Buffer.from(new Float32Array(vec).buffer).toString('base64') : vec;
    return send(200, { object: 'list', model,
      data: [{ object: 'embedding', index: 0, embedding }],
      usage: { prompt_tokens: 2, total_tokens: 2 } });
  }
  if (path.endsWith('/responses')) {
    return send(200, { id: 'resp_1', object: 'response', created_at: 1,
      status: 'completed', model, output: [{ type: 'message', id: 'msg_1',
        status: 'completed', role: 'assistant',
        content: [{ type: 'output_text', text: 'hi', annotations: [] }] }],
      usage: { input_tokens: 3, output_tokens: 1, total_tokens: 4 } });
  }
  return send(404, { error: { message: 'mock: no route ' + path,
                              type: 'invalid_request_error', code: null } });
}

// mode: ok, fail500, fail429, hang, garbage, closeMid, badRequest
function createMock(opts = {}) {
  const state = { mode: opts.mode || 'ok', requests: [], name: opts.name ||
                  'mock', delay: opts.delay, chunks: opts.chunks };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { raw += d; });
    req.on('end', () => {
      let body = {};
      try { body = JSON.parse(raw); } catch (e) { body = { _raw: raw }; }
      state.requests.push({ method: req.method, url: req.url,
                            headers: req.headers, body, raw });
      switch (state.mode) {
        case 'fail500':
          res.writeHead(500, { 'content-type': 'application/json' });
          return res.end(JSON.stringify({ error: { message: 'boom',
            type: 'server_error', code: null } }));
        case 'fail429':
          res.writeHead(429, { 'content-type': 'application/json',
                               'retry-after': String(opts.retryAfter || 2) });
          return res.end(JSON.stringify({ error: { message: 'slow down',
            type: 'rate_limit_error', code: 'rate_limit_exceeded' } }));
        case 'badRequest':
          res.writeHead(400, { 'content-type': 'application/json' });
          return res.end(JSON.stringify({ error: { message: 'bad input from '
            + state.name, type: 'invalid_request_error', code: 'bad' } }));
        case 'hang':
          return;          // never answers
        case 'garbage':
          req.socket.write('this is not http\r\n\r\n');
          return req.socket.destroy();
        case 'closeMid':
          res.writeHead(200, { 'content-type': 'application/json',
                               'content-length': '2000' });
          res.write('{"id":"half","choices":[');
          return setTimeout(() => req.socket.destroy(), 50);
        default:
          return answer(req, res, body, state);
      }
    });
  });
  server.keepAliveTimeout = 30000;
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = server.address().port;
      resolve({
        port, url: `http://127.0.0.1:${port}`, state,
        get requests() { return state.requests; },
        set mode(m) { state.mode = m; },
        reset() { state.requests.length = 0; },
        close() {
          server.closeAllConnections();
          return new Promise((r) => server.close(() => r()));
        },
      });
    });
  });
}

// a port nothing listens on
function closedPort() {
  return new Promise((resolve) => {
    const s = require('node:net').createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

module.exports = { createMock, closedPort };
