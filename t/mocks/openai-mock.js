'use strict';
// A mock OpenAI-compatible provider: the only fake in the tests (providers
// are what a user does not run).  An http server in the test process that
// records every request it gets (method, path, headers, parsed body) and
// answers according to its mode, which a test may change at any time:
//
//   ok             realistic OpenAI bodies with `usage`, echoing the model;
//                  stream=true answers SSE chunk by chunk (`delay` ms apart)
//   fail500        500 with an OpenAI error body
//   fail429        429 with `retry-after: <retryAfter, default 2>`
//   hang           reads the request and never answers
//   garbage        writes bytes that are not HTTP, then closes
//   closeMid       sends headers and half of the body, then destroys the
//                  socket
//   badRequest400  400 with an OpenAI error body (alias: badRequest)
//   halfLength     200 with a chat completion's content-length and half of
//                  it, then closes the connection (FIN)
//   cutChunked     200 chunked, half of a chat completion, then closes
//                  without the last chunk
//   resetMid       like halfLength, but the connection is reset (RST)
//   junkBody       200 application/json whose body is not JSON
//   junkStream     200 text/event-stream whose event is not JSON
//   hugeLength     200 announcing 40 MB, a few bytes of them, then closes
//   junkClose      200 application/json, neither length nor chunks (the
//                  body ends with the connection), not JSON
//   fullHeader     a chat completion, chunked, whose status line and
//                  headers are exactly 16384 bytes (nginx's buffer_size)
//   badChunked     200 chunked, whose chunk size is not hexadecimal
//   stall          a stream: headers and two chunks, then nothing (the
//                  connection stays open until close())
//   slowBody       200 with a chat completion's content-length and half
//                  of it at once, the rest `delay` ms later
// (these on every path, whatever the interface)
//
// Besides OpenAI's paths it answers Anthropic's (/v1/messages) and
// Gemini's (/v1beta/models/M:method) natively, each checking the request
// is in its own format (native-formats.js); tools in a request get a tool
// call, a tool result gets a text answer.
//
// Every HTTP answer carries `x-mock-name: <name>`.

const http = require('node:http');
const net = require('node:net');
const native = require('./native-formats');

const MODES = ['ok', 'fail500', 'fail429', 'hang', 'garbage', 'closeMid',
               'badRequest400', 'badRequest', 'halfLength', 'cutChunked',
               'resetMid', 'junkBody', 'junkStream', 'hugeLength',
               'junkClose', 'fullHeader', 'badChunked', 'stall',
               'slowBody'];

function chatCompletion(model, name, content, usage, details = {}) {
  return {
    id: 'chatcmpl-' + name, object: 'chat.completion', created: 1700000000,
    model, system_fingerprint: 'fp_mock',
    choices: [{ index: 0, finish_reason: 'stop', logprobs: null,
                message: { role: 'assistant',
                           content: content || 'hello from ' + name,
                           refusal: null } }],
    usage: usage ? { prompt_tokens: usage.prompt_tokens,
                     completion_tokens: usage.completion_tokens,
                     total_tokens: usage.prompt_tokens
                                   + usage.completion_tokens, ...details }
                 : { prompt_tokens: 11, completion_tokens: 7,
                     total_tokens: 18, ...details },
  };
}

function chunk(model, delta, finish, extra = {}) {
  return { id: 'chatcmpl-s', object: 'chat.completion.chunk',
           created: 1700000000, model,
           choices: [{ index: 0, delta, finish_reason: finish,
                       logprobs: null }], ...extra };
}

// what OpenAI's API refuses: other styles' fields, unknown roles
const OPENAI_ROLES = ['system', 'developer', 'user', 'assistant', 'tool',
                      'function'];
function openaiProblem(body) {
  for (const k of ['contents', 'system', 'systemInstruction',
                   'generationConfig', 'stop_sequences', 'max_output_tokens']) {
    if (k in body) return `Unrecognized request argument supplied: ${k}`;
  }
  if (!Array.isArray(body.messages)) return 'messages: expected an array';
  for (const [i, m] of body.messages.entries()) {
    if (!OPENAI_ROLES.includes(m.role)) {
      return `messages[${i}].role: invalid value "${m.role}"`;
    }
    for (const c of Array.isArray(m.content) ? m.content : []) {
      if (!['text', 'image_url', 'input_audio', 'file'].includes(c.type)) {
        return `messages[${i}].content: invalid part type ${c.type}`;
      }
    }
    if (m.role === 'tool' && typeof m.tool_call_id !== 'string') {
      return `messages[${i}].tool_call_id: required`;
    }
  }
  for (const t of body.tools || []) {
    if (t.type !== 'function' || !t.function || !t.function.name) {
      return 'tools: expected {type:"function",function:{name,...}}';
    }
  }
  return null;
}

function stream(res, body, st, turn) {
  const model = body.model;
  res.writeHead(200, { 'content-type': 'text/event-stream',
                       'cache-control': 'no-cache',
                       'x-mock-name': st.name });
  res.flushHeaders();
  const chunks = st.chunks, delay = st.delay;   // fixed per stream
  let i = 0;
  if (turn && turn.tool) {
    const args = turn.tool.arguments;
    const pieces = [
      chunk(model, { role: 'assistant', content: null, tool_calls: [{
        index: 0, id: 'call_mock1', type: 'function',
        function: { name: turn.tool.name, arguments: '' } }] }, null),
      chunk(model, { tool_calls: [{ index: 0,
        function: { arguments: args.slice(0, 5) } }] }, null),
      chunk(model, { tool_calls: [{ index: 0,
        function: { arguments: args.slice(5) } }] }, null),
      chunk(model, {}, 'tool_calls')];
    const out = pieces.map((c) => 'data: ' + JSON.stringify(c) + '\n\n');
    if (body.stream_options && body.stream_options.include_usage) {
      const u = st.usage || { prompt_tokens: 11, completion_tokens: 7 };
      out.push('data: ' + JSON.stringify({ id: 'chatcmpl-s',
        object: 'chat.completion.chunk', created: 1700000000, model,
        choices: [], usage: { ...u, total_tokens: u.prompt_tokens
                                                  + u.completion_tokens } })
        + '\n\n');
    }
    out.push('data: [DONE]\n\n');
    return native.writeSlowly(res, out, delay);
  }
  const text = (turn && turn.text) || st.content;
  const tick = () => {
    if (res.destroyed) return;
    if (text && i === 0) {
      res.write('data: ' + JSON.stringify(chunk(model,
        { role: 'assistant', content: text }, null)) + '\n\n');
      i = chunks;
      setTimeout(tick, delay);
      return;
    }
    if (i < chunks) {
      const delta = i === 0 ? { role: 'assistant', content: 'c' + i }
                            : { content: 'c' + i };
      res.write('data: ' + JSON.stringify(chunk(model, delta, null)) + '\n\n');
      i++;
      setTimeout(tick, delay);
      return;
    }
    res.write('data: ' + JSON.stringify(chunk(model, {}, 'stop')) + '\n\n');
    if (body.stream_options && body.stream_options.include_usage
        && !st.noUsage) {
      const u = st.usage || { prompt_tokens: 11, completion_tokens: chunks };
      res.write('data: ' + JSON.stringify({
        id: 'chatcmpl-s', object: 'chat.completion.chunk',
        created: 1700000000, model, choices: [],
        usage: { prompt_tokens: u.prompt_tokens,
                 completion_tokens: u.completion_tokens,
                 total_tokens: u.prompt_tokens + u.completion_tokens,
                 ...native.detailsOf(st, 'openai') } })
        + '\n\n');
    }
    res.end('data: [DONE]\n\n');
  };
  tick();
}

function answer(req, res, body, st) {
  const model = body.model;
  const send = (status, obj, headers = {}) => {
    res.writeHead(status, { 'content-type': 'application/json',
                            'x-mock-name': st.name, ...headers });
    res.end(JSON.stringify(obj));
  };
  const path = req.url.replace(/\?.*$/, '');

  if (req.method === 'POST' && /\/v1\/messages(\/count_tokens)?$/.test(path)) {
    return native.anthropic(req, res, body, st);
  }
  const gm = path.match(/\/v1beta\/models\/([^:/]+):(\w+)$/);
  if (req.method === 'POST' && gm) {
    return native.gemini(req, res, body, st, decodeURIComponent(gm[1]),
                         gm[2]);
  }
  if (req.method === 'POST' && path.endsWith('/chat/completions')) {
    const problem = openaiProblem(body);
    if (problem) {
      return send(400, { error: { message: 'mock openai: ' + problem,
        type: 'invalid_request_error', param: null, code: null } });
    }
    const turn = native.openaiTurn(body);
    if (body.stream) return stream(res, body, st, turn);
    const c = chatCompletion(model, st.name,
                             turn && turn.text ? turn.text : st.content,
                             st.usage, native.detailsOf(st, 'openai'));
    if (turn && turn.tool) {
      c.choices[0].finish_reason = 'tool_calls';
      c.choices[0].message.content = null;
      c.choices[0].message.tool_calls = [{ id: 'call_mock1',
        type: 'function', function: turn.tool }];
    }
    return send(200, c);
  }
  if (req.method === 'POST' && path.endsWith('/completions')) {
    return send(200, { id: 'cmpl-' + st.name, object: 'text_completion',
      created: 1700000000, model,
      choices: [{ index: 0, text: 'hi', finish_reason: 'stop',
                  logprobs: null }],
      usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } });
  }
  if (req.method === 'POST' && path.endsWith('/embeddings')) {
    const vec = [0.1, 0.2, 0.3];
    const embedding = body.encoding_format === 'base64'
      ? Buffer.from(new Float32Array(vec).buffer).toString('base64') : vec;
    return send(200, { object: 'list', model,
      data: [{ object: 'embedding', index: 0, embedding }],
      usage: { prompt_tokens: 2, total_tokens: 2 } });
  }
  if (req.method === 'POST' && path.endsWith('/responses')) {
    return send(200, { id: 'resp_' + st.name, object: 'response',
      created_at: 1700000000, status: 'completed', model,
      output: [{ type: 'message', id: 'msg_1', status: 'completed',
                 role: 'assistant',
                 content: [{ type: 'output_text', text: 'hi',
                             annotations: [] }] }],
      usage: { input_tokens: st.usage ? st.usage.prompt_tokens : 3,
               output_tokens: st.usage ? st.usage.completion_tokens : 1,
               total_tokens: st.usage ? st.usage.prompt_tokens
                                        + st.usage.completion_tokens : 4,
               input_tokens_details: { cached_tokens: 0 },
               output_tokens_details: { reasoning_tokens: 0 },
               ...native.detailsOf(st, 'responses') } });
  }
  return send(404, { error: { message: 'mock: no route ' + req.method + ' '
                                       + path,
                              type: 'invalid_request_error', code: null } });
}

// opts: {name, mode, delay (ms between stream chunks), chunks, retryAfter,
//        content (the chat completion's answer, default "hello from NAME"),
//        withLength (answers that are not streams carry a content-length
//        instead of being chunked),
//        usage ({prompt_tokens, completion_tokens} of chat completions,
//        streamed or not; default 11 and 7, or 11 and `chunks` streamed),
//        usageDetails ({openai, responses, anthropic, gemini}: more fields
//        of each style's usage, such as {prompt_tokens_details:
//        {cached_tokens}}; none by default; `usage` sets the Responses
//        API's input and output tokens too),
//        noUsage (a chat completion stream ends without its usage chunk,
//        even when asked for it)}
function createMock(opts = {}) {
  const st = { name: opts.name || 'mock', mode: opts.mode || 'ok',
               delay: opts.delay || 0, chunks: opts.chunks || 5,
               retryAfter: opts.retryAfter || 2, content: opts.content,
               usage: opts.usage, usageDetails: opts.usageDetails,
               withLength: !!opts.withLength, noUsage: !!opts.noUsage,
               requests: [] };
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    if (st.withLength) withLength(res);
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      const raw = Buffer.concat(parts).toString('utf8');
      let body = {};
      try { body = JSON.parse(raw); } catch (e) { body = { _raw: raw }; }
      const mode = st.mode;
      st.requests.push({ method: req.method, url: req.url,
                         path: req.url.replace(/\?.*$/, ''),
                         headers: req.headers, body, raw, mode,
                         time: Date.now() });
      const h = { 'content-type': 'application/json', 'x-mock-name': st.name };
      switch (mode) {
        case 'fail500':
          res.writeHead(500, h);
          return res.end(JSON.stringify({ error: { message: 'boom from '
            + st.name, type: 'server_error', code: null } }));
        case 'fail429':
          res.writeHead(429, { ...h, 'retry-after': String(st.retryAfter) });
          return res.end(JSON.stringify({ error: { message: 'slow down',
            type: 'rate_limit_error', code: 'rate_limit_exceeded' } }));
        case 'badRequest':
        case 'badRequest400':
          res.writeHead(400, h);
          return res.end(JSON.stringify({ error: { message: 'bad input from '
            + st.name, type: 'invalid_request_error', code: 'bad' } }));
        case 'hang':
          return;          // never answers; closed by close()
        case 'garbage':
          req.socket.write('this is not http\r\n\r\n\x00\x01\x02');
          return req.socket.destroy();
        case 'closeMid':
          if (body.stream) {
            res.writeHead(200, { ...h, 'content-type': 'text/event-stream' });
            for (const d of [{ role: 'assistant', content: 'c0' },
                             { content: 'c1' }]) {
              res.write('data: ' + JSON.stringify(chunk(body.model, d, null))
                        + '\n\n');
            }
            return setTimeout(() => req.socket.destroy(), 100);
          }
          res.writeHead(200, { ...h, 'content-length': '2000' });
          res.write('{"id":"half","object":"chat.completion","choices":[');
          return setTimeout(() => req.socket.destroy(), 50);
        case 'halfLength':
        case 'cutChunked':
        case 'resetMid': {
          const full = JSON.stringify(chatCompletion(body.model || 'm',
                                                     st.name));
          res.writeHead(200, mode === 'cutChunked' ? h
            : { ...h, 'content-length': String(Buffer.byteLength(full)) });
          res.write(full.slice(0, full.length >> 1));
          return setTimeout(() => (mode === 'resetMid'
            ? req.socket.resetAndDestroy() : req.socket.end()), 50);
        }
        case 'junkBody': {
          const junk = '<html><body>upstream hiccup</body></html>';
          res.writeHead(200, { ...h, 'content-length': String(junk.length) });
          return res.end(junk);
        }
        case 'junkStream':
          res.writeHead(200, { ...h, 'content-type': 'text/event-stream' });
          res.write('data: {"oops\n\n');
          return setTimeout(() => res.end('data: [DONE]\n\n'), 50);
        case 'junkClose':
          req.socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json'
                           + '\r\nconnection: close\r\n\r\n<html>hiccup');
          return req.socket.end();
        case 'fullHeader': {
          const full = JSON.stringify(chatCompletion(body.model || 'm',
                                                     st.name));
          let head = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n'
                     + 'transfer-encoding: chunked\r\nconnection: close\r\n'
                     + 'x-pad: ';
          head += 'p'.repeat(16384 - head.length - 4) + '\r\n\r\n';
          req.socket.write(head);
          return setTimeout(() => req.socket.end(
            Buffer.byteLength(full).toString(16) + '\r\n' + full
            + '\r\n0\r\n\r\n'), 50);
        }
        case 'badChunked':
          req.socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json'
                           + '\r\ntransfer-encoding: chunked\r\n\r\n'
                           + '2\r\n{"\r\nzz\r\n');
          return setTimeout(() => req.socket.end(), 50);
        case 'stall':
          res.writeHead(200, { ...h, 'content-type': 'text/event-stream' });
          for (const d of [{ role: 'assistant', content: 'c0' },
                           { content: 'c1' }]) {
            res.write('data: ' + JSON.stringify(chunk(body.model, d, null))
                      + '\n\n');
          }
          return;          // never more; closed by close()
        case 'slowBody': {
          const full = JSON.stringify(chatCompletion(body.model || 'm',
                                                     st.name, st.content,
                                                     st.usage));
          res.writeHead(200, { ...h,
            'content-length': String(Buffer.byteLength(full)) });
          res.write(full.slice(0, full.length >> 1));
          return setTimeout(() => res.end(full.slice(full.length >> 1)),
                            st.delay);
        }
        case 'hugeLength':
          res.writeHead(200, { ...h, 'content-length': String(40 << 20) });
          res.write('{"id":"huge","object":"chat.completion","choices":[');
          return setTimeout(() => req.socket.destroy(), 200);
        case 'ok':
          return answer(req, res, body, st);
        default:
          throw new Error('mock: unknown mode ' + mode);
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 30000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = server.address().port;
      resolve({
        name: st.name, port, url: `http://127.0.0.1:${port}`, state: st,
        get requests() { return st.requests; },
        get mode() { return st.mode; },
        set mode(m) {
          if (!MODES.includes(m)) throw new Error('mock: unknown mode ' + m);
          st.mode = m;
        },
        set delay(ms) { st.delay = ms; },
        set content(c) { st.content = c; },
        reset() { st.requests.length = 0; },
        close() {
          for (const s of sockets) s.destroy();
          return new Promise((r) => server.close(() => r()));
        },
      });
    });
  });
}

// the status and headers wait for the body, to be sent with its length
// (a stream's are sent as soon as it writes)
function withLength(res) {
  const writeHead = res.writeHead.bind(res);
  const end = res.end.bind(res);
  const write = res.write.bind(res);
  const flushHeaders = res.flushHeaders.bind(res);
  let head = null;
  const flush = () => {
    if (head) writeHead(...head);
    head = null;
  };
  res.writeHead = (...args) => { head = args; return res; };
  res.flushHeaders = () => { flush(); return flushHeaders(); };
  res.write = (...args) => { flush(); return write(...args); };
  res.end = (data, ...rest) => {
    if (head) {
      const [status, headers = {}] = head;
      head = null;
      writeHead(status, { ...headers, 'content-length':
                          String(data ? Buffer.byteLength(data) : 0) });
    }
    return end(data, ...rest);
  };
}

// a free port: bound on 127.0.0.1 by the kernel's choice, then released
// (also serves as "a closed port" nothing listens on)
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

module.exports = { createMock, freePort, closedPort: freePort, MODES };
