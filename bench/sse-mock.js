// A slow provider for the streams pass: every POST gets a chat completion
// streamed as SSE, one chunk every INTERVAL ms, CHUNKS of them, then a usage
// chunk and [DONE].  Prints "ready" once listening.
//
//   node bench/sse-mock.js PORT CHUNKS INTERVAL_MS
'use strict';
const http = require('http');

const port = Number(process.argv[2]);
const chunks = Number(process.argv[3] || 5);
const interval = Number(process.argv[4] || 1000);

const chunk = (i) => 'data: ' + JSON.stringify({
  id: 'chatcmpl-slow', object: 'chat.completion.chunk', model: 'mock-slow',
  choices: [{index: 0, delta: {content: 'token' + i}, finish_reason: null}],
}) + '\n\n';
const tail = 'data: ' + JSON.stringify({
  id: 'chatcmpl-slow', object: 'chat.completion.chunk', model: 'mock-slow',
  choices: [], usage: {prompt_tokens: 12, completion_tokens: chunks,
    total_tokens: 12 + chunks},
}) + '\n\ndata: [DONE]\n\n';

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, {'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache'});
    let i = 0;
    const tick = () => {
      if (res.destroyed) return;
      if (i < chunks) {
        res.write(chunk(i++));
        setTimeout(tick, interval);
      } else {
        res.end(tail);
      }
    };
    tick();
  });
});

server.keepAliveTimeout = 120000;
server.headersTimeout = 125000;
server.requestTimeout = 0;
server.listen({port, host: '127.0.0.1', backlog: 16384},
  () => console.log('ready'));
