// Where tsbal deliberately differs from Perlbal 1.80 (docs/compat.md): each test pins what Perlbal really does
// (bounded: a Perlbal hang is shown with a short timeout, never waited out) and asserts tsbal's documented
// behaviour on the same request.
import { afterAll, describe, expect } from 'bun:test';
import { header } from '../harness/httpwire.ts';
import { TUTORIAL_OPTIONS } from '../harness/perlbalconf.ts';
import { type RecordedRequest, type Reply, defaultReply } from '../harness/rawbackend.ts';
import { type ReadOutcome, connectRaw, describeOutcome } from '../harness/rawclient.ts';
import { type Observation, type Rig, lazyRigs, observe, proxiedOnly, startRig, testFor } from './diffkit.ts';

function byPath(req: RecordedRequest, name: string): Reply {
  switch (req.target) {
    case '/chunked':
      return { bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' };
    case '/noreason':
      return { bytes: 'HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok' };
    case '/reset':
      return { destroy: true };
    default:
      return defaultReply(name, req);
  }
}

const rigs = lazyRigs((kind) => startRig(kind, { set: TUTORIAL_OPTIONS }, [{ name: 'b1', reply: byPath }]));
afterAll(() => rigs.stopAll());

const response = (outcome: ReadOutcome) => {
  if (outcome.kind !== 'response') throw new Error(`expected a response, got ${describeOutcome(outcome)}`);
  return outcome.response;
};

const PAGE_TEXT: Record<number, string> = { 400: 'Bad request', 502: 'Bad Gateway', 503: 'Service Unavailable' };

/**
 * A page tsbal generates: Perlbal's shape (text/html, `<h1>CODE - Text</h1>` and one line), short. Perlbal's
 * texts differ in case from RFC 9110's in places ("Bad request"), so the text is compared case-insensitively.
 */
function expectGeneratedPage(outcome: ReadOutcome, status: number): void {
  const res = response(outcome);
  expect(res.status, describeOutcome(outcome)).toBe(status);
  expect(header(res.head.headers, 'content-type')).toBe('text/html');
  expect(res.body.toString('latin1').toLowerCase()).toStartWith(`<h1>${status} - ${PAGE_TEXT[status]}</h1>\n`.toLowerCase());
  expect(res.body.length).toBeLessThan(1024);
}

/** A request tsbal refuses: a generated page, and the request never reached a backend. */
function expectRefused(obs: Observation, status: number): void {
  expectGeneratedPage(obs.outcome, status);
  expect(proxiedOnly(obs.seen).map((r) => r.raw.toString('latin1'))).toEqual([]);
}

interface Contrast {
  name: string;
  perlbal: (rig: Rig) => Promise<void>;
  tsbal: (rig: Rig) => Promise<void>;
}

const contrasts: Contrast[] = [
  {
    name: 'a chunked response from an HTTP/1.1 backend: Perlbal relays the raw chunks as HTTP/1.0 and never closes; tsbal frames it',
    perlbal: async (rig) => {
      const obs = await observe(rig, 'GET /chunked HTTP/1.1\r\nHost: h\r\n\r\n', { timeoutMs: 1000, closeWaitMs: 800 });
      expect(response(obs.outcome).raw.toString('latin1')).toBe(
        'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      );
      expect(obs.closedAfter, 'Perlbal leaves the "Connection: close" response open (client hangs)').toBe(false);
    },
    tsbal: async (rig) => {
      const obs = await observe(rig, 'GET /chunked HTTP/1.1\r\nHost: h\r\n\r\n', { timeoutMs: 1000 });
      const res = response(obs.outcome);
      expect(res.body.toString()).toBe('hello');
      const framed = header(res.head.headers, 'content-length') !== undefined || /chunked/i.test(header(res.head.headers, 'transfer-encoding') ?? '');
      expect(framed || obs.closedAfter, `framed or closed: ${describeOutcome(obs.outcome)}`).toBe(true);
    },
  },
  {
    name: 'pipelined requests: Perlbal answers 400 "Can\'t pipeline to HTTP/1.0" and drops the first; tsbal answers both in order',
    perlbal: async (rig) => {
      const obs = await observe(rig, 'GET /p1 HTTP/1.1\r\nHost: h\r\n\r\nGET /p2 HTTP/1.1\r\nHost: h\r\n\r\n');
      expect(response(obs.outcome).raw.toString('latin1')).toBe(
        'HTTP/1.0 400 Bad request\r\nContent-Type: text/html\r\nContent-Length: 53\r\nServer: Perlbal\r\n' +
          "Connection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n\r\n<h1>400 - Bad request</h1>\nCan't pipeline to HTTP/1.0",
      );
      expect(obs.closedAfter).toBe(true);
    },
    tsbal: async (rig) => {
      const conn = await connectRaw(rig.proxy.port);
      try {
        conn.send('GET /p1 HTTP/1.1\r\nHost: h\r\n\r\nGET /p2 HTTP/1.1\r\nHost: h\r\n\r\n');
        const first = response(await conn.read({ timeoutMs: 2000 }));
        const second = response(await conn.read({ timeoutMs: 2000 }));
        expect([first.body.toString(), second.body.toString()]).toEqual(['hello from b1 path=/p1\n', 'hello from b1 path=/p2\n']);
      } finally {
        conn.close();
      }
    },
  },
  {
    name: 'Content-Length with Transfer-Encoding: Perlbal forwards both (smuggling); tsbal refuses with 400',
    perlbal: async (rig) => {
      const obs = await observe(rig, 'POST /clte HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
      expect(proxiedOnly(obs.seen).map((r) => r.raw.toString('latin1'))).toEqual([
        'POST /clte HTTP/1.0\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n' +
          'X-Forwarded-For: 127.0.0.1\r\n\r\n0\r\n\r\n',
      ]);
    },
    tsbal: async (rig) => {
      const obs = await observe(rig, 'POST /clte HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', {
        settleMs: 100,
      });
      expectRefused(obs, 400);
      expect(obs.closedAfter).toBe(true);
    },
  },
  {
    name: 'obs-fold and hop-by-hop headers: Perlbal unfolds and forwards them (reference 8.1 hostile transcript); tsbal refuses with 400',
    perlbal: async (rig) => {
      const obs = await observe(rig, HOSTILE_WITH_FOLD);
      expect(proxiedOnly(obs.seen).map((r) => r.raw.toString('latin1'))).toEqual([
        'GET /hdrs HTTP/1.0\r\nHost: Example.COM:8080\r\nX-Forwarded-For: 127.0.0.1\r\nX-Real-IP: 9.9.9.9\r\n' +
          'X-Forwarded-Proto: https\r\nConnection: keep-alive\r\nUpgrade: websocket\r\nKeep-Alive: 300\r\n' +
          'Proxy-Connection: keep-alive\r\nTE: trailers\r\nX-Dup: one, two\r\nCookie: c=1, d=2\r\nX-Folded: part1  part2\r\n\r\n',
      ]);
    },
    tsbal: async (rig) => expectRefused(await observe(rig, HOSTILE_WITH_FOLD, { settleMs: 100 }), 400),
  },
  {
    name: 'whitespace before a header colon: Perlbal closes without a byte; tsbal answers 400',
    perlbal: async (rig) => {
      const obs = await observe(rig, 'GET /ws HTTP/1.1\r\nHost: h\r\nX-Bad : v\r\n\r\n', { timeoutMs: 1000 });
      expect([obs.outcome.kind, obs.outcome.kind !== 'response' && obs.outcome.received.length]).toEqual(['closed', 0]);
    },
    tsbal: async (rig) => {
      const obs = await observe(rig, 'GET /ws HTTP/1.1\r\nHost: h\r\nX-Bad : v\r\n\r\n', { settleMs: 100 });
      expectRefused(obs, 400);
      expect(obs.closedAfter).toBe(true);
    },
  },
  {
    name: 'an HTTP/1.1 request without Host: Perlbal closes without a byte; tsbal answers 400',
    perlbal: async (rig) => {
      const obs = await observe(rig, 'GET /nohost HTTP/1.1\r\n\r\n', { timeoutMs: 1000 });
      expect([obs.outcome.kind, obs.outcome.kind !== 'response' && obs.outcome.received.length]).toEqual(['closed', 0]);
    },
    tsbal: async (rig) => {
      const obs = await observe(rig, 'GET /nohost HTTP/1.1\r\n\r\n', { settleMs: 100 });
      expectRefused(obs, 400);
      expect(obs.closedAfter).toBe(true);
    },
  },
  {
    name: 'a backend status line without reason phrase: Perlbal drops the backend and the client hangs; tsbal relays it',
    perlbal: async (rig) => {
      const obs = await observe(rig, 'GET /noreason HTTP/1.1\r\nHost: h\r\n\r\n', { timeoutMs: 1000 });
      expect(obs.outcome.kind, describeOutcome(obs.outcome)).toBe('timeout');
      expect(obs.outcome.kind !== 'response' && obs.outcome.received.length).toBe(0);
    },
    tsbal: async (rig) => {
      const obs = await observe(rig, 'GET /noreason HTTP/1.1\r\nHost: h\r\n\r\n', { timeoutMs: 1000 });
      expect([response(obs.outcome).status, response(obs.outcome).body.toString()]).toEqual([200, 'ok']);
    },
  },
  {
    name: 'the backend closes without answering: Perlbal hangs the client (until idle_timeout); tsbal answers 502 fast',
    perlbal: async (rig) => {
      const obs = await observe(rig, 'GET /reset HTTP/1.1\r\nHost: h\r\n\r\n', { timeoutMs: 1500 });
      expect(obs.outcome.kind, describeOutcome(obs.outcome)).toBe('timeout');
      expect(proxiedOnly(obs.seen).map((r) => r.target)).toEqual(['/reset']);
    },
    tsbal: async (rig) => {
      const obs = await observe(rig, 'GET /reset HTTP/1.1\r\nHost: h\r\n\r\n', { timeoutMs: 3000 });
      expectGeneratedPage(obs.outcome, 502);
      expect(obs.outcome.ms).toBeLessThan(2000);
      expect(proxiedOnly(obs.seen).length).toBeGreaterThanOrEqual(1);
    },
  },
  {
    name: 'a chunked request body: Perlbal answers 400 "Can\'t pipeline to HTTP/1.0"; tsbal forwards the body',
    perlbal: async (rig) => {
      const obs = await observe(rig, CHUNKED_POST);
      const res = response(obs.outcome);
      expect([res.status, res.body.toString()]).toEqual([400, "<h1>400 - Bad request</h1>\nCan't pipeline to HTTP/1.0"]);
    },
    tsbal: async (rig) => {
      const obs = await observe(rig, CHUNKED_POST);
      expect(response(obs.outcome).status, describeOutcome(obs.outcome)).toBe(200);
      const [forwarded] = proxiedOnly(obs.seen);
      const framing = forwarded ? header(forwarded.head.headers, 'transfer-encoding') ?? header(forwarded.head.headers, 'content-length') : undefined;
      expect(framing, 'the backend request is framed by TE chunked or Content-Length').toMatch(/^(chunked|5)$/);
      expect(forwarded?.raw.toString('latin1')).toContain('hello');
    },
  },
];

const HOSTILE_WITH_FOLD =
  'GET /hdrs HTTP/1.1\r\nHost: Example.COM:8080\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8\r\nX-Forwarded-Host: evil\r\n' +
  'X-Host: evil\r\nX-Real-IP: 9.9.9.9\r\nX-Forwarded-Proto: https\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n' +
  'Keep-Alive: 300\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nX-Dup: one\r\nX-Dup: two\r\nCookie: c=1\r\nCookie: d=2\r\n' +
  'X-Folded: part1\r\n  part2\r\n\r\n';

const CHUNKED_POST = 'POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n';

describe('deliberate differences from Perlbal', () => {
  for (const c of contrasts) {
    testFor('perlbal')(`perlbal: ${c.name}`, async () => c.perlbal(await rigs.get('perlbal')));
    testFor('tsbal')(`tsbal: ${c.name}`, async () => c.tsbal(await rigs.get('tsbal')));
  }
});

/** `conn:METHOD target` for each request a backend received. */
const connSequence = (rig: Rig, backend = 0): string =>
  rig.backends[backend]!.requests()
    .map((r) => `${r.conn}:${r.method} ${r.target}`)
    .join(' ');

async function sequentialGets(rig: Rig, count: number): Promise<void> {
  for (let i = 1; i <= count; i++) {
    const obs = await observe(rig, `GET /${i} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`, { timeoutMs: 3000 });
    expect(response(obs.outcome).status).toBe(200);
  }
}

describe('backend connection use, differently from Perlbal', () => {
  const pairs = lazyRigs((kind) => startRig(kind, { set: TUTORIAL_OPTIONS }, [{ name: 'b1' }, { name: 'b2' }]));
  const capped = lazyRigs((kind) => startRig(kind, { set: { ...TUTORIAL_OPTIONS, max_backend_uses: '3' } }));
  afterAll(() => Promise.all([pairs.stopAll(), capped.stopAll()]));

  const spread = async (kind: 'perlbal' | 'tsbal'): Promise<number[]> => {
    const rig = await pairs.get(kind);
    await sequentialGets(rig, 20);
    return rig.backends.map((b) => b.proxied().length);
  };
  testFor('perlbal')('perlbal: serial requests all reuse the most recent idle connection, so one backend gets all 20', async () => {
    expect((await spread('perlbal')).sort()).toEqual([0, 20]);
  });
  testFor('tsbal')('tsbal: serial requests are balanced per request, so both backends get some of 20', async () => {
    const counts = await spread('tsbal');
    expect(counts.every((n) => n > 0), `requests per backend: ${counts.join(', ')}`).toBe(true);
  });

  testFor('perlbal')('perlbal: max_backend_uses = 3 lets a connection serve 4 requests', async () => {
    const rig = await capped.get('perlbal');
    await sequentialGets(rig, 8);
    expect(connSequence(rig)).toBe('1:OPTIONS * 1:GET /1 1:GET /2 1:GET /3 1:GET /4 2:OPTIONS * 2:GET /5 2:GET /6 2:GET /7 2:GET /8');
  });
  testFor('tsbal')('tsbal: max_backend_uses = 3 lets a connection serve exactly 3 requests, each new one probed', async () => {
    const rig = await capped.get('tsbal');
    await sequentialGets(rig, 8);
    expect(connSequence(rig)).toBe(
      '1:OPTIONS * 1:GET /1 1:GET /2 1:GET /3 2:OPTIONS * 2:GET /4 2:GET /5 2:GET /6 3:OPTIONS * 3:GET /7 3:GET /8',
    );
  });
});
