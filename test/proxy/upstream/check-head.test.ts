import { describe, expect, test } from 'bun:test';
import { headStatus } from '../../../src/proxy/upstream/checks.ts';

function status(text: string): number {
  const b = Buffer.alloc(64);
  const n = b.write(text.slice(0, 64), 'latin1');
  return headStatus(b, n);
}

describe('check answer head', () => {
  test('an HTTP/1.0 or 1.1 status line gives its code once the byte after it is a space or CR', () => {
    expect(status('HTTP/1.1 200 OK\r\n')).toBe(200);
    expect(status('HTTP/1.0 503\r\n')).toBe(503);
    expect(status('HTTP/1.1 404 ')).toBe(404);
  });
  test('a head cut short waits for more', () => {
    expect(status('')).toBe(-1);
    expect(status('HTTP/1.1 20')).toBe(-1);
    expect(status('HTTP/1.1 200')).toBe(-1);
  });
  test('a line that is not a status line, or 32 bytes without one, is not an HTTP answer', () => {
    expect(status('SSH-2.0-OpenSSH\r\n')).toBe(-2);
    expect(status('HTTP/2.0 200 OK\r\n')).toBe(-2);
    expect(status('HTTP/1.1 2x0 OK\r\n')).toBe(-2);
    expect(status('HTTP/1.1 200x')).toBe(-1);
    expect(status('x'.repeat(32))).toBe(-2);
    expect(status('x'.repeat(31))).toBe(-1);
  });
});
