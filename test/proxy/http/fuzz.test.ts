// Property tests of the request parser: it never throws, never hangs, and never accepts what a strict reading of
// RFC 9112 refuses; valid requests built from random parts parse back to those parts.
import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { newHeadReader, scanHead } from '../../../src/proxy/http/head-reader.ts';
import { parseRequestHead, requestTarget } from '../../../src/proxy/http/request.ts';
import { STRIDE, fieldList, type Fields } from '../../../src/proxy/http/fields.ts';
import { parseFields } from '../../../src/proxy/http/parser.ts';
import { parseResponseHead, responseReason } from '../../../src/proxy/http/response.ts';
import { newBodyReader, readBody } from '../../../src/proxy/http/body.ts';

const limits = { maxHeaderSize: 4096, maxHeaderCount: 20, maxUrlLength: 512 };
const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}$/);
const value = fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,20}[\x21-\x7e])?$/);
const path = fc.stringMatching(/^\/[A-Za-z0-9\-._~%!$&'()*+,;=:@/?]{0,40}$/);

/** Feeds raw bytes in pieces; returns the parse outcome of the first head, if complete. */
function parse(bytes: Buffer, cuts: number[]) {
  const reader = newHeadReader();
  const points = [...new Set([0, ...cuts.filter((c) => c > 0 && c < bytes.length), bytes.length])].sort((a, b) => a - b);
  for (let i = 0; i + 1 < points.length; i++) {
    const scan = scanHead(reader, bytes.subarray(points[i], points[i + 1]), 0, limits.maxHeaderSize, limits.maxUrlLength, true);
    if (scan.kind === 'incomplete') continue;
    if (scan.kind !== 'head') return { kind: scan.kind } as const;
    return parseRequestHead(scan.buf, scan.start, scan.end, limits);
  }
  return { kind: 'incomplete' } as const;
}

describe('request parser properties', () => {
  test('random bytes never throw, in any split', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.array(fc.nat(600), { maxLength: 5 }), (bytes, cuts) => {
        parse(Buffer.from(bytes), cuts);
      }),
      { numRuns: 5000 },
    );
  });

  test('mutations of a valid request either parse cleanly or are refused with a 4xx/5xx status', () => {
    const base = Buffer.from('POST /a?b=c HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nX-A: one two\r\n\r\nhello', 'latin1');
    const interesting = [0x00, 0x09, 0x0a, 0x0b, 0x0d, 0x20, 0x2c, 0x3a, 0x7f, 0xff, 0x30, 0x41];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.constantFrom(...interesting), fc.constantFrom('replace', 'insert', 'delete')), {
          minLength: 1,
          maxLength: 4,
        }),
        (edits) => {
          let b = Buffer.from(base);
          for (const [at, byte, op] of edits) {
            const i = Math.min(at, b.length - 1);
            if (op === 'replace') b[i] = byte;
            else if (op === 'insert') b = Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]);
            else b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
          }
          const r = parse(b, []);
          if (r.kind === 'request') {
            const fl = fieldList(r.fields);
            // Whatever was accepted is clean: no control bytes survive into names, values or the target.
            for (const v of [requestTarget(r), ...fl.names, ...fl.values]) expect(/[\x00-\x08\x0a-\x1f\x7f]/.test(v)).toBe(false);
            for (const n of fl.names) expect(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(n)).toBe(true);
            // Framing is unambiguous.
            const cl = fl.lower.filter((n) => n === 'content-length').length;
            const te = fl.lower.filter((n) => n === 'transfer-encoding').length;
            expect(cl <= 1 && !(cl === 1 && te > 0)).toBe(true);
          } else if (r.kind === 'error') {
            expect([400, 405, 413, 414, 417, 431, 501, 505]).toContain(r.status);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });

  test('valid requests built from random parts parse back to those parts, in any split', () => {
    fc.assert(
      fc.property(
        token,
        path,
        fc.array(fc.tuple(token, value), { maxLength: 8 }),
        fc.array(fc.nat(400), { maxLength: 4 }),
        (method, target, fields, cuts) => {
          const clean = fields.filter(([n]) => !['host', 'content-length', 'transfer-encoding', 'expect', 'connection', 'upgrade'].includes(n.toLowerCase()));
          const raw = `${method} ${target} HTTP/1.1\r\nHost: h\r\n${clean.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
          const r = parse(Buffer.from(raw, 'latin1'), cuts);
          if (r.kind !== 'request') throw new Error(`expected ${JSON.stringify(raw)} to parse, got ${JSON.stringify(r)}`);
          expect(r.method).toBe(method);
          expect(requestTarget(r)).toBe(target);
          expect(fieldList(r.fields).names.slice(1)).toEqual(clean.map(([n]) => n));
          expect(fieldList(r.fields).values.slice(1)).toEqual(clean.map(([, v]) => v));
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('a Content-Length body ends exactly at its length, whatever follows', () => {
    fc.assert(
      fc.property(fc.nat(300), fc.uint8Array({ maxLength: 400 }), (len, bytes) => {
        const r = newBodyReader({ kind: 'length', length: len });
        const buf = Buffer.from(bytes);
        const end = readBody(r, buf, 0, buf.length, null);
        expect(end).toBe(Math.min(len, buf.length));
        expect(r.done).toBe(buf.length >= len);
      }),
    );
  });
});

/** What a parsed record holds for its head: its count and the offsets and codes of its fields (not the spare room). */
function fieldsOf(f: Fields): { count: number; offs: number[]; codes: number[] } {
  return { count: f.count, offs: f.offs.slice(0, f.count * STRIDE), codes: f.codes.slice(0, f.count) };
}

describe('parseFields', () => {
  test('a head ending at its CRLFCRLF (the unbounded loops) and one cut there (the bounded loops) read alike', () => {
    const line = fc
      .array(fc.constantFrom('a', 'Z', '-', ':', ' ', '\t', '\r', '\n', '\0', 'é', '"', 'x'), { maxLength: 12 })
      .map((cs) => cs.join(''));
    fc.assert(
      fc.property(fc.array(line, { maxLength: 6 }), (lines) => {
        const text = lines.join('\r\n');
        const whole = Buffer.from(`${text}\r\n\r\n`, 'latin1');
        const cut = Buffer.from(text, 'latin1');
        const a = parseFields(whole, 0, cut.length, 100);
        const b = parseFields(cut, 0, cut.length, 100);
        if (typeof a === 'string' || typeof b === 'string') expect(a).toEqual(b);
        else expect(fieldsOf(a)).toEqual(fieldsOf(b));
      }),
      { numRuns: 20_000 },
    );
  });
});

/**
 * The request line as read before it was read in one pass (the line's end found first, then each part inside it):
 * the reference the one-pass reading must agree with, refusal reasons included.
 */
function requestLineReference(buf: Buffer, start: number, end: number, maxUrlLength: number): string {
  const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/;
  const isToken = (b: number | undefined): boolean => b !== undefined && TOKEN_RE.test(String.fromCharCode(b));
  let lineEnd = start;
  while (lineEnd < end && buf[lineEnd] !== 0x0d) lineEnd++;
  let i = start;
  while (i < lineEnd && isToken(buf[i])) i++;
  if (i === start || i === lineEnd || buf[i] !== 0x20) return `400 ${i === start ? 'malformed request line' : 'bad method'}`;
  const ts = ++i;
  let c = 0;
  while (i < lineEnd && (c = buf[i]!) > 0x20 && c !== 0x7f) i++;
  if (i === ts || i === lineEnd || c !== 0x20) {
    return `400 ${i < lineEnd && c !== 0x20 ? 'control character in the request line' : 'malformed request line'}`;
  }
  if (i - ts > maxUrlLength) return '414 request target too long';
  const vs = i + 1;
  const at = (k: number): string => String.fromCharCode(buf[vs + k] ?? 0);
  if (lineEnd - vs !== 8 || at(0) + at(1) + at(2) + at(3) + at(4) !== 'HTTP/' || at(6) !== '.') return '400 malformed HTTP version';
  const major = buf[vs + 5]! - 0x30;
  const minor = buf[vs + 7]! - 0x30;
  if (major < 0 || major > 9 || minor < 0 || minor > 9) return '400 malformed HTTP version';
  if (major !== 1) return '505 HTTP version not supported';
  if (lineEnd < end && buf[lineEnd + 1] !== 0x0a) return '400 bare CR in the request line';
  return `ok ${latin1Of(buf, start, ts - 1)} ${latin1Of(buf, ts, i)} ${minor === 0 ? 0 : 1}`;
}
const latin1Of = (b: Buffer, s: number, e: number): string => b.toString('latin1', s, e);

describe('request line', () => {
  test('read in one pass, it is accepted, split and refused exactly as when its end is found first', () => {
    const piece = fc.constantFrom('GET', 'P', ' ', '  ', '/', '/a?b', '*', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.', 'HTTP/1.11', 'http/1.1', 'HTTP/\r.1', '\r', '\n', '\t', '\0', '\x7f', '\xff', 'x', '1');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 8 }), fc.constantFrom('', '\r\nHost: h', '\r\nHost: h\r\nX: y'), (pieces, rest) => {
        const line = pieces.join('');
        const head = `${line}${rest}`;
        const buf = Buffer.from(`${head}\r\n\r\n`, 'latin1');
        const want = requestLineReference(buf, 0, head.length, 20);
        const r = parseRequestHead(buf, 0, head.length, { maxHeaderSize: 4096, maxHeaderCount: 20, maxUrlLength: 20 });
        if (r.kind === 'error') {
          // Refused after the request line (its fields, Host) is not this test's business.
          if (want.startsWith('ok')) return;
          expect([line, `${r.status} ${r.reason}`]).toEqual([line, want]);
        } else {
          expect([line, `ok ${r.method} ${latin1Of(r.fields.buf, r.targetStart, r.targetEnd)} ${r.minor}`]).toEqual([line, want]);
        }
      }),
      { numRuns: 20_000 },
    );
  });

  test('a head handed over without its CRLFCRLF after it parses as the same head with one', () => {
    const raw = 'GET /a?b=1 HTTP/1.1\r\nHost: example\r\nX-A: one';
    const cut = parseRequestHead(Buffer.from(raw, 'latin1'), 0, raw.length, limits);
    const whole = parseRequestHead(Buffer.from(`${raw}\r\n\r\n`, 'latin1'), 0, raw.length, limits);
    if (cut.kind === 'error' || whole.kind === 'error') throw new Error('expected both to parse');
    expect([cut.method, requestTarget(cut), fieldList(cut.fields)]).toEqual([whole.method, requestTarget(whole), fieldList(whole.fields)]);
    // The version alone on the line, cut right after it: still a request line.
    const bare = parseRequestHead(Buffer.from('GET / HTTP/1.0', 'latin1'), 0, 14, limits);
    expect(bare.kind === 'request' ? bare.minor : bare.reason).toBe(0);
  });
});

/** The status line as read before (its end found first, then checked): the reference for the one-pass reading. */
function statusLineReference(buf: Buffer, s: number, end: number): string {
  let lineEnd = s;
  while (lineEnd < end && buf[lineEnd] !== 0x0d) lineEnd++;
  if (lineEnd < end && buf[lineEnd + 1] !== 0x0a) return 'bare CR in the status line';
  if (lineEnd - s < 12 || latin1Of(buf, s, s + 7) !== 'HTTP/1.' || buf[s + 8] !== 0x20) return 'malformed status line';
  const minor = buf[s + 7]! - 0x30;
  if (minor < 0 || minor > 9) return 'malformed status line';
  const d = [buf[s + 9]! - 0x30, buf[s + 10]! - 0x30, buf[s + 11]! - 0x30];
  if (d[0]! < 1 || d[0]! > 5 || d.some((x) => x < 0 || x > 9)) return 'malformed status code';
  if (lineEnd > s + 12 && buf[s + 12] !== 0x20) return 'malformed status line';
  for (let i = s + 13; i < lineEnd; i++) {
    const c = buf[i]!;
    if (c !== 0x09 && (c < 0x20 || c === 0x7f)) return 'control character in the status line';
  }
  return `ok ${d.join('')} ${minor === 0 ? 0 : 1} ${latin1Of(buf, s + 13, Math.max(lineEnd, s + 13))}`;
}

describe('status line', () => {
  test('read in one pass, it is accepted and refused exactly as when its end is found first', () => {
    const piece = fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.', ' ', '200', '404', '99', '600', '1000', 'OK', 'Not Found', '\r', '\n', '\t', '\0', '\x7f', '\xff', 'x');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 7 }), fc.constantFrom('', '\r\nContent-Length: 0'), (pieces, rest) => {
        const line = pieces.join('');
        const head = `${line}${rest}`;
        const buf = Buffer.from(`${head}\r\n\r\n`, 'latin1');
        const want = statusLineReference(buf, 0, head.length);
        const r = parseResponseHead(buf, 0, head.length, 'GET', { maxHeaderSize: 4096, maxHeaderCount: 20, maxUrlLength: 512 });
        if (r.kind === 'error') {
          if (want.startsWith('ok')) return; // refused for its fields: not this test's business
          expect([line, r.reason]).toEqual([line, want]);
        } else {
          expect([line, `ok ${r.status} ${r.minor} ${responseReason(r)}`]).toEqual([line, want]);
        }
      }),
      { numRuns: 20_000 },
    );
  });
});
