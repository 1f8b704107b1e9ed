// Property tests of the request parser: it never throws, never hangs, and never accepts what a strict reading of
// RFC 9112 refuses; valid requests built from random parts parse back to those parts.
import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { newHeadReader, scanHead } from '../../../src/proxy/http/head-reader.ts';
import { parseRequestHead, requestTarget } from '../../../src/proxy/http/request.ts';
import { STRIDE, fieldList, type Fields } from '../../../src/proxy/http/fields.ts';
import { parseFields } from '../../../src/proxy/http/parser.ts';
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
