// access_log on a real service: one line per request, including refused ones and the proxy's own 503s.
import { expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rawBackend, rawRequest, startTestProxy } from './helpers.ts';

test('access_log writes one combined-format line per request, with backend, status, time and attempts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsbal-alog-'));
  const file = join(dir, 'access.log');
  const b = await rawBackend('b');
  const { proxy, port } = await startTestProxy([b.port], { access_log: file });
  try {
    await rawRequest(port, 'GET /ok?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t/1\r\nReferer: http://r/\r\n\r\n', { until: (d) => d.endsWith('\n') });
    await rawRequest(port, 'GET /bad HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n', { timeoutMs: 1000 });
    await proxy.close();
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines.length).toBe(2);
    expect(lines[0]).toMatch(
      new RegExp(`^127\\.0\\.0\\.1 - - \\[[^\\]]+\\] "GET /ok\\?x=1 HTTP/1\\.1" 200 13 "http://r/" "t/1" backend=127\\.0\\.0\\.1:${b.port} backend_status=200 time=\\d+\\.\\d{3} attempts=1$`),
    );
    expect(lines[1]).toMatch(/^127\.0\.0\.1 - - \[[^\]]+\] "-" 400 - "-" "-" backend=- backend_status=- time=0\.000 attempts=0$/);
  } finally {
    await proxy.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
