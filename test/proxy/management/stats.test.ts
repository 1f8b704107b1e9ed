import { describe, expect, test } from 'bun:test';
import { countResponse, countResponseCode, newNodeStats, newServiceStats, RESPONSE_WINDOW, responseCodeCounts } from '../../../src/proxy/management/stats.ts';

describe('management counters', () => {
  test('response codes are counted over the last 500 responses only, as Perlbal does', () => {
    const s = newNodeStats('127.0.0.1:80');
    for (let i = 0; i < RESPONSE_WINDOW; i++) countResponseCode(s, 500, i);
    for (let i = 0; i < 20; i++) countResponseCode(s, 200, 1000 + i);
    expect(responseCodeCounts(s)).toEqual([[200, 20], [500, RESPONSE_WINDOW - 20]]);
    expect(s.requests).toBe(RESPONSE_WINDOW + 20);
    expect(s.lastResponseMs).toBe(1019);
  });

  test('service responses by status class; anything outside 1xx-5xx counts as other', () => {
    const s = newServiceStats();
    countResponse(s, 200, 10);
    countResponse(s, 204, 0);
    countResponse(s, 503, 5);
    countResponse(s, 999, 0);
    expect(s.responses).toEqual([1, 0, 2, 0, 0, 1]);
    expect(s.responseBytes).toBe(15);
  });
});
