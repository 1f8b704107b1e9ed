// The pure buffered-upload decisions (src/proxy/spool.ts), as Perlbal's ClientProxy.pm makes them.
import { describe, expect, test } from 'bun:test';
import { decideAfterRead, decideAtHead, lengthHead, type UploadPolicy } from '../../src/proxy/spool.ts';

const policy: UploadPolicy = {
  bufferBackendConnect: 100 * 1024,
  bufferUploads: true,
  path: '/tmp',
  thresholdSize: 250 * 1024,
  thresholdRate: 0,
  thresholdTimeMs: 5000,
};

describe('buffered upload decisions', () => {
  test('a Content-Length at or over buffer_upload_threshold_size spools from the head; under it does not', () => {
    expect(decideAtHead(policy, 'length', 250 * 1024)).toBe('size');
    expect(decideAtHead(policy, 'length', 250 * 1024 - 1)).toBeNull();
    expect(decideAtHead({ ...policy, thresholdSize: 0 }, 'length', 10 ** 9)).toBeNull();
  });

  test('a chunked body spools from the head (its size is unknown), only with buffer_uploads', () => {
    expect(decideAtHead(policy, 'chunked', 0)).toBe('chunked');
    expect(decideAtHead({ ...policy, bufferUploads: false }, 'chunked', 0)).toBeNull();
  });

  test('under buffer_backend_connect the body is held in memory; a complete body goes to a backend', () => {
    expect(decideAfterRead(policy, 1000, 5000, false, 10)).toEqual({ kind: 'wait' });
    expect(decideAfterRead(policy, 1000, 0, true, 10)).toEqual({ kind: 'dispatch' });
  });

  test('a client slower than buffer_upload_threshold_rate is spooled; a fast one goes to a backend', () => {
    const p = { ...policy, bufferBackendConnect: 1000, thresholdRate: 10_000, thresholdTimeMs: 0 };
    // 2000 bytes in 2 s: 1000 B/s.
    expect(decideAfterRead(p, 2000, 50_000, false, 2000)).toEqual({ kind: 'spool', reason: 'rate' });
    // 20000 bytes in 1 s.
    expect(decideAfterRead(p, 20_000, 50_000, false, 1000)).toEqual({ kind: 'dispatch' });
  });

  test('a zero duration counts as one second, as in Perlbal; a short one is a high rate', () => {
    const p = { ...policy, bufferBackendConnect: 1000, thresholdRate: 10_000, thresholdTimeMs: 0 };
    expect(decideAfterRead(p, 5000, 1, false, 0)).toEqual({ kind: 'spool', reason: 'rate' });
    // 5000 bytes in 100 ms: 50000 B/s.
    expect(decideAfterRead(p, 5000, 1, false, 100)).toEqual({ kind: 'dispatch' });
  });

  test('an estimated time for the rest over buffer_upload_threshold_time spools', () => {
    const p = { ...policy, bufferBackendConnect: 1000 };
    // 100 KiB/s with 1 MB to go: 10 s > 5 s.
    expect(decideAfterRead(p, 102_400, 1_024_000, false, 1000)).toEqual({ kind: 'spool', reason: 'time' });
    expect(decideAfterRead(p, 102_400, 102_400, false, 1000)).toEqual({ kind: 'dispatch' });
  });

  test('without buffer_uploads a body over buffer_backend_connect goes to a backend', () => {
    expect(decideAfterRead({ ...policy, bufferUploads: false, thresholdRate: 10 ** 9 }, 200_000, 10 ** 9, false, 5000)).toEqual({ kind: 'dispatch' });
  });

  test('a de-chunked spooled body goes out with Content-Length instead of Transfer-Encoding, and without Expect', () => {
    const head = Buffer.from('POST /u HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\nExpect: 100-continue\r\nX-A: 1\r\n\r\n', 'latin1');
    expect(lengthHead(head, 11).toString('latin1')).toBe('POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nX-A: 1\r\n\r\n');
  });
});
