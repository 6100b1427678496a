'use strict';
// Spill files as the gateway writes them (ngx_http_llmproxy_usage_records_copy.c):
// COPY's binary header, then one tuple per usage record, no trailer.  The
// columns are NGX_HTTP_LLMPROXY_COLUMNS, in that order; { old: true } writes
// the 19 columns of the format before the token kinds (schema 6), as a
// spill file of an earlier version holds them.  Used by the usage tests
// and by bench/usage.sh.

const HEADER = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'),
                              Buffer.alloc(8)]);

const micros = (ms) => (ms - Date.UTC(2000, 0, 1)) * 1000;

function field(v, type) {
  const len = Buffer.alloc(4);
  if (v === null || v === undefined) { len.writeInt32BE(-1); return [len]; }
  let b;
  switch (type) {
  case 'uuid': b = Buffer.from(v.replace(/-/g, ''), 'hex'); break;
  case 'int4': b = Buffer.alloc(4); b.writeInt32BE(v); break;
  case 'int8': b = Buffer.alloc(8); b.writeBigInt64BE(BigInt(v)); break;
  case 'float8': b = Buffer.alloc(8); b.writeDoubleBE(v); break;
  case 'bool': b = Buffer.from([v ? 1 : 0]); break;
  default: b = Buffer.from(String(v));
  }
  len.writeInt32BE(b.length);
  return [len, b];
}

const COLUMNS = [['id', 'uuid'], ['time', 'int8'], ['hash', 'text'],
  ['alias', 'text'], ['model', 'text'], ['deployment', 'text'],
  ['iface', 'text'], ['endpoint', 'text'], ['stream', 'bool'],
  ['status', 'int4'], ['prompt', 'int8'], ['completion', 'int8'],
  ['total', 'int8'], ['cost', 'float8'], ['latency', 'int4'],
  ['ttfb', 'int4'], ['attempts', 'int4'], ['fallbacks', 'int4'],
  ['error', 'text'], ['cacheRead', 'int8'], ['cacheCreation', 'int8'],
  ['cache1h', 'int8'], ['reasoning', 'int8'], ['unpriced', 'bool'],
  ['estimated', 'bool']];

const OLD_COLUMNS = COLUMNS.slice(0, 19);

const DEFAULTS = { iface: 'openai', endpoint: 'chat/completions',
  stream: false, status: 200, prompt: 0, completion: 0, total: 0, cost: 0,
  latency: 1, ttfb: 1, attempts: 1, fallbacks: 0, error: null,
  cacheRead: 0, cacheCreation: 0, cache1h: 0, reasoning: 0, unpriced: false,
  estimated: false };

// records: objects with the fields of COLUMNS (time in ms since 1970, or
// micros: microseconds since 2000-01-01 as PostgreSQL counts them, a BigInt)
function spillFile(records, { old = false } = {}) {
  const parts = [HEADER];
  const now = Date.now();
  const columns = old ? OLD_COLUMNS : COLUMNS;
  for (const r of records) {
    const rec = { ...DEFAULTS, time: now, ...r };
    const count = Buffer.alloc(2);
    count.writeInt16BE(columns.length);
    parts.push(count);
    for (const [name, type] of columns) {
      const v = name !== 'time' ? rec[name]
        : rec.micros !== undefined ? rec.micros : micros(rec.time);
      parts.push(...field(v, type));
    }
  }
  return Buffer.concat(parts);
}

module.exports = { spillFile };
