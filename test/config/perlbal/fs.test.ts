import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { expandBraces, globPattern, MAX_BRACE_EXPANSIONS, memoryConfigFs, wildcardMatch } from '../../../src/config/perlbal/fs.ts';

/** A regex rendering of the same wildcard language, fine as a reference for short inputs. */
function reference(pattern: string, name: string): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[' && pattern.indexOf(']', i + 2) > 0) {
      const close = pattern.indexOf(']', i + 2);
      const body = pattern.slice(i + 1, close);
      re += body.startsWith('!') ? `[^${body.slice(1)}]` : `[${body}]`;
      i = close;
    } else re += c.replace(/[[\].]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's').test(name);
}

describe('INCLUDE globbing', () => {
  test('wildcardMatch agrees with a regex reference on random short patterns', () => {
    const piece = fc.constantFrom('a', 'b', '*', '?', '[ab]', '[!a]', '[a-b]', '.');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 8 }), fc.stringMatching(/^[ab.]{0,8}$/), (parts, name) => {
        const pattern = parts.join('');
        expect(wildcardMatch(pattern, name)).toBe(reference(pattern, name));
      }),
      { numRuns: 5000 },
    );
  });

  test('a pattern that would make a regex backtrack for ages is answered at once', () => {
    const started = performance.now();
    expect(wildcardMatch('*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(250))).toBe(false);
    expect(performance.now() - started).toBeLessThan(500);
  });

  test('braces expand like Perl glob ({x} is x), and refuse exponential growth', () => {
    expect(expandBraces('/etc/{a,b{c,d}}.conf')).toEqual(['/etc/a.conf', '/etc/bc.conf', '/etc/bd.conf']);
    expect(expandBraces('/etc/{hostname}')).toEqual(['/etc/hostname']);
    expect(expandBraces('{a,b}'.repeat(9))).toBeNull();
    expect(expandBraces('{a,b}'.repeat(8))).toHaveLength(MAX_BRACE_EXPANSIONS);
    expect(expandBraces('{'.repeat(20_000))).toEqual(['{'.repeat(20_000)]);
  });

  test('globPattern: sorted matches, hidden files only by name, literal paths returned as given', () => {
    const fs = memoryConfigFs({ '/c/b.conf': '', '/c/A.conf': '', '/c/.h.conf': '', '/c/x/y.conf': '' });
    expect(globPattern(fs, '*.conf', '/c')).toEqual(['/c/A.conf', '/c/b.conf']);
    expect(globPattern(fs, '/c/.*.conf', '/')).toEqual(['/c/.h.conf']);
    expect(globPattern(fs, '/c/*/y.conf', '/')).toEqual(['/c/x/y.conf']);
    expect(globPattern(fs, '/c/missing.conf', '/')).toEqual(['/c/missing.conf']);
    expect(globPattern(fs, '/nowhere/*.conf', '/')).toEqual([]);
  });
});
