// EchoService's `echo` role, differentially: the same perlbal.conf through real Perlbal 1.80 and `tsbal run`, the
// same bytes sent to both, the bytes that come back (and when) compared.
import { afterAll, describe, expect, test } from 'bun:test';
import net from 'node:net';
import { takeEchoLines } from '../../src/proxy/echo.ts';
import { LOOPBACK } from '../harness/ports.ts';
import { KINDS, type MultiRig, type ProxyKind, startMultiRig, testFor } from './diffkit.ts';

const HAVE_PERLBAL = await Bun.file('/usr/share/perl5/Perlbal.pm').exists();

const conf = ([plain, delayed]: number[]): string => `LOAD EchoService
CREATE SERVICE echo
  SET listen = ${LOOPBACK}:${plain}
  SET role = echo
ENABLE echo
CREATE SERVICE echo_delayed
  SET listen = ${LOOPBACK}:${delayed}
  SET role = echo
  SET echo_delay = 1
ENABLE echo_delayed
`;

const rigs = new Map<ProxyKind, Promise<MultiRig>>();
const rigFor = (kind: ProxyKind): Promise<MultiRig> => {
  let rig = rigs.get(kind);
  if (!rig) rigs.set(kind, (rig = startMultiRig(kind, 2, (ports) => conf(ports), [])));
  return rig;
};

/** Sends `chunks` (a pause between them), collects what comes back within `waitMs`, with the ms of the first byte. */
async function talk(kind: ProxyKind, service: number, chunks: string[], waitMs: number): Promise<{ got: string; firstMs: number; closed: boolean }> {
  const rig = await rigFor(kind);
  const sock = net.connect(rig.ports[service]!, LOOPBACK);
  const start = performance.now();
  let got = '';
  let firstMs = -1;
  let closed = false;
  sock.on('data', (b) => {
    if (firstMs < 0) firstMs = performance.now() - start;
    got += b.toString('latin1');
  });
  sock.on('close', () => (closed = true));
  sock.on('error', () => {});
  await new Promise<void>((r) => sock.once('connect', () => r()));
  for (const c of chunks) {
    sock.write(c);
    await Bun.sleep(50);
  }
  await Bun.sleep(waitMs);
  sock.destroy();
  return { got, firstMs, closed };
}

describe('EchoService (role echo) matches Perlbal 1.80', () => {
  afterAll(async () => {
    const all = await Promise.allSettled(rigs.values());
    await Promise.all(all.map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)));
  });

  test('lines are taken as Perlbal takes them: one character at least, LF or CRLF; an empty line stops the loop', () => {
    expect(takeEchoLines('a\r\nb\nc')).toEqual({ lines: ['a', 'b'], rest: 'c' });
    expect(takeEchoLines('\r\nx\n')).toEqual({ lines: ['\r', 'x'], rest: '' });
    expect(takeEchoLines('\nx\n')).toEqual({ lines: [], rest: '\nx\n' });
  });

  const run = HAVE_PERLBAL ? testFor('tsbal') : test.skip;
  const CASES: Array<[string, string[]]> = [
    ['each line comes back with CRLF, LF or CRLF in', ['hello\r\nworld\n']],
    ['a line split over two packets is echoed once whole; a line without its end is not', ['hel', 'lo\npartial']],
    ['an empty line stops the echo for good (Perlbal\'s s/^(.+?)\\r?\\n//)', ['a\n\nb\nc\n']],
  ];
  for (const [name, chunks] of CASES) {
    run(name, async () => {
      const [perlbal, tsbal] = await Promise.all(KINDS.map((k) => talk(k, 0, chunks, 300)));
      expect(perlbal!.got).toStartWith(chunks[0]![0]!);
      expect(tsbal!.got).toEqual(perlbal!.got);
      expect(tsbal!.closed).toBe(perlbal!.closed);
    });
  }

  run('echo_delay = 1: the line comes back after a second, not before', async () => {
    const [perlbal, tsbal] = await Promise.all(KINDS.map((k) => talk(k, 1, ['slow\n'], 1600)));
    expect(perlbal!.got).toBe('slow\r\n');
    expect(tsbal!.got).toBe(perlbal!.got);
    expect(tsbal!.firstMs).toBeGreaterThanOrEqual(950);
    expect(perlbal!.firstMs).toBeGreaterThanOrEqual(950);
  });
});
