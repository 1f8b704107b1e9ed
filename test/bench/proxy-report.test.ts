// bench/proxy's report: ratios against the reference proxies and issue 4's targets, from fixed numbers.
import { expect, test } from 'bun:test';
import { type Measurement, type Shape, aggregateRounds, checkTargets, connCostTargets, markdownTables } from '../../bench/proxy/report.ts';

const m = (proxy: string, connections: number, rps: number, p99Ms: number, cpu: number, rss: number, shape: Shape = 'keep-alive'): Measurement => ({
  proxy,
  shape,
  connections,
  requests: rps * 10,
  seconds: 10,
  rps,
  p50Ms: p99Ms / 4,
  p99Ms,
  cpuSecondsPer100k: cpu,
  rssMaxMiB: rss,
  errors: 0,
  backendCpuSecondsPer100k: 2,
  backendConnsPer100k: 5,
});

const RUN = [
  m('haproxy', 256, 40_000, 10, 3, 20),
  m('nginx', 256, 50_000, 8, 2.5, 15),
  m('perlbal', 256, 5_000, 80, 27.8, 40),
  m('tsbal', 256, 36_000, 16, 3.6, 90),
];

test('tables give each proxy its ratios against HAProxy, nginx and Perlbal of the same run', () => {
  const tsbalRow = markdownTables(RUN).split('\n').find((line) => line.startsWith('| tsbal '));
  expect(tsbalRow).toBe('| tsbal | 36000 | 4.00 | 16.00 | 3.60 | 90.0 | 0 | 2.00 | 5 | 0.90× | 1.20× | 1.60× | – | 0.72× | 1.44× | 7.20× | 0.13× |');
});

test('targets: CPU and req/s met, p99 and RSS missed, 6× Perlbal met', () => {
  expect(checkTargets(RUN, 'tsbal').map((c) => `${c.target}: ${c.actual} ${c.met ? 'met' : 'missed'}`)).toEqual([
    'CPU per request ≤ 1.3× HAProxy: 1.20× met',
    'req/s ≥ 0.85× HAProxy: 0.90× met',
    'p99 ≤ 1.5× HAProxy: 1.60× missed',
    'req/s ≥ 6× Perlbal: 7.20× met',
    'RSS < 80 MiB: 90.00 MiB missed',
  ]);
});

test('rounds aggregate to the median of req/s, latency and CPU, the max of RSS and the sum of errors', () => {
  const rounds = [m('tsbal', 64, 30_000, 9, 3.0, 60), m('tsbal', 64, 10_000, 90, 9.0, 70), m('tsbal', 64, 32_000, 8, 2.8, 65)];
  rounds[1]!.errors = 4;
  expect(aggregateRounds(rounds)).toEqual([
    { proxy: 'tsbal', shape: 'keep-alive', connections: 64, requests: 720_000, seconds: 30, rps: 30_000, p50Ms: 2.25, p99Ms: 9, cpuSecondsPer100k: 3.0, rssMaxMiB: 70, errors: 4,
      backendCpuSecondsPer100k: 2, backendConnsPer100k: 5 },
  ]);
});

test('a new connection per request: each tsbal build against its own runtime floor and HAProxy of the same run', () => {
  const close = [
    m('haproxy', 64, 10_000, 10, 6, 20, 'close'),
    m('floor-node', 64, 12_000, 8, 9, 40, 'close'),
    m('floor-bun', 64, 14_000, 8, 6, 40, 'close'),
    m('tsbal-bin:tsbal', 64, 6_000, 20, 15, 60, 'close'),
    m('tsbal-bin:tsbal-bun', 64, 8_000, 15, 7.5, 60, 'close'),
    // kept-alive rows are not issue 11's new-connection targets
    m('tsbal-bin:tsbal', 64, 30_000, 5, 5, 60),
  ];
  expect(connCostTargets(close).map((c) => `${c.target}: ${c.actual} ${c.met ? 'met' : 'missed'}`)).toEqual([
    'tsbal-bin:tsbal: CPU per request ≤ 1.3× floor-node: 1.67× missed',
    'tsbal-bin:tsbal: CPU per request ≤ 1.6× HAProxy: 2.50× missed',
    'tsbal-bin:tsbal: req/s ≥ 0.7× HAProxy: 0.60× missed',
    'tsbal-bin:tsbal-bun: CPU per request ≤ 1.3× floor-bun: 1.25× met',
    'tsbal-bin:tsbal-bun: CPU per request ≤ 1.6× HAProxy: 1.25× met',
    'tsbal-bin:tsbal-bun: req/s ≥ 0.7× HAProxy: 0.80× met',
  ]);
  const bunRow = markdownTables(close).split('\n').find((line) => line.startsWith('| tsbal-bin:tsbal-bun '));
  expect(bunRow?.split(' | ')[12]).toBe('1.25×');
});
