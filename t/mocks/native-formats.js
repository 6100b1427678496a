'use strict';
// The Anthropic Messages and Gemini generateContent sides of the mock
// provider (openai-mock.js routes here by path), plus OpenAI tool calls.
// Each checks that the request is in its own native format, the way the
// real APIs refuse what they do not know, and answers 400 in its own error
// shape when it is not: a translation that leaks one style into another
// fails the test that sent it.
//
// Tool rounds: a request offering tools whose last turn is the user's gets
// a call of the first tool, with arguments {"city":"Paris"}; a request
// whose last turn is that tool's result gets a text answer quoting the
// result.  Usage is st.usage (default 11 prompt, 7 completion tokens);
// Gemini's adds st.thoughts as thoughtsTokenCount when set.  More of a
// style's own usage fields (cache and reasoning tokens) come from
// st.usageDetails.anthropic / .gemini, merged into its usage object (for
// Anthropic streams: message_start's).
//
// Reasoning: an Anthropic request with `thinking` gets a thinking block
// (signature "sig-mock") first, and is refused as the real API refuses
// it (budget under 1024, max_tokens not above it, a temperature, a tool
// round whose assistant turn does not start with a thinking block); a
// Gemini request with thinkingConfig.includeThoughts gets a thought part,
// its function calls a thoughtSignature ("gsig-mock") that, as Gemini 3
// wants, must come back with each call of the history.

const usageOf = (st) => st.usage || { prompt_tokens: 11,
                                      completion_tokens: 7 };
const detailsOf = (st, style) => (st.usageDetails || {})[style] || {};

function anthropicError(res, st, status, message) {
  res.writeHead(status, { 'content-type': 'application/json',
                          'x-mock-name': st.name });
  res.end(JSON.stringify({ type: 'error',
    error: { type: 'invalid_request_error', message } }));
}

function geminiError(res, st, status, message) {
  res.writeHead(status, { 'content-type': 'application/json',
                          'x-mock-name': st.name });
  res.end(JSON.stringify({ error: { code: status, message,
                                    status: 'INVALID_ARGUMENT' } }));
}

// -- Anthropic ---------------------------------------------------------------

const ANTHROPIC_FIELDS = new Set(['model', 'messages', 'system', 'max_tokens',
  'metadata', 'stop_sequences', 'stream', 'temperature', 'top_p', 'top_k',
  'tools', 'tool_choice', 'thinking', 'service_tier']);

function anthropicProblem(req, body) {
  if (!req.headers['anthropic-version']) return 'anthropic-version missing';
  if (typeof body.model !== 'string') return 'model: expected a string';
  if (!Number.isInteger(body.max_tokens) && !req.url.includes('count_tokens')) {
    return 'max_tokens: required';
  }
  for (const k of Object.keys(body)) {
    if (!ANTHROPIC_FIELDS.has(k)) return `${k}: Extra inputs are not permitted`;
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return 'messages: at least one message is required';
  }
  if (body.system !== undefined && typeof body.system !== 'string'
      && !Array.isArray(body.system)) return 'system: string or blocks';
  let prev = null;
  for (const [i, m] of body.messages.entries()) {
    if (m.role !== 'user' && m.role !== 'assistant') {
      return `messages.${i}.role: unexpected role "${m.role}"`;
    }
    if (m.role === prev) return `messages.${i}: roles must alternate`;
    prev = m.role;
    if (typeof m.content !== 'string' && !Array.isArray(m.content)) {
      return `messages.${i}.content: string or blocks`;
    }
    for (const b of Array.isArray(m.content) ? m.content : []) {
      if (!['text', 'image', 'tool_use', 'tool_result', 'document',
            'thinking', 'redacted_thinking']
          .includes(b.type)) return `messages.${i}: block type ${b.type}`;
      if (b.type === 'thinking' && (m.role !== 'assistant'
          || typeof b.signature !== 'string' || !b.signature)) {
        return `messages.${i}: thinking needs a signature`;
      }
      if (b.type === 'tool_use' && m.role !== 'assistant') {
        return 'tool_use outside an assistant turn';
      }
      if (b.type === 'tool_result' && m.role !== 'user') {
        return 'tool_result outside a user turn';
      }
      if (b.type === 'image' && !(b.source && ['base64', 'url']
          .includes(b.source.type))) return 'image: bad source';
    }
  }
  if (body.messages[0].role !== 'user') return 'first message must be user';
  if (body.thinking !== undefined) {
    const t = body.thinking;
    if (t.type !== 'enabled' || !Number.isInteger(t.budget_tokens)
        || t.budget_tokens < 1024) return 'thinking.budget_tokens: >= 1024';
    if (body.max_tokens <= t.budget_tokens) {
      return 'max_tokens must be greater than thinking.budget_tokens';
    }
    if (body.temperature !== undefined && body.temperature !== 1) {
      return 'temperature may only be set to 1 when thinking is enabled';
    }
    const last = body.messages[body.messages.length - 1];
    const prev = body.messages[body.messages.length - 2];
    if (Array.isArray(last.content)
        && last.content.some((b) => b.type === 'tool_result') && prev
        && (!Array.isArray(prev.content) || !['thinking', 'redacted_thinking']
          .includes(prev.content[0].type))) {
      return 'Expected `thinking` or `redacted_thinking`, but found '
        + '`tool_use`. When `thinking` is enabled, a final `assistant` '
        + 'message must start with a thinking block';
    }
  }
  for (const t of body.tools || []) {
    if (typeof t.name !== 'string' || typeof t.input_schema !== 'object') {
      return 'tools: name and input_schema required';
    }
  }
  return null;
}

// what the last turn asks for: a tool call, a text answer after a tool
// result, or plain text
function anthropicTurn(body) {
  const last = body.messages[body.messages.length - 1];
  const blocks = Array.isArray(last.content) ? last.content : [];
  const result = blocks.find((b) => b.type === 'tool_result');
  if (result) {
    const text = typeof result.content === 'string' ? result.content
      : (result.content || []).map((c) => c.text || '').join('');
    return { text: 'tool said: ' + text };
  }
  if (body.tools && body.tools.length) {
    return { tool: { name: body.tools[0].name, input: { city: 'Paris' } } };
  }
  return null;
}

function anthropic(req, res, body, st) {
  const problem = anthropicProblem(req, body);
  if (problem) return anthropicError(res, st, 400, 'mock anthropic: '
                                                   + problem);
  const u = usageOf(st);
  const turn = anthropicTurn(body) || { text: st.content
                                              || 'hello from ' + st.name };
  if (req.url.includes('/count_tokens')) {
    res.writeHead(200, { 'content-type': 'application/json',
                         'x-mock-name': st.name });
    return res.end(JSON.stringify({ input_tokens: u.prompt_tokens }));
  }
  const thinking = body.thinking ? [{ type: 'thinking',
    thinking: 'mock thoughts', signature: 'sig-mock' }] : [];
  const content = [...thinking, ...(turn.tool
    ? [{ type: 'tool_use', id: 'toolu_mock1', name: turn.tool.name,
         input: turn.tool.input }]
    : [{ type: 'text', text: turn.text }])];
  const stop = turn.tool ? 'tool_use' : 'end_turn';
  if (!body.stream) {
    res.writeHead(200, { 'content-type': 'application/json',
                         'x-mock-name': st.name });
    return res.end(JSON.stringify({ id: 'msg_mock', type: 'message',
      role: 'assistant', model: body.model, content, stop_reason: stop,
      stop_sequence: null, usage: { input_tokens: u.prompt_tokens,
                                    output_tokens: u.completion_tokens,
                                    ...detailsOf(st, 'anthropic') } }));
  }
  res.writeHead(200, { 'content-type': 'text/event-stream',
                       'x-mock-name': st.name });
  const ev = (type, data) => `event: ${type}\ndata: `
    + JSON.stringify({ type, ...data }) + '\n\n';
  const out = [ev('message_start', { message: { id: 'msg_mock',
    type: 'message', role: 'assistant', model: body.model, content: [],
    stop_reason: null, stop_sequence: null,
    usage: { input_tokens: u.prompt_tokens, output_tokens: 1,
             ...detailsOf(st, 'anthropic') } } }),
    ev('ping', {})];
  const at = thinking.length;
  if (thinking.length) {
    out.push(ev('content_block_start', { index: 0, content_block: {
      type: 'thinking', thinking: '', signature: '' } }));
    for (const piece of ['mock ', 'thoughts']) {
      out.push(ev('content_block_delta', { index: 0, delta: {
        type: 'thinking_delta', thinking: piece } }));
    }
    out.push(ev('content_block_delta', { index: 0, delta: {
      type: 'signature_delta', signature: 'sig-mock' } }));
    out.push(ev('content_block_stop', { index: 0 }));
  }
  if (turn.tool) {
    out.push(ev('content_block_start', { index: at, content_block: {
      type: 'tool_use', id: 'toolu_mock1', name: turn.tool.name,
      input: {} } }));
    const args = JSON.stringify(turn.tool.input);
    for (const piece of [args.slice(0, 5), args.slice(5)]) {
      out.push(ev('content_block_delta', { index: at, delta: {
        type: 'input_json_delta', partial_json: piece } }));
    }
  } else {
    out.push(ev('content_block_start', { index: at,
      content_block: { type: 'text', text: '' } }));
    for (const piece of turn.text.match(/.{1,4}/g)) {
      out.push(ev('content_block_delta', { index: at,
        delta: { type: 'text_delta', text: piece } }));
    }
  }
  out.push(ev('content_block_stop', { index: at }));
  out.push(ev('message_delta', { delta: { stop_reason: stop,
    stop_sequence: null }, usage: { output_tokens: u.completion_tokens } }));
  out.push(ev('message_stop', {}));
  writeSlowly(res, out, st.delay);
}

// -- Gemini ------------------------------------------------------------------

const GEMINI_FIELDS = new Set(['contents', 'systemInstruction',
  'system_instruction', 'tools', 'toolConfig', 'tool_config',
  'generationConfig', 'generation_config', 'safetySettings',
  'safety_settings', 'cachedContent', 'labels']);

function geminiProblem(req, body) {
  if (!req.headers['x-goog-api-key'] && !/[?&]key=/.test(req.url)) {
    return 'x-goog-api-key missing';
  }
  for (const k of Object.keys(body)) {
    if (!GEMINI_FIELDS.has(k)) {
      return `Invalid JSON payload received. Unknown name "${k}"`;
    }
  }
  if (!Array.isArray(body.contents) || body.contents.length === 0) {
    return 'contents is not specified';
  }
  for (const [i, c] of body.contents.entries()) {
    if (c.role !== undefined && c.role !== 'user' && c.role !== 'model') {
      return `contents.${i}.role: "${c.role}" is not user or model`;
    }
    if (!Array.isArray(c.parts) || c.parts.length === 0) {
      return `contents.${i}.parts: required`;
    }
    for (const p of c.parts) {
      const kinds = ['text', 'inlineData', 'inline_data', 'fileData',
                     'file_data', 'functionCall', 'function_call',
                     'functionResponse', 'function_response', 'thought',
                     'thoughtSignature'];
      if (!Object.keys(p).some((k) => kinds.includes(k))) {
        return `contents.${i}.parts: unknown part ${JSON.stringify(p)}`;
      }
    }
  }
  return null;
}

function geminiTurn(body) {
  const last = body.contents[body.contents.length - 1];
  const fr = last.parts.find((p) => p.functionResponse);
  if (fr) {
    return { text: 'tool said: '
      + JSON.stringify(fr.functionResponse.response) };
  }
  const decl = (body.tools || []).flatMap((t) => t.functionDeclarations
                                                  || []);
  if (decl.length) {
    return { tool: { name: decl[0].name, args: { city: 'Paris' } } };
  }
  return null;
}

function gemini(req, res, body, st, model, method) {
  if (method === 'batchEmbedContents') {
    if (!Array.isArray(body.requests)
        || !body.requests.every((q) => q.content && q.content.parts)) {
      return geminiError(res, st, 400, 'mock gemini: requests required');
    }
    // as the real API: each request names the model of the URL
    const bad = body.requests.findIndex((q) => q.model !== 'models/' + model);
    if (bad >= 0) {
      return geminiError(res, st, 400, `mock gemini: requests[${bad}].model:`
        + ` ${JSON.stringify(body.requests[bad].model)} is not the model`
        + ` of the URL, "models/${model}"`);
    }
    res.writeHead(200, { 'content-type': 'application/json',
                         'x-mock-name': st.name });
    return res.end(JSON.stringify({ embeddings: body.requests.map(() =>
      ({ values: [0.1, 0.2, 0.3] })) }));
  }
  if (method === 'embedContent') {
    if (!body.content || !Array.isArray(body.content.parts)) {
      return geminiError(res, st, 400, 'mock gemini: content.parts required');
    }
    res.writeHead(200, { 'content-type': 'application/json',
                         'x-mock-name': st.name });
    return res.end(JSON.stringify({ embedding: { values: [0.1, 0.2, 0.3] } }));
  }
  const problem = geminiProblem(req, body);
  if (problem) return geminiError(res, st, 400, 'mock gemini: ' + problem);
  const u = usageOf(st);
  const usageMetadata = { promptTokenCount: u.prompt_tokens,
    candidatesTokenCount: u.completion_tokens,
    totalTokenCount: u.prompt_tokens + u.completion_tokens
                     + (st.thoughts || 0),
    ...(st.thoughts ? { thoughtsTokenCount: st.thoughts } : {}),
    ...detailsOf(st, 'gemini') };
  if (method === 'countTokens') {
    res.writeHead(200, { 'content-type': 'application/json',
                         'x-mock-name': st.name });
    return res.end(JSON.stringify({ totalTokens: u.prompt_tokens }));
  }
  const turn = geminiTurn(body) || { text: st.content
                                           || 'hello from ' + st.name };
  const gc = body.generationConfig || body.generation_config || {};
  const thinks = !!(gc.thinkingConfig || {}).includeThoughts;
  const thought = thinks ? [{ text: 'mock thoughts', thought: true }] : [];
  const unsigned = thinks && body.contents.some((c) => c.parts.some((p) =>
    p.functionCall && p.thoughtSignature !== 'gsig-mock'));
  if (unsigned) {
    return geminiError(res, st, 400, 'mock gemini: Function call is '
                       + 'missing a thought_signature');
  }
  const parts = [...thought, ...(turn.tool
    ? [{ functionCall: turn.tool,
         ...(thinks ? { thoughtSignature: 'gsig-mock' } : {}) }]
    : [{ text: turn.text }])];
  if (method === 'generateContent') {
    res.writeHead(200, { 'content-type': 'application/json',
                         'x-mock-name': st.name });
    return res.end(JSON.stringify({ candidates: [{ content: { role: 'model',
      parts }, finishReason: 'STOP', index: 0 }], usageMetadata,
      modelVersion: model, responseId: 'gem-mock' }));
  }
  // streamGenerateContent?alt=sse
  res.writeHead(200, { 'content-type': 'text/event-stream',
                       'x-mock-name': st.name });
  const chunk = (p, last) => 'data: ' + JSON.stringify({
    candidates: [{ content: { role: 'model', parts: p },
                   ...(last ? { finishReason: 'STOP' } : {}), index: 0 }],
    ...(last ? { usageMetadata } : {}), modelVersion: model,
    responseId: 'gem-mock' }) + '\r\n\r\n';
  const out = thought.length ? [chunk(thought, false)] : [];
  if (turn.tool) {
    out.push(chunk(parts.slice(thought.length), true));
  } else {
    const pieces = turn.text.match(/.{1,4}/g);
    pieces.forEach((t, i) => out.push(chunk([{ text: t }],
                                            i === pieces.length - 1)));
  }
  writeSlowly(res, out, st.delay);
}

// -- OpenAI tool calls ---------------------------------------------------------

function openaiTurn(body) {
  const last = (body.messages || [])[body.messages.length - 1] || {};
  if (last.role === 'tool') {
    const text = typeof last.content === 'string' ? last.content
      : (last.content || []).map((c) => c.text || '').join('');
    return { text: 'tool said: ' + text };
  }
  if (body.tools && body.tools.length) {
    return { tool: { name: body.tools[0].function.name,
                     arguments: JSON.stringify({ city: 'Paris' }) } };
  }
  return null;
}

function writeSlowly(res, pieces, delay) {
  let i = 0;
  const tick = () => {
    if (res.destroyed) return;
    if (i === pieces.length) return res.end();
    res.write(pieces[i++]);
    setTimeout(tick, delay || 0);
  };
  tick();
}

module.exports = { detailsOf, anthropic, gemini, openaiTurn, writeSlowly };
