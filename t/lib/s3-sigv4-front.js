'use strict';
// An AWS Signature V4 checking front for s3rver (which checks none): every
// request must carry a valid `Authorization: AWS4-HMAC-SHA256 ...` for one
// of the front's credentials, a signed x-amz-date within 15 minutes, and
// for service "s3" a signed x-amz-content-sha256 equal to the SHA-256 of
// the body actually received.  Good requests go on to s3rver without
// their signature; bad ones get S3's 403 XML error.
//
//   const front = await startS3Front({ target: 'http://127.0.0.1:PORT',
//     credentials: { AKID: 'secret' }, region: 'us-east-1' });
//   front.url, front.requests (method, path, query, status), front.rejected
//   front.faults.failPart = n   // UploadPart n answers 500 (every time)
//   front.faults.dropAfter = n  // the nth request on gets its socket cut
//   await front.close()
//
// verifySigV4() and signV4() are exported for the unit-style test against
// AWS's published test vectors.

const http = require('node:http');
const crypto = require('node:crypto');

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const hmac = (k, s) => crypto.createHmac('sha256', k).update(s).digest();

// RFC 3986: only A-Z a-z 0-9 - _ . ~ stay as they are
function uriEncode(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g,
    (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function uriDecode(s) {
  try { return decodeURIComponent(s); } catch (e) { return s; }
}

function canonicalQuery(raw) {
  if (!raw) return '';
  return raw.split('&').filter((p) => p !== '').map((p) => {
    const i = p.indexOf('=');
    const k = i < 0 ? p : p.slice(0, i);
    const v = i < 0 ? '' : p.slice(i + 1);
    return [uriEncode(uriDecode(k)), uriEncode(uriDecode(v))];
  }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1
                     : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => k + '=' + v).join('&');
}

// S3 signs the path encoded once; other services encode it twice
function canonicalPath(path, service) {
  const once = path.split('/').map((s) => uriEncode(uriDecode(s))).join('/');
  return service === 's3' ? once
    : once.split('/').map((s) => uriEncode(s)).join('/');
}

function canonicalRequest({ method, path, query, headers, signed,
                            payloadHash, service }) {
  const lines = signed.map((h) => {
    const v = headers[h];
    const vals = Array.isArray(v) ? v : [v];
    return h + ':' + vals.map((x) => String(x).trim().replace(/\s+/g, ' '))
      .join(',');
  });
  return [method, canonicalPath(path, service), canonicalQuery(query),
          lines.join('\n') + '\n', signed.join(';'), payloadHash].join('\n');
}

function signature(secret, date, region, service, amzDate, creq) {
  const scope = `${date}/${region}/${service}/aws4_request`;
  const sts = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(creq)].join('\n');
  let k = hmac('AWS4' + secret, date);
  k = hmac(k, region);
  k = hmac(k, service);
  k = hmac(k, 'aws4_request');
  return crypto.createHmac('sha256', k).update(sts).digest('hex');
}

// the Authorization header value for a request (headers: lowercase names;
// every one of them is signed)
function signV4({ method, path, query = '', headers, body = '', region,
                  service, accessKeyId, secret }) {
  const amzDate = headers['x-amz-date'];
  const signed = Object.keys(headers).map((h) => h.toLowerCase()).sort();
  const payloadHash = headers['x-amz-content-sha256'] || sha256(body);
  const creq = canonicalRequest({ method, path, query, headers, signed,
                                  payloadHash, service });
  const sig = signature(secret, amzDate.slice(0, 8), region, service,
                        amzDate, creq);
  return `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${amzDate.slice(0, 8)}/`
    + `${region}/${service}/aws4_request, SignedHeaders=${signed.join(';')}, `
    + `Signature=${sig}`;
}

// {ok: true} or {ok: false, code, reason}; headers: lowercase names, values
// a string or an array (repeated headers); now: ms, null to skip the clock
function verifySigV4({ method, path, query = '', headers, body = '',
                       credentials, region, service, now = Date.now() }) {
  const fail = (code, reason) => ({ ok: false, code, reason });
  const auth = headers.authorization;
  if (!auth) return fail('AccessDenied', 'no Authorization header');
  const m = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/
    .exec(auth);
  if (!m) return fail('AuthorizationHeaderMalformed', 'not AWS4-HMAC-SHA256');
  const [, akid, date, reg, svc, signedList, sig] = m;
  const secret = credentials[akid];
  if (secret === undefined) {
    return fail('InvalidAccessKeyId', 'unknown access key id');
  }
  if (reg !== region || svc !== service) {
    return fail('AuthorizationHeaderMalformed', `scope ${reg}/${svc}`);
  }
  const signed = signedList.split(';');
  for (const h of ['host', 'x-amz-date']) {
    if (!signed.includes(h)) return fail('AccessDenied', h + ' not signed');
  }
  const amzDate = headers['x-amz-date'];
  if (!/^\d{8}T\d{6}Z$/.test(amzDate || '') || amzDate.slice(0, 8) !== date) {
    return fail('AccessDenied', 'x-amz-date missing or not the scope date');
  }
  if (now !== null) {
    const t = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1,
                       +amzDate.slice(6, 8), +amzDate.slice(9, 11),
                       +amzDate.slice(11, 13), +amzDate.slice(13, 15));
    if (Math.abs(now - t) > 15 * 60 * 1000) {
      return fail('RequestTimeTooSkewed', 'x-amz-date too far from now');
    }
  }
  if (headers['x-amz-security-token'] !== undefined
      && !signed.includes('x-amz-security-token')) {
    return fail('AccessDenied', 'x-amz-security-token not signed');
  }
  for (const h of signed) {
    if (headers[h] === undefined) {
      return fail('AccessDenied', 'signed header ' + h + ' missing');
    }
  }
  let payloadHash = sha256(body);
  if (service === 's3') {
    const claimed = headers['x-amz-content-sha256'];
    if (!claimed || !signed.includes('x-amz-content-sha256')) {
      return fail('InvalidRequest', 'x-amz-content-sha256 missing or '
                  + 'unsigned');
    }
    if (claimed !== payloadHash) {
      return fail('XAmzContentSHA256Mismatch', 'x-amz-content-sha256 is '
                  + 'not the SHA-256 of the body received');
    }
  }
  const creq = canonicalRequest({ method, path, query, headers, signed,
                                  payloadHash, service });
  const want = signature(secret, date, region, service, amzDate, creq);
  if (!crypto.timingSafeEqual(Buffer.from(want), Buffer.from(sig))) {
    return fail('SignatureDoesNotMatch', 'signature mismatch', creq);
  }
  return { ok: true, accessKeyId: akid };
}

function startS3Front({ target, credentials, region = 'us-east-1',
                        sessionTokens = {} }) {
  const t = new URL(target);
  const front = { requests: [], rejected: [], faults: {} };
  let count = 0;

  const server = http.createServer((req, res) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      const q = req.url.indexOf('?');
      const path = q < 0 ? req.url : req.url.slice(0, q);
      const query = q < 0 ? '' : req.url.slice(q + 1);
      const headers = {};
      for (const [k, v] of Object.entries(req.headersDistinct)) {
        headers[k] = v.length === 1 ? v[0] : v;
      }
      const entry = { method: req.method, path, query,
                      bytes: body.length };
      front.requests.push(entry);
      count++;

      const reject = (status, code, reason) => {
        entry.status = status;
        front.rejected.push({ ...entry, code, reason });
        res.writeHead(status, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}`
                + `</Code><Message>${reason}</Message></Error>`);
      };

      if (front.faults.dropAfter && count >= front.faults.dropAfter) {
        entry.status = 'dropped';
        req.socket.destroy();
        return;
      }
      const v = verifySigV4({ method: req.method, path, query, headers, body,
                              credentials, region, service: 's3' });
      if (!v.ok) return reject(403, v.code, v.reason);
      const token = sessionTokens[v.accessKeyId];
      if (token !== undefined && headers['x-amz-security-token'] !== token) {
        return reject(403, 'InvalidToken', 'session token');
      }
      if (front.intercept) {
        const own = front.intercept({ method: req.method, path, query });
        if (own) {
          entry.status = own.status;
          res.writeHead(own.status, { 'content-type': 'application/xml' });
          return res.end(own.body || '');
        }
      }
      const pn = /(?:^|&)partNumber=(\d+)/.exec(query);
      if (pn && front.faults.failPart === Number(pn[1])) {
        return reject(500, 'InternalError', 'injected failure');
      }

      const fwd = { ...req.headers };
      delete fwd.authorization;
      delete fwd['x-amz-security-token'];
      fwd['content-length'] = String(body.length);
      delete fwd['transfer-encoding'];
      delete fwd.expect;
      const up = http.request({ host: t.hostname, port: t.port,
                                method: req.method, path: req.url,
                                headers: fwd }, (r) => {
        entry.status = r.statusCode;
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      });
      up.on('error', (e) => reject(502, 'InternalError', e.message));
      up.end(body);
    });
  });

  front.close = () => new Promise((r) => {
    server.closeAllConnections();
    server.close(() => r());
  });

  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      front.port = server.address().port;
      front.url = `http://127.0.0.1:${front.port}`;
      resolve(front);
    });
  });
}

// s3rver on a free port with its files in dir, behind a checking front.
// s3rver 3.7 has no AbortMultipartUpload and no ListMultipartUploads: the
// front answers both from s3rver's store (dir/BUCKET/._S3rver_uploads/ID)
async function startS3({ dir, credentials, region = 'us-east-1',
                         buckets = [], sessionTokens = {} }) {
  const S3rver = require('s3rver');
  const s3rver = new S3rver({ address: '127.0.0.1', port: 0, silent: true,
                              directory: dir, vhostBuckets: false,
                              configureBuckets: buckets.map((name) =>
                                ({ name })) });
  const addr = await s3rver.run();
  const front = await startS3Front({
    target: `http://127.0.0.1:${addr.port}`, credentials, region,
    sessionTokens });
  const fs = require('node:fs');
  const pathm = require('node:path');
  const uploads = (bucket) => pathm.join(dir, bucket, '._S3rver_uploads');
  front.intercept = ({ method, path, query }) => {
    const bucket = path.split('/')[1];
    const id = /(?:^|&)uploadId=([0-9a-f]+)(?:&|$)/.exec(query);
    if (method === 'DELETE' && id) {
      const d = pathm.join(uploads(bucket), id[1]);
      if (!fs.existsSync(d)) return { status: 404, body: '<Error><Code>'
                                        + 'NoSuchUpload</Code></Error>' };
      fs.rmSync(d, { recursive: true, force: true });
      return { status: 204 };
    }
    if (method === 'GET' && path === '/' + bucket
        && /(?:^|&)uploads(=|&|$)/.test(query)) {
      let ids = [];
      try { ids = fs.readdirSync(uploads(bucket)); } catch (e) { /* none */ }
      return { status: 200, body: '<ListMultipartUploadsResult>'
        + ids.map((u) => `<Upload><UploadId>${u}</UploadId></Upload>`)
          .join('') + '</ListMultipartUploadsResult>' };
    }
    return null;
  };
  const close = front.close;
  front.s3rverUrl = `http://127.0.0.1:${addr.port}`;
  front.close = async () => { await close(); await s3rver.close(); };
  return front;
}

module.exports = { verifySigV4, signV4, canonicalRequest, canonicalQuery,
                   startS3Front, startS3, sha256 };
