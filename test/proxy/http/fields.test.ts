// The field-name codes the proxy acts on (fields.ts nameCode), and field lines split into a reused record
// (parser.ts parseFields): the fast loops against a plain reading of RFC 9110/9112, on both of their paths.
import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { F, STRIDE, fieldList, nameCode, newFields, type FieldCode, type Fields } from '../../../src/proxy/http/fields.ts';
import { parseFields } from '../../../src/proxy/http/parser.ts';

const KNOWN: Array<[string, FieldCode]> = [
  ['Host', F.HOST],
  ['Content-Length', F.CONTENT_LENGTH],
  ['Transfer-Encoding', F.TRANSFER_ENCODING],
  ['Connection', F.CONNECTION],
  ['Keep-Alive', F.KEEP_ALIVE],
  ['Proxy-Connection', F.PROXY_CONNECTION],
  ['TE', F.TE],
  ['Upgrade', F.UPGRADE],
  ['Expect', F.EXPECT],
  ['X-Forwarded-For', F.X_FORWARDED_FOR],
  ['X-Host', F.X_HOST],
  ['X-Forwarded-Host', F.X_FORWARDED_HOST],
  ['X-Real-IP', F.X_REAL_IP],
  ['X-Forwarded-Proto', F.X_FORWARDED_PROTO],
  ['Referer', F.REFERER],
  ['User-Agent', F.USER_AGENT],
  ['X-Reproxy-URL', F.X_REPROXY],
  ['X-Reproxy-File', F.X_REPROXY],
  ['X-Reproxy-Cache-For', F.X_REPROXY],
  ['X-Reproxy-Expected-Size', F.X_REPROXY],
  ['X-Reproxy-Service', F.X_REPROXY],
];

const codeOf = (name: string): FieldCode => {
  const b = Buffer.from(`  ${name}:`, 'latin1');
  return nameCode(b, 2, 2 + name.length);
};

describe('nameCode', () => {
  test('knows every field the proxy acts on, in any case', () => {
    for (const [name, code] of KNOWN) {
      expect([name, codeOf(name)]).toEqual([name, code]);
      expect([name, codeOf(name.toLowerCase())]).toEqual([name, code]);
      expect([name, codeOf(name.toUpperCase())]).toEqual([name, code]);
    }
  });

  test('a name of the same length and first letter that differs in one byte is OTHER', () => {
    for (const [name] of KNOWN) {
      for (let k = 0; k < name.length; k++) {
        // A byte that does not fold onto the original: a digit, or `!` where the original is a digit or `-`.
        const swap = /[a-z]/i.test(name[k]!) ? '7' : '!';
        const near = name.slice(0, k) + swap + name.slice(k + 1);
        expect([near, codeOf(near)]).toEqual([near, F.OTHER]);
      }
    }
  });

  test('names no known name has the length or first letter of are OTHER', () => {
    for (const name of ['Date', 'Server', 'Content-Type', 'Accept', 'ETag', 'Last-Modified', 'Set-Cookie', 'X', 'hos', 'hostt']) {
      expect([name, codeOf(name)]).toEqual([name, F.OTHER]);
    }
    expect(codeOf('X-Reproxy-Expected-Size-And-More')).toBe(F.OTHER);
    expect(codeOf('x'.repeat(300))).toBe(F.OTHER);
    // Token bytes that share a known name's shape only through `& 31` (`-` and `M`, `!` and `A`).
    expect(codeOf('-ost')).toBe(F.OTHER);
    expect(codeOf('(ost')).toBe(F.OTHER);
  });
});

/** A plain reading of the field-line grammar: each line `token ":" OWS value OWS`, value bytes VCHAR/obs-text/SP/HTAB. */
function reference(text: string): Array<[string, string]> | 'refused' {
  if (text.length === 0) return [];
  const out: Array<[string, string]> = [];
  for (const line of text.split('\r\n')) {
    const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/s.exec(line);
    if (m === null || /[^\t\x20-\x7e\x80-\xff]/.test(m[2]!)) return 'refused';
    out.push([m[1]!, m[2]!]);
  }
  return out;
}

function pairs(f: Fields): Array<[string, string]> {
  const l = fieldList(f);
  return l.names.map((n, i) => [n, l.values[i]!]);
}

describe('parseFields', () => {
  const byte = fc.constantFrom('a', 'Z', '-', ':', ' ', '\t', '\r', '\n', '\0', '\x7f', '\x01', 'é', '\xff', '"', '~', 'x');
  const line = fc.array(byte, { maxLength: 14 }).map((cs) => cs.join(''));

  test('accepts and splits exactly what the grammar accepts: a head ending at its CRLFCRLF, and one cut there', () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 6 }), (lines) => {
        const text = lines.join('\r\n');
        // `end` is where the first CRLFCRLF starts: the text before it never ends with a CRLF.
        fc.pre(!text.endsWith('\r\n'));
        const want = reference(text);
        // The proxy's readers hand over heads followed by their CRLFCRLF (the unbounded loops); other callers may
        // not (the bounded loops).
        for (const buf of [Buffer.from(`${text}\r\n\r\n`, 'latin1'), Buffer.from(text, 'latin1')]) {
          const got = parseFields(buf, 0, text.length, 100);
          if (want === 'refused') expect(typeof got).toBe('string');
          else if (typeof got === 'string') throw new Error(`${JSON.stringify(text)} refused (${got}), expected ${JSON.stringify(want)}`);
          else expect(pairs(got)).toEqual(want);
        }
      }),
      { numRuns: 20_000 },
    );
  });

  test('values of every length up to 40 are split whole, whichever of a turn of the byte loop ends them', () => {
    for (let n = 0; n <= 40; n++) {
      const value = 'abcdefghij0123456789ABCDEFGHIJ!#$%&*+-.^'.slice(0, n);
      const name = 'X-Long-Name-'.slice(0, 1 + (n % 12));
      const text = `${name}: ${value}\r\nHost: h`;
      const f = parseFields(Buffer.from(`${text}\r\n\r\n`, 'latin1'), 0, text.length, 100);
      if (typeof f === 'string') throw new Error(`refused: ${f}`);
      expect(pairs(f)).toEqual([
        [name, value],
        ['Host', 'h'],
      ]);
    }
  });

  test('refuses, on both paths, a NUL, a bare CR, a bare LF or DEL in a value, and a name without a colon', () => {
    const cases: Array<[string, string]> = [
      ['X-A: a\0b', 'control character or NUL in a header value'],
      ['X-A: a\x7fb', 'control character or NUL in a header value'],
      ['X-A: a\rb', 'bare CR in a header line'],
      ['X-A: a\nb', 'bare LF in a header line'],
      ['X-A a', 'whitespace before the colon in a header'],
      ['X-A', 'header line without a colon'],
      [' X-A: a', 'obs-fold (line folding) is not allowed'],
      [': a', 'empty header name'],
      ['X(A): a', 'bad header name'],
    ];
    for (const [text, reason] of cases) {
      for (const buf of [Buffer.from(`Host: h\r\n${text}\r\n\r\n`, 'latin1'), Buffer.from(`Host: h\r\n${text}`, 'latin1')]) {
        expect([text, parseFields(buf, 0, text.length + 9, 100)]).toEqual([text, reason]);
      }
    }
  });

  test('keeps obs-text and inner tabs in a value (latin1), trimming only the ends', () => {
    const text = 'X-A: \tcaf\xe9\tau\xa0lait \t\r\nX-B:\xff';
    const f = parseFields(Buffer.from(`${text}\r\n\r\n`, 'latin1'), 0, text.length, 100);
    if (typeof f === 'string') throw new Error(`refused: ${f}`);
    expect(pairs(f)).toEqual([
      ['X-A', 'caf\xe9\tau\xa0lait'],
      ['X-B', '\xff'],
    ]);
  });

  test('one field over max_header_count is refused', () => {
    const lines = Array.from({ length: 5 }, (_, i) => `X-${i}: v`);
    const text = lines.join('\r\n');
    expect(typeof parseFields(Buffer.from(`${text}\r\n\r\n`, 'latin1'), 0, text.length, 5)).toBe('object');
    expect(parseFields(Buffer.from(`${text}\r\n\r\n`, 'latin1'), 0, text.length, 4)).toBe('too many header fields');
  });

  test('a reused record holds exactly the latest head: its count, offsets and codes, none of a longer one before it', () => {
    const f = newFields();
    const long = Array.from({ length: 30 }, (_, i) => `X-${i}: ${'v'.repeat(i)}`).join('\r\n') + '\r\nConnection: close';
    const a = parseFields(Buffer.from(`${long}\r\n\r\n`, 'latin1'), 0, long.length, 100, f);
    expect(a).toBe(f);
    expect(f.count).toBe(31);
    const short = 'Host: h\r\nContent-Length: 3';
    const b = parseFields(Buffer.from(`${short}\r\n\r\n`, 'latin1'), 0, short.length, 100, f);
    expect(b).toBe(f);
    expect(pairs(f)).toEqual([
      ['Host', 'h'],
      ['Content-Length', '3'],
    ]);
    expect([f.codes[0], f.codes[1]]).toEqual([F.HOST, F.CONTENT_LENGTH]);
    expect(f.offs.slice(0, 2 * STRIDE)).toEqual([0, 4, 6, 7, 7, 9, 23, 25, 26, 26]);
    // Refused, a head leaves nothing half-parsed that a caller could mistake for it: the error is the result.
    expect(parseFields(Buffer.from('X-A: a\0\r\n\r\n', 'latin1'), 0, 7, 100, f)).toBe('control character or NUL in a header value');
  });
});
