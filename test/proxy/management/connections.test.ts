// SERVER workers: merging the workers' connection reports into one console answer (pure).
import { describe, expect, test } from 'bun:test';
import { mergeConnections, stateMap, type ConnectionReport } from '../../../src/proxy/management/connections.ts';
import { pendingLines, queueLines, stateLines } from '../../../src/proxy/management/format.ts';

function worker(clients: number, bored: number, opts: { queuedAge?: number; queued?: number; connectAge?: number } = {}): ConnectionReport {
  const states: ConnectionReport['states'] = [
    ['Perlbal::ClientProxy', 'persist_wait', clients],
    ['Perlbal::BackendHTTP', 'bored', bored],
  ];
  const connects = opts.connectAge === undefined ? [] : [{ key: '10.0.0.1:80', state: 'connecting', ageSec: opts.connectAge }];
  return {
    states,
    backendStates: [['10.0.0.1:80', 'idle', bored]],
    queues: [{ service: 'web', normal: { age: opts.queuedAge ?? 0, count: opts.queued ?? 0 }, highpri: { age: 0, count: 0 } }],
    backends: [['10.0.0.1:80', bored]],
    pending: opts.connectAge === undefined ? [] : [{ service: 'web', key: '10.0.0.1:80', ageSec: opts.connectAge }],
    services: [
      {
        name: 'web',
        states,
        pending: { clients: opts.queued ?? 0, backends: connects.length, connects },
        idle: bored,
        idleByNode: [['10.0.0.1:80', bored]],
      },
    ],
  };
}

describe('mergeConnections', () => {
  test('states are summed per class and state across workers', () => {
    const m = mergeConnections([worker(3, 1), worker(5, 2)]);
    expect(stateLines(stateMap(m.states))).toEqual(['Perlbal::BackendHTTP bored 3', 'Perlbal::ClientProxy persist_wait 8']);
    expect(stateLines(stateMap(m.services[0]!.states))).toEqual(['Perlbal::BackendHTTP bored 3', 'Perlbal::ClientProxy persist_wait 8']);
  });

  test('queues: counts summed, the age is the oldest wait of any worker', () => {
    const m = mergeConnections([worker(0, 0, { queued: 2, queuedAge: 4 }), worker(0, 0, { queued: 1, queuedAge: 9 })]);
    expect(queueLines(m.queues)).toContain('web-normal.age 9');
    expect(queueLines(m.queues)).toContain('web-normal.count 3');
  });

  test('backends and idle connections are summed per address; pending keeps the oldest connect per service and backend', () => {
    const m = mergeConnections([worker(0, 2, { connectAge: 1 }), worker(0, 3, { connectAge: 6 }), worker(0, 0)]);
    expect(m.backends).toEqual([['10.0.0.1:80', 5]]);
    expect(m.backendStates).toEqual([['10.0.0.1:80', 'idle', 5]]);
    expect(pendingLines(m.pending)).toEqual(['web 10.0.0.1:80 6']);
    const web = m.services[0]!;
    expect(web.idle).toBe(5);
    expect(web.idleByNode).toEqual([['10.0.0.1:80', 5]]);
    expect(web.pending).toEqual({ clients: 0, backends: 2, connects: [{ key: '10.0.0.1:80', state: 'connecting', ageSec: 6 }] });
  });

  test('no worker answered: an empty report (the answer shows nothing rather than waiting)', () => {
    expect(mergeConnections([])).toEqual({ states: [], backendStates: [], queues: [], backends: [], pending: [], services: [] });
  });
});
