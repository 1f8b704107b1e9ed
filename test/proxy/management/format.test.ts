// The report layouts against the reference transcripts (reference/perlbal.md 5.3), byte for byte.
import { describe, expect, test } from 'bun:test';
import { nodeLines, poolList, poolNodes, queueLines, serviceDetail, serviceList, stateLines, uptimeLines } from '../../../src/proxy/management/format.ts';

describe('management report layouts', () => {
  test('show service: sorted by name, not_listening for a service without listen', () => {
    expect(
      serviceList([
        { name: 'mgmt', listen: '127.0.0.1:16000', enabled: true },
        { name: 'balancer', listen: '127.0.0.1:18080', enabled: true },
        { name: 'b_target', listen: null, enabled: false },
      ]),
    ).toEqual(['b_target not_listening DISABLED', 'balancer 127.0.0.1:18080 ENABLED', 'mgmt 127.0.0.1:16000 ENABLED']);
  });

  test('show service <name> of a reverse_proxy is the transcript of the tutorial config', () => {
    const lines = serviceDetail({
      name: 'balancer',
      listen: '127.0.0.1:18080',
      role: 'reverse_proxy',
      pending: { clients: 0, backends: 0, connects: [] },
      connectAhead: { idle: 1, setting: 0 },
      pool: { name: 'backends', nodes: [{ key: '127.0.0.1:18081', used: 0 }, { key: '127.0.0.1:18082', used: 9 }] },
    });
    expect(lines.join('\n')).toBe(`SERVICE balancer
     listening: 127.0.0.1:18080
          role: reverse_proxy
  pend clients: 0
  pend backend: 0
 connect-ahead: 1/0
          pool: backends
         nodes:
                127.0.0.1:18081             0
                127.0.0.1:18082             9`);
  });

  test('show service <name>: pending connects sorted by address; a management service has only three lines', () => {
    const pending = serviceDetail({
      name: 's',
      listen: null,
      role: 'reverse_proxy',
      pending: { clients: 2, backends: 1, connects: [{ key: '127.0.0.1:18087', state: 'verifying_backend', ageSec: 3 }] },
      connectAhead: { idle: 0, setting: 2 },
      pool: null,
    });
    expect(pending).toEqual([
      'SERVICE s',
      '     listening: --',
      '          role: reverse_proxy',
      '  pend clients: 2',
      '  pend backend: 1',
      '   127.0.0.1:18087 - verifying_backend - 3s',
      ' connect-ahead: 0/2',
    ]);
    expect(serviceDetail({ name: 'mgmt', listen: '127.0.0.1:16000', role: 'management', pending: null, connectAhead: null, pool: null })).toEqual([
      'SERVICE mgmt',
      '     listening: 127.0.0.1:16000',
      '          role: management',
    ]);
  });

  test('show pool and show pool <name>', () => {
    expect(poolList([{ name: 'p2', nodes: 0, services: 0 }, { name: 'backends', nodes: 2, services: 1 }])).toEqual([
      'backends nodes 2',
      'backends services 1',
      'p2 nodes 0',
      'p2 services 0',
    ]);
    expect(poolNodes([{ key: '127.0.0.1:19999', used: 0 }, { key: '127.0.0.1:80', used: 0 }])).toEqual(['127.0.0.1:19999 0', '127.0.0.1:80 0']);
  });

  test('nodes: only the stats that happened, response codes counted', () => {
    expect(
      nodeLines({
        key: '127.0.0.1:18082',
        attempts: 1,
        lastAttempt: 1795635583,
        connects: 1,
        lastConnect: 1795635583,
        verifies: 0,
        requests: 9,
        lastResponse: 1795635586,
        responseCodes: [[200, 9]],
      }).sort(),
    ).toEqual(
      [
        '127.0.0.1:18082 lastconnect 1795635583',
        '127.0.0.1:18082 lastresponse 1795635586',
        '127.0.0.1:18082 connects 1',
        '127.0.0.1:18082 requests 9',
        '127.0.0.1:18082 attempts 1',
        '127.0.0.1:18082 responsecodes 200 9',
        '127.0.0.1:18082 lastattempt 1795635583',
      ].sort(),
    );
  });

  test('states, queues and uptime', () => {
    const states = new Map([
      ['Perlbal::ClientProxy', new Map([['wait_res', 1], ['reading_headers', 2]])],
      ['Perlbal::BackendHTTP', new Map([['bored', 1]])],
    ]);
    expect(stateLines(states)).toEqual(['Perlbal::BackendHTTP bored 1', 'Perlbal::ClientProxy reading_headers 2', 'Perlbal::ClientProxy wait_res 1']);
    expect(queueLines([{ service: 'balancer', normal: { age: 3, count: 4 }, highpri: { age: 1, count: 2 } }])).toEqual([
      'balancer-highpri.age 1',
      'balancer-highpri.count 2',
      'balancer-normal.age 3',
      'balancer-normal.count 4',
      'balancer-lowpri.age 0',
      'balancer-lowpri.count 0',
    ]);
    expect(uptimeLines(1795635580, 1795635599)).toEqual(['starttime 1795635580', 'uptime 19', 'version 1.80']);
  });
});
