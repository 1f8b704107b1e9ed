import { describe, expect, test } from 'bun:test';
import { prometheusText } from '../../../src/proxy/management/metrics.ts';

describe('Prometheus text exposition', () => {
  test('HELP and TYPE once per family, labels quoted and escaped, empty families left out', () => {
    const text = prometheusText([
      { name: 'tsbal_retries_total', help: 'Retries.', type: 'counter', samples: [{ labels: { service: 'a' }, value: 3 }, { labels: { service: 'b"\\\n' }, value: 0 }] },
      { name: 'tsbal_empty', help: 'Nothing.', type: 'gauge', samples: [] },
      { name: 'tsbal_start_time_seconds', help: 'Start.', type: 'gauge', samples: [{ labels: {}, value: 1795635580 }] },
    ]);
    expect(text).toBe(
      '# HELP tsbal_retries_total Retries.\n# TYPE tsbal_retries_total counter\n' +
        'tsbal_retries_total{service="a"} 3\ntsbal_retries_total{service="b\\"\\\\\\n"} 0\n' +
        '# HELP tsbal_start_time_seconds Start.\n# TYPE tsbal_start_time_seconds gauge\ntsbal_start_time_seconds 1795635580\n',
    );
  });

});
