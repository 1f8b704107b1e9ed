// tsbal only (Perlbal's reproxy cache is the same idea, checked here on its own): with reproxy_cache_maxsize, an
// X-Reproxy-URL answer carrying X-Reproxy-Cache-For is remembered per Host and URI, and the next requests are served
// from the cached URL list without the backend, with the fields the backend named; 304 on a matching
// If-Modified-Since; expiry and the size limit put the backend back in the path.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { LOOPBACK, sleep } from '../harness/ports.ts';
import { connectRaw, describeOutcome } from '../harness/rawclient.ts';
import type { RecordedRequest, Reply } from '../harness/rawbackend.ts';
import { type Rig, startRigWithConf, TSBAL_RUNS } from './diffkit.ts';

const CONTENT = 'cached target content\n';
const LM = 'Mon, 07 Dec 2026 10:00:00 GMT';
let targetPort = 0;

function app(req: RecordedRequest): Reply {
  const seconds = req.target.startsWith('/short') ? 1 : 60;
  return {
    bytes:
      `HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nLast-Modified: ${LM}\r\nX-Not-Cached: 1\r\n` +
      `X-Reproxy-URL: http://${LOOPBACK}:${targetPort}/t${req.target}\r\nX-Reproxy-Cache-For: ${seconds}; Content-Type Last-Modified\r\nContent-Length: 0\r\n\r\n`,
  };
}

const target = (): Reply => ({ bytes: `HTTP/1.0 200 OK\r\nContent-Length: ${CONTENT.length}\r\n\r\n${CONTENT}`, close: true });

let rig: Rig | null = null;
beforeAll(async () => {
  if (!TSBAL_RUNS) return;
  rig = await startRigWithConf(
    'tsbal',
    (port, [appPort, tPort]) => {
      targetPort = tPort!;
      return (
        `CREATE POOL p\n  POOL p ADD ${LOOPBACK}:${appPort}\nCREATE SERVICE s\n  SET listen = ${LOOPBACK}:${port}\n  SET role = reverse_proxy\n` +
        '  SET pool = p\n  SET persist_client = on\n  SET persist_backend = on\n  SET enable_reproxy = on\n  SET reproxy_cache_maxsize = 2\nENABLE s\n'
      );
    },
    [{ name: 'app', reply: app }, { name: 'target', reply: target }],
  );
});
afterAll(async () => {
  await rig?.stop();
});

const appHits = (): number => rig!.backends[0]!.proxied().length;

async function get(path: string, host = 'site', extra = ''): Promise<{ status: number; body: string; fields: Map<string, string> }> {
  const conn = await connectRaw(rig!.proxy.port);
  try {
    conn.send(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`);
    const o = await conn.read();
    if (o.kind !== 'response') throw new Error(`${path}: ${describeOutcome(o)}`);
    const fields = new Map(o.response.head.headers.map(([n, v]) => [n.toLowerCase(), v] as [string, string]));
    return { status: o.response.status, body: o.response.body.toString('latin1'), fields };
  } finally {
    conn.close();
  }
}

describe.skipIf(!TSBAL_RUNS)('the reproxy-URL cache', () => {
  test('a second request for the same Host and URI is served from the cached URLs without the backend', async () => {
    const before = appHits();
    const first = await get('/a');
    expect(first.status).toBe(200);
    expect(first.body).toBe(CONTENT);
    expect(appHits()).toBe(before + 1);
    const second = await get('/a');
    expect(appHits(), 'the backend was asked again').toBe(before + 1);
    expect(second.status).toBe(200);
    expect(second.body).toBe(CONTENT);
    expect(second.fields.get('content-type')).toBe('image/png');
    expect(second.fields.get('last-modified')).toBe(LM);
    expect(second.fields.has('x-not-cached'), 'only the fields X-Reproxy-Cache-For names are replayed').toBe(false);
    expect([...second.fields.keys()].filter((n) => n.startsWith('x-reproxy'))).toEqual([]);
    // Another Host is another key.
    await get('/a', 'other');
    expect(appHits()).toBe(before + 2);
  });

  test('If-Modified-Since equal to the cached Last-Modified gets 304 from the cache', async () => {
    await get('/ims');
    const before = appHits();
    const r = await get('/ims', 'site', `If-Modified-Since: ${LM}\r\n`);
    expect(r.status).toBe(304);
    expect(r.body).toBe('');
    expect(appHits()).toBe(before);
  });

  test('an entry expires after its X-Reproxy-Cache-For seconds, and the oldest goes when the cache is full', async () => {
    await get('/short');
    const before = appHits();
    await get('/short');
    expect(appHits()).toBe(before);
    await sleep(1100);
    await get('/short');
    expect(appHits(), 'expired: the backend is asked again').toBe(before + 1);
    // maxsize 2: /x and /y (60 s each) push /long (60 s, so not expired) out.
    await get('/long', 'lru');
    const cached = appHits();
    await get('/long', 'lru');
    expect(appHits()).toBe(cached);
    await get('/x', 'lru');
    await get('/y', 'lru');
    const after = appHits();
    await get('/long', 'lru');
    expect(appHits(), 'evicted: the backend is asked again').toBe(after + 1);
  });
});
