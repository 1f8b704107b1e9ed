// `tsbal status` as text: plain lines for scripts and mail, a coloured table on a terminal.
import { describe, expect, test } from 'bun:test';
import type { StatusSnapshot } from '../../src/status/snapshot.ts';
import { statusText } from '../../src/status/view.ts';

const snapshot: StatusSnapshot = {
  pid: 4242,
  version: '0.1.0',
  at: 0,
  uptimeS: 3725,
  config: '/etc/perlbal/perlbal.conf',
  ha: {
    node: 'lb2',
    role: 'active',
    holds: "lb1's resources only (taken over)",
    state: 'settled',
    peer: { name: 'lb1', status: 'dead', heardMsAgo: 61_000, deadtimeMs: 2000, holds: 'no resources' },
    vips: [{ address: '198.18.0.99/24 on eth0', home: 'lb1', holder: 'lb2' }],
    splitBrain: [],
  },
  services: [
    {
      name: 'balancer',
      role: 'reverse_proxy',
      listen: '198.18.0.99:80',
      listening: 'listening',
      pool: 'webs',
      balance: 'random',
      backends: [
        { address: '198.18.0.11:80', health: 'up', admin: 'ready', inFlight: 2, requests: 1234, errors: 0, lastFailure: null, retryInMs: null, lastCheck: null, weight: 1 },
        { address: '198.18.0.12:80', health: 'down', admin: 'ready', inFlight: 0, requests: 77, errors: 3, lastFailure: 'connect ECONNREFUSED', retryInMs: 3500, lastCheck: null, weight: 1 },
      ],
    },
  ],
  transitions: [
    { at: 1, source: 'backend', text: 'backend 198.18.0.12:80 down (connect ECONNREFUSED, 1 in a row)' },
    { at: 2, source: 'ha', text: 'node lb1: is dead (no heartbeat for 2000 ms)' },
  ],
};
const clock = (ms: number): string => `T${ms}`;

describe('statusText', () => {
  test('plain: one fact per line, the VIP holder and each backend with health and load', () => {
    expect(statusText(snapshot, { terminal: false, clock }).split('\n')).toEqual([
      'tsbal 0.1.0: pid 4242, up 1h 2m, config /etc/perlbal/perlbal.conf',
      "ha: lb2 is active: holds lb1's resources only (taken over); settled",
      'peer: lb1 dead, heard 1m 1s ago (deadtime 2000 ms), holds no resources',
      'vip: 198.18.0.99/24 on eth0: held by lb2 (this node), home lb1',
      'service balancer (reverse_proxy): listening on 198.18.0.99:80, pool webs (random)',
      '  backend 198.18.0.11:80: up, ready, 2 in flight, 1234 requests, 0 errors',
      '  backend 198.18.0.12:80: down, ready, 0 in flight, 77 requests, 3 errors (connect ECONNREFUSED, retry in 3.5 s)',
      'transition T1 backend: backend 198.18.0.12:80 down (connect ECONNREFUSED, 1 in a row)',
      'transition T2 ha: node lb1: is dead (no heartbeat for 2000 ms)',
    ]);
  });

  test('terminal: a table whose columns line up once the colours are stripped; down is red, up green', () => {
    const text = statusText(snapshot, { terminal: true, clock });
    expect(text).toContain('\x1b[1;31mdown');
    expect(text).toContain('\x1b[32mup');
    const plain = text.replace(/\x1b\[[0-9;]*m/g, '').split('\n');
    const header = plain.find((l) => l.startsWith('SERVICE'))!;
    const rows = plain.filter((l) => / ready /.test(l));
    expect(rows.length).toBe(2);
    for (const col of ['BACKEND', 'HEALTH', 'ADMIN']) {
      const at = header.indexOf(col);
      for (const r of rows) expect(r.slice(at).split(/\s+/)[0]).not.toBe('');
    }
    expect(rows[1]!.slice(header.indexOf('HEALTH'))).toStartWith('down');
    // Numbers are right-aligned under their heading.
    const end = header.indexOf('REQUESTS') + 'REQUESTS'.length;
    expect(rows.map((r) => r.slice(0, end).trimEnd().split(' ').at(-1))).toEqual(['1234', '77']);
    expect(plain).toContain('VIP   198.18.0.99/24 on eth0: held by lb2 (this node), home lb1');
  });

  test('terminal without colour (NO_COLOR): the same table, no escape codes', () => {
    const text = statusText(snapshot, { terminal: true, colour: false, clock });
    expect(text).not.toContain('\x1b[');
    expect(text.split('\n')).toEqual(statusText(snapshot, { terminal: true, clock }).replace(/\x1b\[[0-9;]*m/g, '').split('\n'));
  });

  test('without HA: says proxy only; an HA engine that does not answer says so', () => {
    expect(statusText({ ...snapshot, ha: null }, { terminal: false })).toContain('ha: not configured (no ha.cf): proxy only');
    expect(statusText({ ...snapshot, ha: { error: 'the heartbeat worker did not answer' } }, { terminal: false })).toContain('ha: NOT ANSWERING: the heartbeat worker did not answer');
  });
  test('workers: the count and restarts, then one line per worker (pid, state, uptime, restarts) after the HA lines; one process says so', () => {
    const workers: NonNullable<StatusSnapshot['workers']> = {
      count: 2,
      thisProcess: false,
      restarts: 1,
      list: [
        { index: 1, pid: 5001, state: 'ready', uptimeS: 65, restarts: 1 },
        { index: 2, pid: null, state: 'starting', uptimeS: 0, restarts: 0 },
      ],
    };
    const lines = statusText({ ...snapshot, workers, transitions: [{ at: 3, source: 'worker', text: 'worker 1 (pid 4999) exited (SIGKILL); starting it again' }] }, { terminal: false, clock }).split('\n');
    expect(lines.slice(4, 7)).toEqual(['workers: 2 (1 restart)', '  worker 1: pid 5001, ready, up 1m 5s, 1 restart', '  worker 2: no process (starting again), starting, up 0s, 0 restarts']);
    expect(lines.at(-1)).toBe('transition T3 worker: worker 1 (pid 4999) exited (SIGKILL); starting it again');
    const table = statusText({ ...snapshot, workers }, { terminal: true, colour: false, clock }).split('\n');
    expect(table).toContain('PROCS workers 2 (1 restart)');
    expect(table).toContain('      worker 1: pid 5001, ready, up 1m 5s, 1 restart');
    const one = statusText({ ...snapshot, workers: { count: 1, thisProcess: true, restarts: 0, list: [] } }, { terminal: false }).split('\n');
    expect(one).toContain('workers: 1 (this process)');
    expect(one.filter((l) => l.includes('worker'))).toEqual(['workers: 1 (this process)']);
    // A snapshot from an older tsbal (no workers field) reads as before.
    expect(statusText(snapshot, { terminal: false })).not.toContain('workers');
  });
});
