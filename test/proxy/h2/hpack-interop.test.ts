// Independent decoders and encoders: nghttp (nghttp2's client) and node:http2 (under bun, Bun's own HTTP/2 with
// ls-hpack; under node, nghttp2) as clients of a tiny cleartext HTTP/2 server built
// from this codec (frame reader, HPACK decoder for its requests, HPACK encoder + frame writer for the responses).
// A real decoder reading our response heads (dynamic table, Huffman, evictions, CONTINUATION, a size update after its
// SETTINGS_HEADER_TABLE_SIZE) and us decoding its request heads is the check that both sides agree on the wire.
import { afterEach, describe, expect, test } from 'bun:test';
import { execFile } from 'node:child_process';
import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { createServer, type Server, type Socket } from 'node:net';
import { feedFrames, newFrameReader } from '../../../src/proxy/h2/frame-reader.ts';
import {
  FrameFlag,
  FrameType,
  SettingId,
  dataFrameHeader,
  headersFramesSize,
  settingsAckFrame,
  settingsFrame,
  writeHeadersFrames,
} from '../../../src/proxy/h2/frame-writer.ts';
import { HPACK_OK, decodeHeaderBlock, encodeHeaderBlock, encodedSizeBound, newHpackDecoder, newHpackEncoder, setEncoderLimit } from '../../../src/proxy/h2/hpack.ts';

/** The response head (flat) the server sends for a request: chosen by the request's path. */
type Respond = (path: string, requestFields: string[]) => string[];

interface Harness {
  server: Server;
  port: number;
  requests: string[][];
  errors: string[];
}

const servers: Server[] = [];
const sessions: ClientHttp2Session[] = [];
afterEach(() => {
  for (const s of sessions.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.close();
});

function startServer(respond: Respond, huffman = true): Promise<Harness> {
  const h: Harness = { server: createServer(), port: 0, requests: [], errors: [] };
  h.server.on('connection', (socket: Socket) => {
    const reader = newFrameReader(16384, { expectPreface: true });
    const decoder = newHpackDecoder();
    const encoder = newHpackEncoder({ huffman });
    let block: Buffer[] = [];
    let blockStream = 0;
    socket.write(settingsFrame([SettingId.MAX_CONCURRENT_STREAMS, 100]));
    const sink = {
      frame(type: number, flags: number, streamId: number, payload: Buffer, start: number, end: number): boolean {
        if (type === FrameType.SETTINGS && (flags & FrameFlag.ACK) === 0) {
          for (let at = start; at + 6 <= end; at += 6) {
            if (payload.readUInt16BE(at) === SettingId.HEADER_TABLE_SIZE) setEncoderLimit(encoder, payload.readUInt32BE(at + 2));
          }
          socket.write(settingsAckFrame());
        } else if (type === FrameType.HEADERS || type === FrameType.CONTINUATION) {
          if (type === FrameType.HEADERS) {
            blockStream = streamId;
            let s = start;
            let e = end;
            if ((flags & FrameFlag.PADDED) !== 0) e -= payload[s++]!;
            if ((flags & FrameFlag.PRIORITY) !== 0) s += 5;
            block = [Buffer.from(payload.subarray(s, e))];
          } else block.push(Buffer.from(payload.subarray(start, end)));
          if ((flags & FrameFlag.END_HEADERS) !== 0) {
            const whole = Buffer.concat(block);
            const fields: string[] = [];
            const rc = decodeHeaderBlock(decoder, whole, 0, whole.length, fields, 1 << 20);
            if (rc !== HPACK_OK) h.errors.push(`request block decode: ${rc}`);
            h.requests.push(fields);
            const head = respond(fields[fields.indexOf(':path') + 1] ?? '', fields);
            const encoded = Buffer.alloc(encodedSizeBound(head));
            const length = encodeHeaderBlock(encoder, head, encoded, 0);
            const framed = Buffer.alloc(headersFramesSize(length, 16384));
            writeHeadersFrames(framed, 0, blockStream, encoded, 0, length, false, 16384);
            const body = Buffer.from(`body of ${blockStream}`);
            socket.write(Buffer.concat([framed, dataFrameHeader(body.length, blockStream, true), body]));
          }
        }
        return true;
      },
    };
    socket.on('data', (chunk: Buffer) => {
      const rc = feedFrames(reader, chunk, sink);
      if (rc !== 0) {
        h.errors.push(`feed: ${rc}`);
        socket.destroy();
      }
    });
    socket.on('error', () => {});
  });
  return new Promise((resolve) => {
    h.server.listen(0, '127.0.0.1', () => {
      h.port = (h.server.address() as { port: number }).port;
      servers.push(h.server);
      resolve(h);
    });
  });
}

function request(session: ClientHttp2Session, path: string, extra: Record<string, string> = {}): Promise<{ headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path, ...extra });
    let body = '';
    let headers: IncomingHttpHeaders = {};
    req.setEncoding('latin1');
    req.on('response', (h) => (headers = h));
    req.on('data', (d: string) => (body += d));
    req.on('end', () => resolve({ headers, body }));
    req.on('error', reject);
  });
}

function asRecord(head: string[]): Record<string, string> {
  const r: Record<string, string> = {};
  for (let i = 0; i < head.length; i += 2) r[head[i]!] = head[i + 1]!;
  return r;
}

function pick(headers: IncomingHttpHeaders, names: string[]): Record<string, string> {
  const r: Record<string, string> = {};
  for (const n of names) r[n] = String(headers[n]);
  return r;
}

/** A response head that varies with the path: repeating headers, changing ones, sometimes long values. */
function headFor(path: string): string[] {
  const n = Number(path.slice(1)) || 0;
  return [
    ':status', ['200', '404', '302', '201', '304'][n % 5]!,
    'server', 'tsbal-test',
    'content-type', `text/t${n % 7}; charset=${'u'.repeat(n % 97)}`,
    'date', `Mon, 07 Dec 2026 19:00:${String(n % 60).padStart(2, '0')} GMT`,
    'x-cache', n % 3 === 0 ? 'HIT' : 'MISS',
    'x-bin', `\u00e9\u00ff${n}`,
    'set-cookie', `s=${n}`,
    'etag', `"${n.toString(16)}"`,
  ];
}

describe('node:http2 client against this codec', () => {
  test('300 requests on one connection (sequential and 20 at a time): the client decodes every response head we encode', async () => {
    const h = await startServer(headFor);
    const session = connect(`http://127.0.0.1:${h.port}`);
    sessions.push(session);
    for (let i = 0; i < 100; i++) {
      const { headers, body } = await request(session, `/${i}`);
      const expected = asRecord(headFor(`/${i}`));
      expect(pick(headers, Object.keys(expected))).toEqual(expected);
      expect(body).toBe(`body of ${i * 2 + 1}`);
    }
    for (let round = 0; round < 10; round++) {
      const batch = Array.from({ length: 20 }, (_, k) => 100 + round * 20 + k);
      const results = await Promise.all(batch.map((n) => request(session, `/${n}`)));
      results.forEach((r, k) => {
        const expected = asRecord(headFor(`/${batch[k]}`));
        expect(pick(r.headers, Object.keys(expected))).toEqual(expected);
      });
    }
    expect(h.errors).toEqual([]);
  });
  test('our decoder reads the request heads of the client (its dynamic table and Huffman) right across requests', async () => {
    const h = await startServer(() => [':status', '200']);
    const session = connect(`http://127.0.0.1:${h.port}`);
    sessions.push(session);
    for (let i = 0; i < 50; i++) {
      await request(session, `/p/${i}?q=${'z'.repeat(i)}`, { 'user-agent': 'interop/1.0', 'accept-encoding': 'gzip, deflate, br', 'x-n': String(i), cookie: `c=${i}` });
    }
    expect(h.errors).toEqual([]);
    expect(h.requests.length).toBe(50);
    h.requests.forEach((fields, i) => {
      const r = asRecord(fields);
      expect(r).toMatchObject({ ':method': 'GET', ':path': `/p/${i}?q=${'z'.repeat(i)}`, ':scheme': 'http', 'user-agent': 'interop/1.0', 'accept-encoding': 'gzip, deflate, br', 'x-n': String(i), cookie: `c=${i}` });
    });
  });
  test('a response head longer than 16384 octets goes as HEADERS + CONTINUATION and the client reassembles it', async () => {
    const long = 'v'.repeat(20000);
    const h = await startServer(() => [':status', '200', 'x-long', long, 'x-long2', long]);
    const session = connect(`http://127.0.0.1:${h.port}`, { maxHeaderListPairs: 100, maxSessionMemory: 100 });
    sessions.push(session);
    const { headers } = await request(session, '/');
    expect(headers['x-long']).toBe(long);
    expect(headers['x-long2']).toBe(long);
    expect(h.errors).toEqual([]);
  });
  test('a client with SETTINGS_HEADER_TABLE_SIZE 0 gets a size update and no indexing, and decodes every head', async () => {
    const h = await startServer(headFor);
    const session = connect(`http://127.0.0.1:${h.port}`, { settings: { headerTableSize: 0 } });
    sessions.push(session);
    for (let i = 0; i < 30; i++) {
      const { headers } = await request(session, `/${i}`);
      const expected = asRecord(headFor(`/${i}`));
      expect(pick(headers, Object.keys(expected))).toEqual(expected);
    }
    expect(h.errors).toEqual([]);
  });
});

describe('nghttp (nghttp2) against this codec', () => {
  test.each([true, false])('40 concurrent streams on one connection: nghttp2 decodes every response head we encode (huffman %p), we decode its requests', async (huffman) => {
    const h = await startServer((path) => [...headFor(path), 'x-path', path], huffman);
    const urls = Array.from({ length: 40 }, (_, i) => `http://127.0.0.1:${h.port}/${i}`);
    const output = await new Promise<string>((resolve, reject) => {
      execFile('nghttp', ['-v', '-n', ...urls], { timeout: 15000, maxBuffer: 1 << 24 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    // Lines like "[  0.001] recv (stream_id=13) server: tsbal-test", with ", sensitive" for never-indexed fields.
    const perStream = new Map<string, Record<string, string>>();
    const sensitive = new Set<string>();
    for (const line of output.split('\n')) {
      const m = /recv \(stream_id=(\d+)(, sensitive)?\) ([^:]+|:[a-z]+): (.*)$/.exec(line);
      if (m === null) continue;
      const fields = perStream.get(m[1]!) ?? {};
      fields[m[3]!] = m[4]!;
      perStream.set(m[1]!, fields);
      if (m[2] !== undefined) sensitive.add(m[3]!);
    }
    expect([...sensitive]).toEqual(['set-cookie']);
    const byPath = new Map([...perStream.values()].filter((f) => f['x-path'] !== undefined).map((f) => [f['x-path']!, f]));
    expect(byPath.size).toBe(40);
    for (let i = 0; i < 40; i++) {
      const expected = asRecord(headFor(`/${i}`));
      // nghttp prints latin1 octets as they are: compare through the same decoding.
      for (const k of Object.keys(expected)) expected[k] = Buffer.from(expected[k]!, 'latin1').toString('utf8');
      expect(byPath.get(`/${i}`)).toMatchObject(expected);
    }
    expect(h.errors).toEqual([]);
    expect(h.requests.map((fields) => asRecord(fields)[':path']).sort()).toEqual(urls.map((u) => new URL(u).pathname).sort());
    for (const fields of h.requests) expect(asRecord(fields)).toMatchObject({ ':method': 'GET', ':scheme': 'http', 'user-agent': expect.stringMatching(/^nghttp2\//) });
  });
});
