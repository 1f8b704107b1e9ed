// verify_backend and persist_backend, differentially: which backend connection carries which request, and the
// exact probe bytes, with Perlbal 1.80 and with tsbal (reference 2.5, 2.6, 8.1, 8.4).
import { afterAll, describe, expect } from 'bun:test';
import { TUTORIAL_OPTIONS } from '../harness/perlbalconf.ts';
import type { RecordedRequest, Reply } from '../harness/rawbackend.ts';
import { defaultReply } from '../harness/rawbackend.ts';
import { describeOutcome } from '../harness/rawclient.ts';
import { KINDS, type Rig, lazyRigs, observe, startRig, testFor } from './diffkit.ts';

/** `conn:METHOD target` per request, the shape both proxies must agree on. */
const sequence = (reqs: readonly RecordedRequest[]): string[] => reqs.map((r) => `${r.conn}:${r.method} ${r.target}`);

async function getAll(rig: Rig, paths: readonly string[]): Promise<RecordedRequest[]> {
  const before = rig.backends[0]!.requests().length;
  for (const path of paths) {
    const obs = await observe(rig, `GET ${path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`, { timeoutMs: 3000 });
    expect(obs.outcome.kind === 'response' && obs.outcome.response.status, describeOutcome(obs.outcome)).toBe(200);
  }
  return rig.backends[0]!.requests().slice(before);
}

const PROBE = 'OPTIONS * HTTP/1.0\r\nConnection: keep-alive\r\n\r\n';

function verifyCase(
  title: string,
  set: Record<string, string>,
  reply: ((req: RecordedRequest, name: string) => Reply) | undefined,
  paths: string[],
  expected: string[],
  probes: string[],
): void {
  describe(title, () => {
    const rigs = lazyRigs((kind) => startRig(kind, { set }, [reply ? { name: 'b1', reply } : { name: 'b1' }]));
    afterAll(() => rigs.stopAll());
    for (const kind of KINDS) {
      testFor(kind)(`${kind}: ${expected.join(' | ')}`, async () => {
        const seen = await getAll(await rigs.get(kind), paths);
        expect(sequence(seen)).toEqual(expected);
        // tsbal sends Perlbal's probe byte for byte (HTTP/1.0, no Host: docs/compat.md).
        expect(seen.filter((r) => r.method === 'OPTIONS').map((r) => r.raw.toString('latin1'))).toEqual(probes);
      });
    }
  });
}

verifyCase(
  'verify_backend probes each new backend connection once, then persist_backend reuses it for later clients',
  TUTORIAL_OPTIONS,
  undefined,
  ['/a', '/b', '/c'],
  ['1:OPTIONS *', '1:GET /a', '1:GET /b', '1:GET /c'],
  [PROBE],
);

verifyCase(
  'verify_backend_path sets the probe target, and the probe status is ignored (500 keep-alive passes)',
  { ...TUTORIAL_OPTIONS, verify_backend_path: '/status500' },
  (req, name) =>
    req.method === 'OPTIONS'
      ? { bytes: 'HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\nno\n' }
      : defaultReply(name, req),
  ['/x'],
  ['1:OPTIONS /status500', '1:GET /x'],
  ['OPTIONS /status500 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'],
);

verifyCase(
  'a probe answered with Connection: close fails: the node is not probed again (no-verify list) and its next connection carries the request',
  TUTORIAL_OPTIONS,
  (req, name) =>
    req.method === 'OPTIONS'
      ? { bytes: 'HTTP/1.0 501 Unsupported method\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', close: true }
      : defaultReply(name, req),
  ['/x', '/y'],
  ['1:OPTIONS *', '2:GET /x', '2:GET /y'],
  [PROBE],
);
