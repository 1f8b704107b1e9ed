import { describe, expect, test } from 'bun:test';
import { parsePerlbalConfig } from '../../src/config/perlbal.ts';
import { compileSelector, select, selectVhost, selectVpath } from '../../src/proxy/selector.ts';

const exists = (names: string[]) => (n: string) => names.includes(n);

describe('vhosts selection', () => {
  const vhosts = new Map([
    ['*.site.com', 'one'],
    ['othersite.com', 'two'],
    ['gone.com', 'nosuch'],
    ['*', 'fallback'],
    ['a.com;using:b.com', 'two'],
  ]);
  const pick = (host: string | null, path = '/', names = ['one', 'two', 'fallback']) => {
    const s = selectVhost(vhosts, host, path, exists(names));
    return s.kind === 'service' ? `${s.service}${s.host ? ` as ${s.host}` : ''}` : `${s.status} ${s.message}`;
  };

  test('exact, wildcard at any depth and for the bare domain, port and one trailing dot ignored, without case', () => {
    expect(['site.com', 'a.b.site.com', 'www.site.com:8080', 'www.site.com.', 'WWW.SITE.COM', 'othersite.com'].map((h) => pick(h))).toEqual([
      'one', 'one', 'one', 'one', 'one', 'two',
    ]);
  });

  test('an exact pattern does not cover subdomains; unknown hosts and a missing Host go to *', () => {
    expect(pick('www.othersite.com')).toBe('fallback');
    expect(pick(null)).toBe('fallback');
  });

  test('a rule whose target does not exist falls through', () => {
    expect(pick('gone.com')).toBe('fallback');
  });

  test('without a * rule: 404 Not Found (no configured vhost)', () => {
    expect(pick('unknown.org', '/', ['one', 'two'])).toBe('404 Not Found (no configured vhost)');
  });

  test('/__using/<host>/<word> picks the host;using: pair and rewrites Host; an unconfigured pair is a 404', () => {
    expect(pick('a.com', '/__using/b.com/x')).toBe('two as b.com');
    expect(pick('a.com', '/__using/c.com/x?q')).toBe('404 Vhost twiddling not configured for requested pair.');
    expect(pick('a.com', '/__using/b.com')).toBe('fallback');
  });
});

describe('vpaths selection and default_service', () => {
  const cfg = parsePerlbalConfig(
    'LOAD vpaths\nCREATE POOL p\nCREATE SERVICE one\nSET role = reverse_proxy\nSET pool = p\nCREATE SERVICE sel\nSET role = selector\n' +
      'SET listen = 127.0.0.1:8080\nSET plugins = vpaths\nVPATH ^/a = one\nVPATH \\?x= = nosuch\nSET default_service = one\nENABLE sel\n',
    { file: 'p.conf' },
  );
  const rules = compileSelector(cfg.services.find((s) => s.name === 'sel')!);

  test('the first regex matching the target (query included) wins; a missing target is a 404 naming it', () => {
    expect(selectVpath(rules.vpaths, '/a/b', exists(['one']))).toEqual({ kind: 'service', service: 'one' });
    expect(selectVpath(rules.vpaths, '/b?x=1', exists(['one']))).toEqual({ kind: 'page', status: 404, message: 'Not Found (nosuch not a defined service)' });
    expect(selectVpath(rules.vpaths, '/b', exists(['one']))).toBeNull();
  });

  test('no match: default_service; without one, a 404 (Perlbal hangs)', () => {
    expect(select(rules, null, '/zzz', exists(['one']))).toEqual({ kind: 'service', service: 'one' });
    expect(select({ ...rules, defaultService: null }, null, '/zzz', exists(['one']))).toEqual({ kind: 'page', status: 404, message: 'Not Found (no configured vpath)' });
  });

  test('a selector without a selecting plugin answers 500, as Perlbal', () => {
    expect(select({ ...rules, plugin: null }, null, '/a', exists(['one']))).toEqual({ kind: 'page', status: 500, message: 'No service selector configured.' });
  });
});
