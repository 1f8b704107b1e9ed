// Property tests over many thousands of random and mutated inputs: every parser either returns a model or
// throws a ConfigError whose diagnostics point into the files it read, and it never takes long.
import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../src/config/errors.ts';
import { parseHaCf } from '../../src/config/hacf.ts';
import { parseAuthKeys } from '../../src/config/authkeys.ts';
import { parseHaResources } from '../../src/config/haresources.ts';
import { memoryConfigFs, parsePerlbalConfig, readPerlbalConfig } from '../../src/config/perlbal.ts';
import { allServiceOptions } from '../../src/config/perlbal/options.ts';
import type { PerlbalConfig } from '../../src/config/model.ts';

const fixture = (p: string) => readFileSync(new URL(`./fixtures/${p}`, import.meta.url), 'utf8');
/**
 * Per input. Typical inputs take well under a millisecond; the bound is loose so a loaded CI machine (other
 * tests running wrk beside this) cannot fail it, and still catches any super-linear blow-up, which takes seconds.
 */
const MAX_MS = 1500;

const INCLUDED = {
  '/etc/perlbal/a.conf': 'CREATE POOL inc\nPOOL inc ADD 10.0.0.9\n',
  '/etc/perlbal/self.conf': 'LOAD include\nINCLUDE = /etc/perlbal/self.conf\n',
  '/etc/perlbal/nodes.dat': '10.0.0.1:81\njunk 10.0.0.2\n',
};
const FS = memoryConfigFs(INCLUDED, ['/var/www', '/tmp']);

/** Runs one parse and checks the outcome is a model or a located ConfigError, in time. */
function judge(parse: () => unknown, files: ReadonlySet<string>, maxLine: number): unknown {
  const started = performance.now();
  let result: unknown;
  try {
    result = parse();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    expect(error.diagnostics.length).toBeGreaterThan(0);
    for (const d of error.diagnostics) {
      expect(files.has(d.file)).toBe(true);
      expect(d.line).toBeGreaterThanOrEqual(0);
      expect(d.line).toBeLessThanOrEqual(maxLine);
      expect(d.severity).toBe('error');
      expect(d.message.length).toBeGreaterThan(0);
    }
  }
  expect(performance.now() - started).toBeLessThan(MAX_MS);
  return result;
}

const lineCount = (text: string) => text.split(/\r\n|\n|\r/).length;

/** A valid file mutated line-wise and character-wise. */
function mutated(base: string, vocabulary: readonly string[]): fc.Arbitrary<string> {
  const lines = base.split('\n');
  const op = fc.oneof(
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('swap' as const), at: fc.nat(), to: fc.nat() }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...vocabulary), fc.string({ maxLength: 30 })) }),
    fc.record({ kind: fc.constant('char' as const), at: fc.nat(), pos: fc.nat(), ch: fc.string({ minLength: 0, maxLength: 2, unit: 'binary' }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), pos: fc.nat() }),
  );
  return fc.array(op, { minLength: 1, maxLength: 8 }).map((ops) => {
    const out = [...lines];
    for (const o of ops) {
      const i = out.length === 0 ? 0 : o.at % out.length;
      if (o.kind === 'delete') out.splice(i, 1);
      else if (o.kind === 'duplicate' && out.length > 0) out.splice(i, 0, out[i]!);
      else if (o.kind === 'swap' && out.length > 0) {
        const j = o.to % out.length;
        [out[i], out[j]] = [out[j]!, out[i]!];
      } else if (o.kind === 'insert') out.splice(i, 0, o.text);
      else if (o.kind === 'char' && out.length > 0) {
        const l = out[i]!;
        const p = o.pos % (l.length + 1);
        out[i] = l.slice(0, p) + o.ch + l.slice(p + 1);
      } else if (o.kind === 'truncate' && out.length > 0) out[i] = out[i]!.slice(0, o.pos % (out[i]!.length + 1));
    }
    return out.join('\n');
  });
}

const anyText = fc.oneof(fc.string({ maxLength: 300, unit: 'binary' }), fc.string({ maxLength: 300 }), fc.lorem({ maxCount: 30, mode: 'sentences' }));

// --- perlbal.conf: commands built from the real vocabulary, so most lines get deep into the executor
const NAMES = ['s', 'p', 'sel', 'web', 'Mgmt', 'a_b', 'x', '__proto__', 'constructor'];
const KEYS = [...allServiceOptions(['EchoService', 'Throttle']).map((o) => o.name), 'plugins', 'extra.k', 'notmodified.host_pattern', 'nodefile', 'balance_method', 'bogus'];
const VALUES = ['on', 'off', '1', '0', 'maybe', '30', '1500ms', '2m', '-1', '256k', '10g', 'random', 'roundrobin', 'reverse_proxy', 'selector',
  'web_server', 'management', 'echo', '127.0.0.1:0', '80', 'localhost:80', 'p', 'sel', 'vhosts', 'vhosts, vpaths', 'none', '/var/www', '/etc/perlbal/nodes.dat',
  'conf/x.dat', '10.0.0.0/8', '0,.25,1', '"/tmp"', '$HOME', '${ip:lo}', '${nope}', '', 'x'.repeat(500)];
const command = fc.oneof(
  fc.tuple(fc.constantFrom('CREATE SERVICE', 'CREATE POOL', 'USE', 'ENABLE', 'DISABLE', 'create service'), fc.constantFrom(...NAMES, 'bad-name')).map(([c, n]) => `${c} ${n}`),
  fc.tuple(fc.constantFrom('', 's.', 'sel ', 'p.', 'nope.'), fc.constantFrom(...KEYS), fc.constantFrom(' = ', '=', ' =  '), fc.constantFrom(...VALUES)).map(([n, k, eq, v]) => `SET ${n}${k}${eq}${v}`),
  fc.tuple(fc.constantFrom('DEFAULT'), fc.constantFrom(...KEYS), fc.constantFrom(...VALUES)).map(([c, k, v]) => `${c} ${k} = ${v}`),
  fc.tuple(fc.constantFrom('POOL p ADD', 'POOL ADD p', 'POOL p REMOVE', 'POOL ADD', 'POOL p FROB'), fc.constantFrom('10.0.0.1', '10.0.0.2:8080', '1x2x3x4', 'host:80', '10.0.0.1:99999')).map(([c, a]) => `${c} ${a}`),
  fc.constantFrom('LOAD vhosts', 'LOAD Vpaths', 'LOAD include', 'LOAD AccessControl', 'LOAD redirect', 'LOAD EchoService', 'LOAD nosuch', 'UNLOAD vhosts', 'RELOAD vhosts'),
  fc.tuple(fc.constantFrom('VHOST', 'VHOST sel', 'VPATH', 'VPATH sel'), fc.constantFrom('*.a.com', '*', 'a.com', 'B/ad', '^/x[', '^/(a|b)'), fc.constantFrom('s', 'web', 'Nope', 'bad-x')).map(([c, p, t]) => `${c} ${p} = ${t}`),
  fc.constantFrom('HEADER s INSERT X-A: b', 'HEADER s REMOVE X-B', 'HEADER nope insert X: y', 'HEADER s insert X-A', 'ACCESS POLICY deny', 'ACCESS ALLOW ip 10.0.0.1',
    'ACCESS DENY netmask 10.0.0.0/8', 'ACCESS RESET', 'REDIRECT HOST a.com b.com', 'SERVER pidfile = /run/x.pid', 'SERVER max_connections = 10', 'SERVER foo = 1',
    'INCLUDE = /etc/perlbal/*.conf', 'INCLUDE = /etc/perlbal/a.conf', 'INCLUDE = /etc/perlbal/{a,b,c}{d,e}', 'INCLUDE = ' + '{a,b}'.repeat(12), 'VERBOSE on', 'show service', 'crash', '# comment', '', '   '),
  fc.string({ maxLength: 40 }),
);
const perlbalText = fc.array(command, { maxLength: 40 }).map((ls) => ls.join('\n'));

/** What must hold of any config the parser accepts. */
function checkModel(cfg: PerlbalConfig): void {
  const names = cfg.services.map((s) => s.name);
  expect(new Set(names).size).toBe(names.length);
  const specs = new Map(allServiceOptions(cfg.loadedPlugins.map((p) => p)).map((o) => [o.name, o]));
  for (const s of cfg.services) {
    expect(s.name).toMatch(/^\w+$/);
    expect(s.name).toBe(s.name.toLowerCase());
    if (s.pool !== null) expect(cfg.pools.some((p) => p.name === s.pool)).toBe(true);
    for (const [key, value] of Object.entries(s.options)) {
      const kind = specs.get(key)?.type.kind;
      if (value === null) continue;
      if (kind === 'bool') expect(typeof value).toBe('boolean');
      if (kind === 'int' || kind === 'size' || kind === 'time') expect(Number.isSafeInteger(value)).toBe(true);
    }
  }
  for (const p of cfg.pools) for (const n of p.nodes) expect(n.port).toBeGreaterThan(0);
}

describe('parsers never throw anything but a located ConfigError, and never hang', () => {
  test('perlbal.conf: random command sequences from the real vocabulary', () => {
    const files = new Set(['/etc/perlbal/perlbal.conf', ...Object.keys(INCLUDED)]);
    fc.assert(
      fc.property(perlbalText, (text) => {
        const cfg = judge(() => parsePerlbalConfig(text, { file: '/etc/perlbal/perlbal.conf', fs: FS, env: { HOME: '/root' } }), files, lineCount(text) + 10);
        if (cfg) checkModel(cfg as PerlbalConfig);
      }),
      { numRuns: 4000 },
    );
  }, 60_000);

  test('perlbal.conf: mutated tutorial and Debian configs, and arbitrary text', () => {
    const bases = ['tutorial/perlbal-section4.conf', 'tutorial/perlbal-section8.conf', 'debian/load-balancer.conf', 'debian/virtual-hosts.conf'].map(fixture);
    const vocabulary = ['ENABLE balancer', 'SET role = selector', 'CREATE POOL webfarm', 'SET plugins = vhosts', 'VHOST * = balancer', 'LOAD vhosts', 'USE mgmt'];
    const files = new Set(['p.conf', ...Object.keys(INCLUDED)]);
    const input = fc.oneof(...bases.map((b) => mutated(b, vocabulary)), anyText);
    fc.assert(fc.property(input, (text) => {
      const cfg = judge(() => parsePerlbalConfig(text, { file: 'p.conf', fs: FS }), files, lineCount(text));
      if (cfg) checkModel(cfg as PerlbalConfig);
    }), { numRuns: 3000 });
  }, 60_000);

  test('ha.cf: mutated tutorial files and arbitrary text', () => {
    const vocabulary = ['keepalive 2', 'deadtime 1', 'udpport 700', 'mcast eth0 239.0.0.1 694 1 0', 'node c', 'crm on', 'auto_failback off', 'initdead 1ms', 'ucast eth0'];
    const input = fc.oneof(mutated(fixture('tutorial/ha.d/ha.cf'), vocabulary), anyText);
    fc.assert(fc.property(input, (text) => void judge(() => parseHaCf(text, 'ha.cf', { localNode: 'lb1.example.com' }), new Set(['ha.cf']), lineCount(text))), { numRuns: 3000 });
  }, 60_000);

  test('authkeys: mutated and arbitrary text', () => {
    const vocabulary = ['auth 1', '1 sha1 k', '2 crc', '16 md5 x', 'auth', '3 md5'];
    const input = fc.oneof(mutated('auth 3\n3 md5 somerandomstring\n1 sha1 other', vocabulary), anyText);
    fc.assert(fc.property(input, (text) => void judge(() => parseAuthKeys(text, 'authkeys'), new Set(['authkeys']), lineCount(text))), { numRuns: 3000 });
  }, 60_000);

  test('haresources: mutated and arbitrary text', () => {
    const vocabulary = ['lb2 198.18.0.9/24/eth0/198.18.0.255', 'lb1 IPaddr2::1.2.3.4/33', 'lb1 \\', 'node IPaddr::', '# x', 'lb1 httpd::a::b'];
    const input = fc.oneof(mutated('lb1.example.com 192.168.0.99\nlb2 IPaddr2::198.18.0.98/24/eth0:vip perlbal', vocabulary), anyText);
    fc.assert(fc.property(input, (text) => void judge(() => parseHaResources(text, 'haresources'), new Set(['haresources']), lineCount(text))), { numRuns: 3000 });
  }, 60_000);

  test('names like __proto__ and constructor are plain names', () => {
    const text = ['LOAD AccessControl', 'LOAD redirect', 'CREATE SERVICE __proto__', 'SET role = reverse_proxy', 'ACCESS POLICY deny', 'REDIRECT HOST a b',
      'SET __proto__.extra.__proto__ = x', 'CREATE SERVICE constructor', 'SET role = management', 'SET listen = 127.0.0.1:1', 'ENABLE constructor', '__proto__', 'constructor = 1'].join('\n');
    const r = readPerlbalConfig(text, { file: 'p.conf' });
    expect(r.value.access['__proto__']?.policy).toBe('deny');
    expect(Object.hasOwn(r.value.access, 'constructor')).toBe(false);
    expect(({} as Record<string, unknown>).policy).toBeUndefined();
    expect(r.value.services.map((s) => s.name)).toEqual(['__proto__', 'constructor']);
    expect(() => parseHaCf('__proto__ x\nconstructor y\n', 'ha.cf')).toThrow(ConfigError);
  });

  test('one huge line or many lines stay fast', () => {
    const huge = `SET ${'x'.repeat(200_000)} = ${'y'.repeat(200_000)}`;
    judge(() => parsePerlbalConfig(huge, { file: 'p.conf' }), new Set(['p.conf']), 1);
    judge(() => parsePerlbalConfig(`HEADER s insert ${'a '.repeat(100_000)}`, { file: 'p.conf' }), new Set(['p.conf']), 1);
    judge(() => parseHaCf(`node ${'a,'.repeat(100_000)}`, 'ha.cf'), new Set(['ha.cf']), 1);
    judge(() => parseHaResources(`lb1 ${'\\\n'.repeat(20_000)}1.2.3.4`, 'haresources'), new Set(['haresources']), 20_001);
  });
});
