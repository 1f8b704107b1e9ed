import { describe, expect, test } from 'bun:test';
import { compileRedirects, hostCandidates, redirectHost, redirectLocation } from '../../src/proxy/redirect.ts';

describe('Redirect host matching (Perlbal::Plugin::Redirect)', () => {
  test('keys are tried exact, *.host, one label less at a time, then *', () => {
    expect(hostCandidates('a.b.site.com')).toEqual(['a.b.site.com', '*.a.b.site.com', '*.b.site.com', '*.site.com', '*.com', '*']);
    expect(hostCandidates('localhost')).toEqual(['localhost', '*.localhost', '*']);
  });

  test('the Host is lowercased and a :port stripped; a missing or empty Host tries only *', () => {
    expect(hostCandidates('WWW.Site.COM:8080')[0]).toBe('www.site.com');
    expect(hostCandidates(null)).toEqual(['*']);
    expect(hostCandidates('')).toEqual(['*']);
  });

  const map = compileRedirects([
    { from: 'Old.com', to: 'New.example' },
    { from: '*.wild.com', to: 'www.wild.com' },
  ]);

  test('exact and wildcard rules; *.domain also covers the bare domain; anything else is not redirected', () => {
    expect(redirectHost(map, 'old.com')).toBe('new.example');
    expect(redirectHost(map, 'www.old.com')).toBeNull();
    expect(redirectHost(map, 'wild.com')).toBe('www.wild.com');
    expect(redirectHost(map, 'x.y.wild.com:81')).toBe('www.wild.com');
    expect(redirectHost(map, 'evilwild.com')).toBeNull();
    expect(redirectHost(map, null)).toBeNull();
  });

  test('a * rule catches every host, including a request without Host', () => {
    const all = compileRedirects([{ from: '*', to: 'www.example.com' }]);
    expect(redirectHost(all, null)).toBe('www.example.com');
    expect(redirectHost(all, 'anything.org')).toBe('www.example.com');
  });

  test('Location is http://<target><path>, the path and query as requested', () => {
    expect(redirectLocation(map, 'OLD.COM', '/a/b?c=d')).toBe('http://new.example/a/b?c=d');
    expect(redirectLocation(map, 'other.com', '/')).toBeNull();
  });
});
