// bench/tls's ab report parser, from a captured ApacheBench 2.3 report (HTTPS, HAProxy answering).
import { expect, test } from 'bun:test';
import { parseAb } from '../../bench/tls/ab.ts';

const REPORT = `This is ApacheBench, Version 2.3 <$Revision$>
Benchmarking 127.0.0.1 (be patient).....done

Server Hostname:        127.0.0.1
Server Port:            18444
SSL/TLS Protocol:       TLSv1.3,TLS_AES_256_GCM_SHA384,256,256
Server Temp Key:        X25519 253 bits

Document Path:          /
Document Length:        2 bytes

Concurrency Level:      2
Time taken for tests:   0.176 seconds
Complete requests:      20
Failed requests:        0
Total transferred:      1700 bytes
Requests per second:    113.36 [#/sec] (mean)
`;

test('parseAb: completed requests over the time taken, no errors', () => {
  const r = parseAb(REPORT);
  expect(r.requests).toBe(20);
  expect(r.seconds).toBeCloseTo(0.176, 6);
  expect(r.requestsPerSecond).toBeCloseTo(20 / 0.176, 6);
  expect(r.errors).toBe(0);
});

test('parseAb: failed requests and non-2xx answers both count as errors', () => {
  const failing = REPORT.replace('Failed requests:        0', 'Failed requests:        3\n   (Connect: 0, Receive: 0, Length: 3, Exceptions: 0)')
    .replace('Total transferred:', 'Non-2xx responses:      5\nTotal transferred:');
  expect(parseAb(failing).errors).toBe(8);
});

test('parseAb: a report without totals (ab failed to start) throws with the text', () => {
  expect(() => parseAb('ab: invalid URL\n')).toThrow(/unparsable report:\nab: invalid URL/);
});
