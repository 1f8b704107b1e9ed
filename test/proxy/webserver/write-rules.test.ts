import { describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { deleteTarget, errnoText, md5Matches, putTarget } from '../../../src/proxy/webserver/write-rules.ts';

const INVALID = { kind: 'page', status: 400, message: 'Invalid filename' } as const;

describe('web_server write rules (Perlbal ClientHTTP)', () => {
  test('a PUT target is /dir/.../name of conservative characters; min_put_directory splits existing from made', () => {
    expect(putTarget('/a.txt', 0)).toEqual({ kind: 'ok', existing: [], made: [], filename: 'a.txt' });
    expect(putTarget('/up/new/deeper/f-1_2.txt', 1)).toEqual({ kind: 'ok', existing: ['up'], made: ['new', 'deeper'], filename: 'f-1_2.txt' });
    expect(putTarget('/up/f', 2)).toEqual({ kind: 'page', status: 400, message: 'Does not meet minimum directory requirement' });
    expect(putTarget('/a/b/f', 2)).toEqual({ kind: 'ok', existing: ['a', 'b'], made: [], filename: 'f' });
  });

  test('refuses .., queries, encoded bytes, spaces, a trailing slash, an empty or . component', () => {
    for (const t of ['/a/../b', '/..', '/a..b', '/q.txt?x=1', '/sp%20ace', '/sp ace', '/up/', '/', '//a', '/./a', '/a/.', 'a.txt', '/é.txt']) {
      expect([t, putTarget(t, 0)]).toEqual([t, INVALID]);
    }
  });

  test('a DELETE target is one or more conservative components', () => {
    expect(deleteTarget('/a/b.txt')).toEqual({ kind: 'ok', parts: ['a', 'b.txt'] });
    for (const t of ['/', '/a/', '/a/../b', '/a?x', '/a/./b', '/a%2fb']) expect([t, deleteTarget(t)]).toEqual([t, INVALID]);
  });

  test('Content-MD5 compares base64 digests without their = padding, as Perlbal does', () => {
    const d = createHash('md5').update('checked').digest('base64');
    expect(d.endsWith('==')).toBe(true);
    expect(md5Matches(d, d)).toBe(true);
    expect(md5Matches(d.replace(/=+$/, ''), d)).toBe(true);
    expect(md5Matches(`${d} `, d)).toBe(true);
    expect(md5Matches(createHash('md5').update('other').digest('base64'), d)).toBe(false);
    expect(md5Matches('', d)).toBe(false);
  });

  test("gives Perl's $! text for the errors Perlbal puts in its pages", () => {
    expect(errnoText('EISDIR')).toBe('Is a directory');
    expect(errnoText('EACCES')).toBe('Permission denied');
    expect(errnoText('EXDEV')).toBe('EXDEV');
  });
});
