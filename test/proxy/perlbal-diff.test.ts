// Differential tests: the same perlbal.conf and the same client bytes through real Perlbal 1.80 and through
// tsbal, to raw logging backends. Perlbal's side pins the exact transcripts (reference sections 2.5-2.10, 8.1);
// tsbal's side must agree with them on everything but the differences docs/compat.md declares, which are
// asserted explicitly (HTTP/1.1 to backends, hop-by-hop stripping, X-Forwarded-Proto and X-Real-IP).
import { afterAll, describe, expect } from 'bun:test';
import { headerAll, parseHead } from '../harness/httpwire.ts';
import { TUTORIAL_OPTIONS, type ReverseProxySpec } from '../harness/perlbalconf.ts';
import { type RecordedRequest, type Reply, defaultReply } from '../harness/rawbackend.ts';
import { describeOutcome } from '../harness/rawclient.ts';
import {
  HOP_BY_HOP,
  KINDS,
  type Observation,
  comparableRequest,
  comparableResponse,
  connectionTokens,
  header,
  lazyRigs,
  observe,
  proxiedOnly,
  startRig,
  testFor,
} from './diffkit.ts';

interface DiffCase {
  /** The behaviour pinned, as the test name. */
  name: string;
  request: string;
  /** Exact bytes Perlbal produced (observed live; the reference's transcripts where it has them). */
  perlbal: { backend: string[]; client: string; closedAfter: boolean };
  /** Declared differences tsbal must show on top of the common ones. */
  tsbal?: (obs: Observation) => void;
  /** tsbal sets X-Real-IP and X-Forwarded-Proto, except for a trusted blind proxy, whose headers it leaves alone. */
  blindProxy?: boolean;
}

const OK_HEAD = (len: number): string =>
  `HTTP/1.0 200 OK\r\nServer: testbackend/b1\r\nX-Backend: b1\r\nContent-Type: text/plain\r\nContent-Length: ${len}\r\n` +
  'Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n';
const KEEP = 'Connection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n\r\n';
const CLOSE = 'Connection: close\r\n\r\n';
const hello = (path: string): string => `hello from b1 path=${path}\n`;
const okKept = (path: string): string => `${OK_HEAD(hello(path).length)}${KEEP}${hello(path)}`;

function recorded(bytes: string): RecordedRequest {
  const raw = Buffer.from(bytes, 'latin1');
  const head = parseHead(raw)!;
  const [method = '', target = ''] = head.startLine.split(' ');
  return { conn: 0, seq: 0, raw, head, method, target };
}

/** What every tsbal backend request must look like, whatever the case (docs/compat.md, proxy section). */
function expectTsbalForwarding(req: RecordedRequest, clientRequest: string, blindProxy: boolean): void {
  const what = JSON.stringify(req.raw.toString('latin1'));
  expect(req.head.startLine.endsWith(' HTTP/1.1'), `HTTP/1.1 to backends: ${what}`).toBe(true);
  expect(header(req.head.headers, 'host'), `Host on every HTTP/1.1 backend request: ${what}`).toBeDefined();
  const names = req.head.headers.map(([n]) => n.toLowerCase());
  const added = names.filter((n) => n === 'x-real-ip' || n === 'x-forwarded-proto').sort();
  if (blindProxy) {
    expect(added, `a trusted blind proxy's forwarding headers are left alone: ${what}`).toEqual([]);
  } else {
    expect(added, what).toEqual(['x-forwarded-proto', 'x-real-ip']);
    expect(header(req.head.headers, 'x-real-ip'), what).toBe('127.0.0.1');
    expect(header(req.head.headers, 'x-forwarded-proto'), what).toBe('http');
  }
  // Transfer-Encoding may legitimately frame tsbal's own forwarding of a body; Connection is checked below.
  const forbidden = new Set([
    ...HOP_BY_HOP.filter((h) => h !== 'connection' && h !== 'transfer-encoding'),
    ...connectionTokens(clientRequest).filter((t) => t !== 'close'),
  ]);
  expect(names.filter((n) => forbidden.has(n)), `hop-by-hop headers stripped: ${what}`).toEqual([]);
  const connection = header(req.head.headers, 'connection');
  if (connection !== undefined) expect(connection.toLowerCase(), what).toBe('keep-alive');
}

function checkPerlbal(c: DiffCase, obs: Observation): void {
  const context = describeOutcome(obs.outcome);
  expect(proxiedOnly(obs.seen).map((r) => r.raw.toString('latin1')), context).toEqual(c.perlbal.backend);
  expect(obs.outcome.kind === 'response' ? obs.outcome.response.raw.toString('latin1') : context).toBe(c.perlbal.client);
  expect(obs.closedAfter, `connection closed after the response (${context})`).toBe(c.perlbal.closedAfter);
}

function checkTsbal(c: DiffCase, obs: Observation): void {
  const context = describeOutcome(obs.outcome);
  const proxied = proxiedOnly(obs.seen);
  const golden = c.perlbal.backend.map(recorded);
  // HTTP/1.0 clients may omit Host; tsbal must then add one for HTTP/1.1, so Host is compared only if sent.
  const exclude = [...connectionTokens(c.request), ...(golden.some((g) => header(g.head.headers, 'host') === undefined) ? ['host'] : [])];
  expect(proxied.map((r) => comparableRequest(r, exclude)), context).toEqual(golden.map((g) => comparableRequest(g, exclude)));
  for (const req of proxied) expectTsbalForwarding(req, c.request, c.blindProxy ?? false);
  const goldenResponse = parseHead(Buffer.from(c.perlbal.client, 'latin1'));
  expect(goldenResponse).not.toBeNull();
  const goldenOutcome = {
    kind: 'response' as const,
    ms: 0,
    response: {
      raw: Buffer.from(c.perlbal.client, 'latin1'),
      head: goldenResponse!,
      statusLine: goldenResponse!.startLine,
      status: Number(goldenResponse!.startLine.split(' ')[1]),
      body: Buffer.from(c.perlbal.client, 'latin1').subarray(goldenResponse!.length),
    },
  };
  expect(comparableResponse(obs.outcome), context).toEqual(comparableResponse(goldenOutcome));
  expect(obs.outcome.kind === 'response' && obs.outcome.response.statusLine, 'HTTP/1.1 status line to every client').toStartWith('HTTP/1.1 ');
  expect(obs.closedAfter, `connection closed after the response (${context})`).toBe(c.perlbal.closedAfter);
  c.tsbal?.(obs);
}

/** Backend answers by path, for the response-side cases; anything else gets the reference backend's answer. */
function byPath(req: RecordedRequest, name: string): Reply {
  switch (req.target) {
    case '/404reason':
      return { bytes: 'HTTP/1.1 404 Nope Not Here\r\nContent-Length: 3\r\nX-B: 1\r\n\r\nno\n' };
    case '/noclen':
      return { bytes: 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nstreamed body\n', close: true };
    case '/204':
      return { bytes: 'HTTP/1.1 204 No Content\r\nX-B: 1\r\n\r\n' };
    case '/bclose':
      return { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbye', close: true };
    case '/multi':
      return { bytes: 'HTTP/1.1 200 OK\r\nX-Multi: a\r\nx-multi: b\r\nContent-Length: 2\r\n\r\nok' };
    case '/big':
      return { bytes: `HTTP/1.1 200 OK\r\nContent-Length: ${BIG.length}\r\n\r\n${BIG}` };
    default:
      return defaultReply(name, req);
  }
}

const BIG = 'y'.repeat(256 * 1024);
const UPLOAD = 'z'.repeat(300_000);

function runCases(title: string, spec: Omit<ReverseProxySpec, 'backends'>, cases: DiffCase[]): void {
  describe(title, () => {
    const rigs = lazyRigs((kind) => startRig(kind, spec, [{ name: 'b1', reply: byPath }]));
    afterAll(() => rigs.stopAll());
    for (const kind of KINDS) {
      for (const c of cases) {
        testFor(kind)(`${kind}: ${c.name}`, async () => {
          const obs = await observe(await rigs.get(kind), c.request, { timeoutMs: 3000 });
          if (kind === 'perlbal') checkPerlbal(c, obs);
          else checkTsbal(c, obs);
        });
      }
    }
  });
}

const HOSTILE =
  'GET /hdrs HTTP/1.1\r\nHost: Example.COM:8080\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8\r\n' +
  'X-Forwarded-Host: evil.example\r\nX-Host: evil.example\r\nX-Real-IP: 9.9.9.9\r\nX-Forwarded-Proto: https\r\n' +
  'Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: 300\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n' +
  'user-agent: Mixed/1.0\r\nX-Dup: one\r\nX-Dup: two\r\nCookie: c=1\r\nCookie: d=2\r\n\r\n';

runCases('reverse_proxy with the tutorial options', { set: TUTORIAL_OPTIONS }, [
  {
    name: 'a simple GET reaches the backend with Connection: keep-alive and X-Forwarded-For (reference 8.1)',
    request: 'GET /hello?x=1 HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n',
    perlbal: {
      backend: [
        'GET /hello?x=1 HTTP/1.0\r\nHost: 127.0.0.1:18080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n' +
          'Connection: keep-alive\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n',
      ],
      client: okKept('/hello?x=1'),
      closedAfter: false,
    },
  },
  {
    name: 'untrusted client: XFF replaced in place, X-Host and X-Forwarded-Host deleted, order and case kept, duplicates merged',
    request: HOSTILE,
    perlbal: {
      backend: [
        'GET /hdrs HTTP/1.0\r\nHost: Example.COM:8080\r\nX-Forwarded-For: 127.0.0.1\r\nX-Real-IP: 9.9.9.9\r\n' +
          'X-Forwarded-Proto: https\r\nConnection: keep-alive\r\nX-Hop: secret\r\nKeep-Alive: 300\r\n' +
          'Proxy-Connection: keep-alive\r\nTE: trailers\r\nuser-agent: Mixed/1.0\r\nX-Dup: one, two\r\nCookie: c=1, d=2\r\n\r\n',
      ],
      client: okKept('/hdrs'),
      closedAfter: false,
    },
    tsbal: (obs) => {
      const [req] = proxiedOnly(obs.seen);
      // docs/compat.md: repeated fields go out as separate lines (Perlbal's ", " join breaks Cookie).
      expect(headerAll(req?.head.headers ?? [], 'cookie')).toEqual(['c=1', 'd=2']);
      expect(headerAll(req?.head.headers ?? [], 'x-dup')).toEqual(['one', 'two']);
    },
  },
  {
    name: 'HTTP/1.0 client without keep-alive gets Connection: close and a closed socket',
    request: 'GET /h10 HTTP/1.0\r\n\r\n',
    perlbal: {
      backend: ['GET /h10 HTTP/1.0\r\nConnection: keep-alive\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n'],
      client: `${OK_HEAD(hello('/h10').length)}${CLOSE}${hello('/h10')}`,
      closedAfter: true,
    },
  },
  {
    name: 'HTTP/1.0 client with keep-alive gets Keep-Alive: timeout=30 and stays connected',
    request: 'GET /k10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
    perlbal: {
      backend: ['GET /k10 HTTP/1.0\r\nConnection: keep-alive\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n'],
      client: okKept('/k10'),
      closedAfter: false,
    },
    tsbal: (obs) => {
      const head = obs.outcome.kind === 'response' ? obs.outcome.response.head : null;
      expect(header(head?.headers ?? [], 'connection')?.toLowerCase()).toBe('keep-alive');
      expect(header(head?.headers ?? [], 'keep-alive')).toMatch(/^timeout=30, max=\d+$/);
    },
  },
  {
    name: 'HTTP/1.1 client with Connection: close gets Connection: close and a closed socket',
    request: 'GET /c11 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n',
    perlbal: {
      backend: ['GET /c11 HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n'],
      client: `${OK_HEAD(hello('/c11').length)}${CLOSE}${hello('/c11')}`,
      closedAfter: true,
    },
  },
  {
    name: 'HEAD is forwarded and answered with headers only, kept alive',
    request: 'HEAD /head HTTP/1.1\r\nHost: h\r\n\r\n',
    perlbal: {
      backend: ['HEAD /head HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n'],
      client: `${OK_HEAD(hello('/head').length)}${KEEP}`,
      closedAfter: false,
    },
  },
  {
    name: 'a POST body follows the headers with its Content-Length',
    request: 'POST /post HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello',
    perlbal: {
      backend: ['POST /post HTTP/1.0\r\nHost: h\r\nContent-Length: 5\r\nConnection: keep-alive\r\nX-Forwarded-For: 127.0.0.1\r\n\r\nhello'],
      client: okKept('/post'),
      closedAfter: false,
    },
  },
  {
    name: 'repeated X-Forwarded-For from an untrusted client becomes one line with the peer IP',
    request: 'GET /xff2 HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n',
    perlbal: {
      backend: ['GET /xff2 HTTP/1.0\r\nHost: h\r\nX-Forwarded-For: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n'],
      client: okKept('/xff2'),
      closedAfter: false,
    },
  },
  {
    name: "the backend's reason phrase is kept (reference 2.6: 404 Nope Not Here)",
    request: 'GET /404reason HTTP/1.1\r\nHost: h\r\n\r\n',
    perlbal: {
      backend: ['GET /404reason HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n'],
      client: `HTTP/1.0 404 Nope Not Here\r\nContent-Length: 3\r\nX-B: 1\r\n${KEEP}no\n`,
      closedAfter: false,
    },
  },
  {
    name: 'a response without length is relayed until the backend closes, then the client is closed',
    request: 'GET /noclen HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
    perlbal: {
      backend: ['GET /noclen HTTP/1.0\r\nConnection: keep-alive\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n'],
      client: `HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n${CLOSE}streamed body\n`,
      closedAfter: true,
    },
  },
  {
    name: 'a 204 keeps the client connection alive',
    request: 'GET /204 HTTP/1.1\r\nHost: h\r\n\r\n',
    perlbal: {
      backend: ['GET /204 HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n'],
      client: `HTTP/1.0 204 No Content\r\nX-B: 1\r\n${KEEP}`,
      closedAfter: false,
    },
  },
  {
    name: 'a backend that closes after a sized response does not close the client connection',
    request: 'GET /bclose HTTP/1.1\r\nHost: h\r\n\r\n',
    perlbal: {
      backend: ['GET /bclose HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n'],
      client: `HTTP/1.0 200 OK\r\nContent-Length: 3\r\n${KEEP}bye`,
      closedAfter: false,
    },
  },
  {
    name: 'repeated response headers reach the client with the same values (Perlbal joins them, tsbal keeps the lines)',
    request: 'GET /multi HTTP/1.1\r\nHost: h\r\n\r\n',
    perlbal: {
      backend: ['GET /multi HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n'],
      client: `HTTP/1.0 200 OK\r\nX-Multi: a, b\r\nContent-Length: 2\r\n${KEEP}ok`,
      closedAfter: false,
    },
  },
  {
    name: 'a 256 KiB response body arrives whole and the connection stays usable',
    request: 'GET /big HTTP/1.1\r\nHost: h\r\n\r\n',
    perlbal: {
      backend: ['GET /big HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n'],
      client: `HTTP/1.0 200 OK\r\nContent-Length: ${BIG.length}\r\n${KEEP}${BIG}`,
      closedAfter: false,
    },
  },
  {
    name: 'a 300 kB request body reaches the backend whole',
    request: `POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: ${UPLOAD.length}\r\n\r\n${UPLOAD}`,
    perlbal: {
      backend: [
        `POST /upload HTTP/1.0\r\nHost: h\r\nContent-Length: ${UPLOAD.length}\r\nConnection: keep-alive\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n${UPLOAD}`,
      ],
      client: okKept('/upload'),
      closedAfter: false,
    },
  },
  {
    name: 'an absolute URI becomes its path, and Host the lowercased URI host without port',
    request: 'GET http://Abs.Example.com:81/f?q=1 HTTP/1.1\r\nHost: other\r\n\r\n',
    perlbal: {
      backend: ['GET /f?q=1 HTTP/1.0\r\nHost: abs.example.com\r\nConnection: keep-alive\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n'],
      client: okKept('/f?q=1'),
      closedAfter: false,
    },
  },
]);

runCases('always_trusted = on', { set: { ...TUTORIAL_OPTIONS, always_trusted: 'on' } }, [
  {
    name: 'trusted client: the peer IP is appended to X-Forwarded-For and X-Host is kept',
    request: 'GET /t HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4,5.6.7.8\r\nX-Host: kept.example\r\nX-Forwarded-Host: kept.example\r\n\r\n',
    perlbal: {
      backend: [
        'GET /t HTTP/1.0\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8, 127.0.0.1\r\nX-Host: kept.example\r\n' +
          'X-Forwarded-Host: kept.example\r\nConnection: keep-alive\r\n\r\n',
      ],
      client: okKept('/t'),
      closedAfter: false,
    },
  },
]);

runCases('always_trusted = on, blind_proxy = on', { set: { ...TUTORIAL_OPTIONS, always_trusted: 'on', blind_proxy: 'on' } }, [
  {
    name: 'trusted blind proxy: a client X-Forwarded-For passes untouched',
    blindProxy: true,
    request: 'GET /bp HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n',
    perlbal: {
      backend: ['GET /bp HTTP/1.0\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\nConnection: keep-alive\r\n\r\n'],
      client: okKept('/bp'),
      closedAfter: false,
    },
  },
]);

runCases(
  'HEADER INSERT and REMOVE',
  {
    set: TUTORIAL_OPTIONS,
    headers: [
      { op: 'insert', name: 'X-Added-By', value: 'PerlBal Proxy' },
      { op: 'insert', name: 'Accept', value: 'x/y' },
      { op: 'remove', name: 'User-Agent' },
    ],
  },
  [
    {
      name: 'INSERT replaces an existing header in place, REMOVE deletes, new headers come last, lowercased by the config rule',
      request: 'GET /h HTTP/1.1\r\nHost: h\r\nUser-Agent: u\r\nAccept: a\r\nX-Z: z\r\n\r\n',
      perlbal: {
        backend: [
          'GET /h HTTP/1.0\r\nHost: h\r\nAccept: x/y\r\nX-Z: z\r\nConnection: keep-alive\r\nX-Forwarded-For: 127.0.0.1\r\n' +
            'x-added-by: perlbal proxy\r\n\r\n',
        ],
        client: okKept('/h'),
        closedAfter: false,
      },
    },
  ],
);
