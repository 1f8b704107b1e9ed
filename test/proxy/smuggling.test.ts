// Request smuggling and malformed input (reference section 10): each case gets the exact status with a short
// body and a closed connection, the backend sees nothing of it, and other clients never notice.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { connect, type Socket } from 'node:net';
import type { ProxyHandle } from '../../src/proxy/index.ts';
import { rawBackend, rawRequest, startTestProxy, statusCodes, type RawBackend } from './helpers.ts';

let b: RawBackend;
let proxy: ProxyHandle;
let port: number;
let bystander: Socket;
let bystanderData = '';

beforeAll(async () => {
  b = await rawBackend('b');
  ({ proxy, port } = await startTestProxy([b.port], {
    persist_client: true,
    persist_backend: true,
    max_url_length: 100,
    max_header_size: 2048,
    max_header_count: 10,
    max_body_size: 1000,
  }));
  bystander = connect(port, '127.0.0.1');
  bystander.on('data', (d) => (bystanderData += d.toString('latin1')));
  await new Promise((r) => bystander.on('connect', r));
});

afterAll(async () => {
  bystander.destroy();
  await proxy.close({ graceful: false });
  await b.close();
});

const H = 'Host: a\r\n';
const cases: Array<[string, string, number]> = [
  ['CL.TE', `POST / HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG`, 400],
  ['TE.CL', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n`, 400],
  ['TE with a vertical tab', `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\x0bchunked\r\nContent-Length: 3\r\n\r\nabc`, 400],
  ['TE obfuscated by folding', `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE xchunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n`, 501],
  ['TE chunked, identity', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n`, 501],
  ['TE with a space before the colon', `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`, 400],
  ['two differing Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: 5\r\n\r\nhello`, 400],
  ['two equal Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`, 400],
  ['Content-Length "0, 5"', `POST / HTTP/1.1\r\n${H}Content-Length: 0, 5\r\n\r\nhello`, 400],
  ['Content-Length 0x05', `POST / HTTP/1.1\r\n${H}Content-Length: 0x05\r\n\r\nhello`, 400],
  ['Content-Length with a sign', `POST / HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`, 400],
  ['bad chunk size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`, 400],
  ['chunk size with 0x', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n`, 400],
  ['chunk data longer than its size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n`, 400],
  ['bare LF line endings', 'GET / HTTP/1.1\nHost: a\n\n', 400],
  ['bare LF inside the head', `GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n`, 400],
  ['bare CR inside a value', `GET / HTTP/1.1\r\n${H}X: a\rb\r\n\r\n`, 400],
  ['NUL in a header value', `GET / HTTP/1.1\r\n${H}X: a\x00b\r\n\r\n`, 400],
  ['obs-fold', `GET / HTTP/1.1\r\n${H}X: a\r\n b\r\n\r\n`, 400],
  ['space before a colon', `GET / HTTP/1.1\r\n${H}X : a\r\n\r\n`, 400],
  ['no Host in HTTP/1.1', 'GET / HTTP/1.1\r\nX: a\r\n\r\n', 400],
  ['two Host headers', `GET / HTTP/1.1\r\n${H}Host: b\r\n\r\n`, 400],
  ['HTTP/0.9', 'GET /\r\n\r\n', 400],
  ['garbage', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n', 400],
  ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505],
  ['a URL over max_url_length', `GET /${'a'.repeat(200)} HTTP/1.1\r\n${H}\r\n`, 414],
  ['a head over max_header_size', `GET / HTTP/1.1\r\n${H}X: ${'a'.repeat(3000)}\r\n\r\n`, 431],
  ['more fields than max_header_count', `GET / HTTP/1.1\r\n${H}${'X: a\r\n'.repeat(12)}\r\n`, 431],
  ['a body over max_body_size', `POST / HTTP/1.1\r\n${H}Content-Length: 5000\r\n\r\n`, 413],
  ['a chunked body over max_body_size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${'64\r\n' + 'x'.repeat(100) + '\r\n'}`.repeat(1) + ('64\r\n' + 'x'.repeat(100) + '\r\n').repeat(11), 413],
  ['CONNECT', `CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n`, 405],
];

describe('malformed and smuggling requests', () => {
  for (const [name, raw, status] of cases) {
    test(`${name}: ${status}, a short body, and a closed connection; the backend sees nothing`, async () => {
      const before = b.conns.join('').length;
      const r = await rawRequest(port, raw, { timeoutMs: 2000 });
      expect(statusCodes(r.data)).toEqual([status]);
      expect(r.data).toMatch(new RegExp(`^HTTP/1\\.1 ${status} [^\\r]+\\r\\nContent-Type: text/html\\r\\nContent-Length: \\d+\\r\\n`));
      expect(r.data).toContain('Connection: close\r\n');
      expect(r.closed).toBe(true);
      expect(r.ms).toBeLessThan(1000);
      const seen = b.conns.join('').slice(before);
      if (status !== 413 || !name.includes('chunked')) expect(seen).toBe('');
      else expect(seen).not.toContain('SMUGGLED');
    });
  }

  test('a pipelined request after "Content-Length: 00" is served normally (it locks Perlbal up)', async () => {
    const r = await rawRequest(port, `POST / HTTP/1.1\r\n${H}Content-Length: 00\r\n\r\nGET /second HTTP/1.1\r\n${H}\r\n`, {
      until: (d) => d.split('hello from b').length === 3,
    });
    expect(statusCodes(r.data)).toEqual([200, 200]);
  });

  test('a client kept alive meanwhile is unaffected', async () => {
    bystander.write(`GET /bystander HTTP/1.1\r\n${H}\r\n`);
    const t0 = performance.now();
    while (!bystanderData.includes('hello from b') && performance.now() - t0 < 2000) await Bun.sleep(10);
    expect(statusCodes(bystanderData)).toEqual([200]);
  });
});
