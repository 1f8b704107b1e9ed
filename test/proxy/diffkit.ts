// Differential testing of tsbal against real Perlbal 1.80: the same perlbal.conf and the same client bytes go
// through either proxy to raw logging backends; what the backends saw and what the client got are then
// compared, after removing only the differences docs/compat.md declares (HTTP/1.1 and hop-by-hop handling
// towards backends, X-Forwarded-Proto and X-Real-IP, the client-side status line version and keep-alive
// headers).
import { test as testImpl } from 'bun:test';
import { type PerlbalConfProxy, startPerlbal, startWithConf, launchPerlbal } from '../harness/perlbal.ts';
import type { ReverseProxySpec } from '../harness/perlbalconf.ts';
import { launchSingleTsbal, startTsbal, startTsbalWithConf, tsbalRunExists } from '../harness/tsbal.ts';
import { type Head, header, parseHead } from '../harness/httpwire.ts';
import { type RawBackend, type RecordedRequest, type Reply, startRawBackend } from '../harness/rawbackend.ts';
import { type ReadOutcome, exchange } from '../harness/rawclient.ts';

export type ProxyKind = 'perlbal' | 'tsbal';
export const KINDS: readonly ProxyKind[] = ['perlbal', 'tsbal'];

/** Checked once per test file: tsbal cases are `test.todo` until `tsbal run` exists. */
export const TSBAL_RUNS = tsbalRunExists();

export interface BackendSpec {
  name: string;
  reply?: (req: RecordedRequest, name: string) => Reply;
}

export interface Rig {
  kind: ProxyKind;
  proxy: PerlbalConfProxy;
  backends: RawBackend[];
  stop(): Promise<void>;
}

async function withBackends(
  backendSpecs: readonly BackendSpec[],
  start: (backends: RawBackend[]) => Promise<PerlbalConfProxy>,
  kind: ProxyKind,
): Promise<Rig> {
  const backends = await Promise.all(backendSpecs.map((b) => startRawBackend(b)));
  try {
    const proxy = await start(backends);
    return {
      kind,
      proxy,
      backends,
      async stop() {
        await proxy.stop();
        await Promise.all(backends.map((b) => b.close()));
      },
    };
  } catch (error) {
    await Promise.all(backends.map((b) => b.close()));
    throw error;
  }
}

/** Raw backends plus a reverse proxy (Perlbal or tsbal) in front of them, from one spec. */
export function startRig(
  kind: ProxyKind,
  spec: Omit<ReverseProxySpec, 'backends'>,
  backendSpecs: readonly BackendSpec[] = [{ name: 'b1' }],
): Promise<Rig> {
  return withBackends(
    backendSpecs,
    (backends) => {
      const full = { ...spec, backends: backends.map((b) => b.port) };
      return kind === 'perlbal' ? startPerlbal(full) : startTsbal(full);
    },
    kind,
  );
}

/** Like startRig with a hand-written config: `conf(listenPort, backendPorts)`. */
export function startRigWithConf(
  kind: ProxyKind,
  conf: (listenPort: number, backendPorts: number[]) => string,
  backendSpecs: readonly BackendSpec[],
): Promise<Rig> {
  return withBackends(
    backendSpecs,
    (backends) => {
      const build = (ports: number[]) => ({ text: conf(ports[0]!, backends.map((b) => b.port)), ready: [ports[0]!] });
      return kind === 'perlbal' ? startWithConf('perlbal', 1, build, launchPerlbal) : startTsbalWithConf(1, build);
    },
    kind,
  );
}

/** A proxy listening on several ports (one per service under test), with raw backends behind it. */
export interface MultiRig {
  kind: ProxyKind;
  proxy: PerlbalConfProxy;
  /** The listen ports handed to `conf`, in order. */
  ports: number[];
  backends: RawBackend[];
  stop(): Promise<void>;
}

/**
 * Like startRigWithConf with `portCount` listening services: `conf(ports, backendPorts)`. `perl5lib` adds
 * directories to Perlbal's module path (e.g. Net::Netmask, which Debian's Perlbal lacks).
 */
export function startMultiRig(
  kind: ProxyKind,
  portCount: number,
  conf: (ports: number[], backendPorts: number[]) => string,
  backendSpecs: readonly BackendSpec[],
  options: { perl5lib?: string } = {},
): Promise<MultiRig> {
  let ports: number[] = [];
  const launch =
    kind === 'tsbal'
      ? // One process, as Perlbal is (harness/tsbal.ts launchSingleTsbal).
        launchSingleTsbal({ kind: 'source' })
      : (confPath: string, dir: string) => {
          const l = launchPerlbal(confPath, dir);
          return options.perl5lib === undefined ? l : { ...l, env: { ...l.env, PERL5LIB: `${l.env.PERL5LIB}:${options.perl5lib}` } };
        };
  return withBackends(
    backendSpecs,
    (backends) =>
      startWithConf(
        kind,
        portCount,
        (p) => {
          ports = p;
          return { text: conf(p, backends.map((b) => b.port)), ready: p };
        },
        launch,
      ),
    kind,
  ).then((rig) => ({ ...rig, ports }));
}

export interface Observation {
  outcome: ReadOutcome;
  closedAfter: boolean;
  /** Requests the backends received during the exchange, OPTIONS probes included, in arrival order. */
  seen: RecordedRequest[];
}

/** Sends one request on a fresh client connection and collects what the backends saw meanwhile. */
export async function observe(
  rig: Rig,
  request: string,
  options: { timeoutMs?: number; closeWaitMs?: number; settleMs?: number; localAddress?: string } = {},
): Promise<Observation> {
  const before = rig.backends.map((b) => b.requests().length);
  const method = request.slice(0, request.indexOf(' '));
  const { outcome, closedAfter } = await exchange(rig.proxy.port, request, { method, ...options });
  if (options.settleMs) await new Promise((r) => setTimeout(r, options.settleMs));
  const seen = rig.backends.flatMap((b, i) => b.requests().slice(before[i]));
  return { outcome, closedAfter, seen };
}

export const proxiedOnly = (seen: readonly RecordedRequest[]): RecordedRequest[] =>
  seen.filter((r) => r.method !== 'OPTIONS');

// ---------------------------------------------------------------------------------------------
// normalisation: what both proxies must agree on

/** Hop-by-hop headers (RFC 9110 7.6.1 plus the legacy ones). Perlbal forwards all but Connection. */
export const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
/** Set by tsbal on every backend request, passed through (spoofable) by Perlbal. */
export const TSBAL_FORWARDING = ['x-forwarded-proto', 'x-real-ip'];

/**
 * Headers as `Name: value` lines, merged per name the way Perlbal merges duplicates (first occurrence's
 * position and case, values joined with ", "), without the names in `exclude` (lowercase).
 */
export function mergedHeaders(head: Head, exclude: readonly string[] = []): string[] {
  const merged = new Map<string, { name: string; values: string[] }>();
  for (const [name, value] of head.headers) {
    const key = name.toLowerCase();
    if (exclude.includes(key)) continue;
    const entry = merged.get(key);
    if (entry) entry.values.push(value);
    else merged.set(key, { name, values: [value] });
  }
  return [...merged.values()].map(({ name, values }) => `${name}: ${values.join(', ')}`);
}

/** Header names a client listed in its Connection header (hop-by-hop by declaration). */
export function connectionTokens(request: string): string[] {
  const head = parseHead(Buffer.from(request, 'latin1'));
  const value = head ? header(head.headers, 'connection') : undefined;
  return (value ?? '')
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
}

/** A backend request reduced to what tsbal and Perlbal must both produce. */
export function comparableRequest(req: RecordedRequest, alsoExclude: readonly string[] = []): string[] {
  return [
    `${req.method} ${req.target}`,
    ...mergedHeaders(req.head, [...HOP_BY_HOP, ...TSBAL_FORWARDING, ...alsoExclude]),
    `body=${JSON.stringify(req.raw.subarray(req.head.length).toString('latin1'))}`,
  ];
}

/**
 * A client response reduced to what tsbal and Perlbal must both produce: Set-Cookie lines kept apart (both
 * proxies do), other repeated fields merged (Perlbal joins them with ", ", tsbal keeps the lines: same meaning).
 */
export function comparableResponse(outcome: ReadOutcome): string[] {
  if (outcome.kind !== 'response') return [`no response: ${outcome.kind}`];
  const { head, body } = outcome.response;
  const statusLine = head.startLine.replace(/^HTTP\/1\.[01] /, '');
  const cookies = head.headers.filter(([name]) => name.toLowerCase() === 'set-cookie').map(([n, v]) => `${n}: ${v}`);
  const others = mergedHeaders(head, ['connection', 'keep-alive', 'set-cookie']);
  return [statusLine, ...others, ...cookies, `body=${JSON.stringify(body.toString('latin1'))}`];
}

/**
 * comparableResponse plus the connection handling (Connection, Keep-Alive, closed or kept open), for pages the proxy
 * generates (plugin and selector answers), less their declared differences (docs/compat.md): `Server: Perlbal` or
 * `Server: tsbal`, and Perlbal's 301 reason phrase (`Permanent Redirect`, tsbal: `Moved Permanently`).
 */
export function comparableAnswer(outcome: ReadOutcome, closedAfter: boolean): string[] {
  const lines = comparableResponse(outcome).map((l) =>
    l === 'Server: Perlbal' || l === 'Server: tsbal' ? 'Server: <proxy>' : l === '301 Permanent Redirect' ? '301 Moved Permanently' : l,
  );
  if (outcome.kind === 'response') {
    for (const [name, value] of outcome.response.head.headers) if (/^(connection|keep-alive)$/i.test(name)) lines.push(`${name}: ${value}`);
  }
  return [...lines, closedAfter ? '(closed)' : '(kept open)'];
}

export { header };

/** One rig per proxy kind, started on first use and stopped by stopAll() (from afterAll). */
export function lazyRigs(start: (kind: ProxyKind) => Promise<Rig>): {
  get(kind: ProxyKind): Promise<Rig>;
  stopAll(): Promise<void>;
} {
  const rigs = new Map<ProxyKind, Promise<Rig>>();
  return {
    get(kind) {
      let rig = rigs.get(kind);
      if (!rig) rigs.set(kind, (rig = start(kind)));
      return rig;
    },
    async stopAll() {
      const all = await Promise.allSettled(rigs.values());
      await Promise.all(all.map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)));
    },
  };
}

/** `test` for Perlbal, and for tsbal once `tsbal run` exists; `test.todo` for tsbal before that. */
export function testFor(kind: ProxyKind): typeof testImpl {
  return kind === 'tsbal' && !TSBAL_RUNS ? (testImpl.todo as typeof testImpl) : testImpl;
}
