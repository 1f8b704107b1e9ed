// The client address behind trusted proxies, as the source hash of `sticky = source` keys on it.
import { describe, expect, test } from 'bun:test';
import { parseRequestHead } from '../../src/proxy/http/request.ts';
import { forwardedClientIp } from '../../src/proxy/trust.ts';

function fields(lines: string) {
  const buf = Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\n${lines}\r\n`, 'latin1');
  const req = parseRequestHead(buf, 0, buf.length - 4, { maxHeaderSize: 8192, maxHeaderCount: 100, maxUrlLength: 8192 });
  if (req.kind === 'error') throw new Error(req.reason);
  return req.fields;
}

describe('forwardedClientIp', () => {
  test('the last address of the last X-Forwarded-For field: the one the trusted proxy in front of us added', () => {
    expect(forwardedClientIp(fields('X-Forwarded-For: 203.0.113.9\r\n'), '127.0.0.1')).toBe('203.0.113.9');
    expect(forwardedClientIp(fields('X-Forwarded-For: 10.9.9.9, 203.0.113.9\r\n'), '127.0.0.1')).toBe('203.0.113.9');
    expect(forwardedClientIp(fields('X-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2001:db8::7 \r\n'), '127.0.0.1')).toBe('2001:db8::7');
  });

  test('no field, an empty one or one that is not an address: the peer itself', () => {
    expect(forwardedClientIp(fields(''), '127.0.0.1')).toBe('127.0.0.1');
    expect(forwardedClientIp(fields('X-Forwarded-For: 1.1.1.1,\r\n'), '127.0.0.1')).toBe('127.0.0.1');
    expect(forwardedClientIp(fields('X-Forwarded-For: unknown\r\n'), '127.0.0.1')).toBe('127.0.0.1');
  });
});
