// Certificate choice by server name: pure, no sockets.
import { describe, expect, test } from 'bun:test';
import { buildSniTable, pickCertificate } from '../../../src/proxy/tls/sni.ts';
import { httpsLocation } from '../../../src/proxy/hooks.ts';

describe('pickCertificate', () => {
  const table = buildSniTable([['a.test', 'www.a.test'], ['b.test', '*.b.test'], ['x.b.test', 'A.test']]);
  test.each([
    ['a.test', 0],
    ['WWW.A.TEST', 0],
    ['a.test.', 0],
    ['b.test', 1],
    ['x.b.test', 2],
    ['y.b.test', 1],
    ['deep.y.b.test', 0],
    ['unknown.test', 0],
    ['', 0],
  ] as const)('%s -> entry %d', (name, want) => {
    expect(pickCertificate(table, name)).toBe(want);
  });
  test('no server name at all gets the default', () => {
    expect(pickCertificate(table, undefined)).toBe(0);
    expect(pickCertificate(table, false)).toBe(0);
  });
});

describe('httpsLocation', () => {
  test.each([
    ['a.test', '/x?y=1', 443, 'https://a.test/x?y=1'],
    ['a.test:8080', '/', 443, 'https://a.test/'],
    ['a.test', '/p', 8443, 'https://a.test:8443/p'],
    ['[::1]:80', '/', 443, 'https://[::1]/'],
  ] as const)('%s %s :%d -> %s', (host, path, port, want) => {
    expect(httpsLocation(host, path, port)).toBe(want);
  });
  test('no Host, or a Host that would change the URL, gives no redirect', () => {
    expect(httpsLocation(null, '/', 443)).toBeNull();
    expect(httpsLocation('evil.test/x', '/', 443)).toBeNull();
    expect(httpsLocation('a@b', '/', 443)).toBeNull();
  });
});
