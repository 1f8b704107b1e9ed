// bench/proxy/parse-loop.ts: the loop parse-instructions.ts counts (bundled and run under callgrind by it):
//   node parse-loop.cjs MODE N WARM   parses the bench's two heads WARM + N times (MODE: both, req or res).
import { Buffer } from 'node:buffer';
import { newFields } from '../../src/proxy/http/fields.ts';
import { newHeadReader, scanHead } from '../../src/proxy/http/head-reader.ts';
import { readResponseHead } from '../../src/proxy/http/lenient.ts';
import { parseRequestHead } from '../../src/proxy/http/request.ts';

const LIMITS = { maxHeaderSize: 16384, maxHeaderCount: 100, maxUrlLength: 8192 };
const REQUEST = 'GET / HTTP/1.1\r\nHost: 127.0.0.1:41234\r\n\r\n';
const RESPONSE =
  'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 08 Dec 2026 01:12:00 GMT\r\nContent-Type: text/plain\r\n' +
  'Content-Length: 8\r\nConnection: keep-alive\r\n\r\nnginx b\n';

function inShared(text: string): Buffer {
  const shared = Buffer.allocUnsafe(65536);
  const n = shared.write(text, 0, 'latin1');
  return shared.subarray(0, n);
}

/** The measured loop: `warm` parses, then `n` more. */
function child(mode: string, n: number, warm: number): void {
  const req = inShared(REQUEST);
  const res = inShared(RESPONSE);
  const clientReader = newHeadReader();
  const backendReader = newHeadReader();
  const requestFields = newFields();
  const responseFields = newFields();
  let sink = 0;
  const once = (): void => {
    if (mode !== 'res') {
      const scan = scanHead(clientReader, req, 0, LIMITS.maxHeaderSize, LIMITS.maxUrlLength, true);
      if (scan.kind !== 'head') throw new Error(`request head: ${scan.kind}`);
      const r = parseRequestHead(scan.buf, scan.start, scan.end, LIMITS, requestFields);
      if (r.kind !== 'request') throw new Error(`request head refused: ${r.reason}`);
      sink += r.size;
    }
    if (mode !== 'req') {
      const r = readResponseHead(backendReader, res, 0, 'GET', LIMITS, responseFields);
      if (r === null || r.kind !== 'response') throw new Error('response head not read');
      sink += r.size;
    }
  };
  for (let i = 0; i < warm; i++) once();
  for (let i = 0; i < n; i++) once();
  if (sink === 0) throw new Error('nothing parsed');
}

child(process.argv[2] ?? 'both', Number(process.argv[3] ?? 1000), Number(process.argv[4] ?? 1000));
