// Perlbal's high_priority_cookie rule, pure: parsed as Service.pm's request_backend_connection parses the Cookie
// header (checked against Perl's own `(.*)=(.*)` split: `a=b=c` is name `a=b`, value `c`).
import { describe, expect, test } from 'bun:test';
import { cookieSaysHighPriority } from '../../src/proxy/plugin-options.ts';

describe('high_priority_cookie', () => {
  test('the named cookie whose value contains the contents makes a request high priority', () => {
    expect(cookieSaysHighPriority('session=x; hp=gold-member', 'hp', 'gold')).toBe(true);
    expect(cookieSaysHighPriority('session=x; hp=silver', 'hp', 'gold')).toBe(false);
    expect(cookieSaysHighPriority('session=gold', 'hp', 'gold')).toBe(false);
    expect(cookieSaysHighPriority(undefined, 'hp', 'gold')).toBe(false);
  });

  test('names and values are %-decoded, the last pair of a name wins, the split is at the last =', () => {
    expect(cookieSaysHighPriority('h%70=%67old', 'hp', 'gold')).toBe(true);
    expect(cookieSaysHighPriority('hp=gold; hp=none', 'hp', 'gold')).toBe(false);
    expect(cookieSaysHighPriority('hp=x=gold', 'hp=x', 'gold')).toBe(true);
    // Pairs are split on ';' followed by whitespace only, as Perlbal: 'a=1;hp=gold' is one pair named 'a=1;hp'.
    expect(cookieSaysHighPriority('a=1;hp=gold', 'hp', 'gold')).toBe(false);
  });

  test('with no contents set every request qualifies, cookie or not (Perlbal: index($v, undef) is 0)', () => {
    expect(cookieSaysHighPriority(undefined, 'hp', '')).toBe(true);
    expect(cookieSaysHighPriority('other=1', 'hp', '')).toBe(true);
  });
});
