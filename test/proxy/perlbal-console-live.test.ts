// A console script against Perlbal 1.80 and tsbal alike: build a service from nothing (CREATE POOL, POOL ADD,
// CREATE SERVICE, SET role/listen/pool, ENABLE), send a client through it, then change it (pool members, HEADER,
// persist_client, listen) while that client stays connected. Every console answer and every client response must be
// the same on both; what the backends saw must be the same too.
import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { canConnect, freePorts, LOOPBACK } from '../harness/ports.ts';
import { connectRaw, type RawConnection } from '../harness/rawclient.ts';
import { comparableResponse, type MultiRig, type ProxyKind, startMultiRig, testFor } from './diffkit.ts';
import { rawRequest } from './helpers.ts';

const HAVE_PERLBAL = existsSync('/usr/share/perl5/Perlbal.pm');

function conf([listen, mgmt]: number[]): string {
  return `CREATE POOL existing
CREATE SERVICE balancer
  SET role = reverse_proxy
  SET listen = ${LOOPBACK}:${listen}
  SET pool = existing
ENABLE balancer
CREATE SERVICE mgmt
  SET role = management
  SET listen = ${LOOPBACK}:${mgmt}
ENABLE mgmt
`;
}

const started: MultiRig[] = [];

async function play(kind: ProxyKind): Promise<string[]> {
  const rig = await startMultiRig(kind, 2, conf, [{ name: 'b1' }, { name: 'b2' }]);
  started.push(rig);
  const [fresh, moved, front] = await freePorts(3);
  const [b1, b2] = rig.backends.map((b) => b.port) as [number, number];
  const names: Array<[number, string]> = [[rig.ports[0]!, 'LSTEN'], [rig.ports[1]!, 'MGMT_'], [b1, 'BACK1'], [b2, 'BACK2'], [fresh!, 'FRESH'], [moved!, 'MOVED'], [front!, 'FRONT']];
  const norm = (text: string): string =>
    names
      .reduce((t, [port, name]) => t.replaceAll(`:${port}`, `:${name.slice(0, String(port).length)}`), text)
      // Idle backend connections: Perlbal may keep one it opened for a client another connection served first.
      .replace(/^ connect-ahead: \d+\//m, ' connect-ahead: N/');
  const out: string[] = [];
  const say = async (...lines: string[]): Promise<void> => {
    const r = await rawRequest(rig.ports[1]!, [...lines, 'quit'].map((l) => `${l}\r\n`).join(''), { timeoutMs: 5000 });
    out.push(norm(`console ${lines.join(' | ')}`), ...norm(r.data).split('\r\n'));
  };
  const ask = async (c: RawConnection, path: string, what: string): Promise<void> => {
    c.send(`GET ${path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`);
    const outcome = await c.read({ method: 'GET', timeoutMs: 5000 });
    const kept = outcome.kind === 'response' && !(await c.waitClosed(300));
    out.push(`${what} GET ${path}`, ...comparableResponse(outcome).filter((l) => !/^(Server|Date): /.test(l)), kept ? '(kept open)' : '(closed)');
  };
  const seen = (i: number, name: string): void => {
    const last = rig.backends[i]!.requests().filter((r) => r.method !== 'OPTIONS').at(-1);
    const v = last?.head.headers.find(([n]) => n.toLowerCase() === name)?.[1];
    out.push(`backend ${i + 1} last ${last?.target ?? '(none)'} ${name}=${v ?? '(absent)'}`);
  };

  await say(
    'create pool live', `pool live add ${LOOPBACK}:${b1}`,
    'create service fresh', 'set role = reverse_proxy', `set listen = ${LOOPBACK}:${fresh}`, 'set pool = live', 'set persist_client = on',
    'enable fresh', 'show service', 'show service fresh', 'show pool', 'show pool live',
  );
  const client = await connectRaw(fresh!);
  try {
    await ask(client, '/one', 'client');
    await say(`pool live add ${LOOPBACK}:${b2}`, `pool live remove ${LOOPBACK}:${b1}`, 'header fresh insert X-Console: on', 'show pool live');
    await ask(client, '/two', 'client (same connection)');
    seen(1, 'x-console');
    await say('set fresh.persist_client = off', 'header fresh remove X-Console');
    await ask(client, '/three', 'client (same connection)');
    seen(1, 'x-console');
  } finally {
    client.close();
  }

  await say('set fresh.persist_client = on');
  const stays = await connectRaw(fresh!);
  try {
    await ask(stays, '/four', 'second client');
    await say(`set fresh.listen = ${LOOPBACK}:${moved}`, 'show service');
    out.push(`old address accepts: ${await canConnect(fresh!)}`);
    await ask(stays, '/five', 'second client (accepted on the old address)');
    const newcomer = await connectRaw(moved!);
    await ask(newcomer, '/six', 'client on the new address');
    newcomer.close();
  } finally {
    stays.close();
  }
  // A selector from nothing, then its VHOST rules changed while a client stays connected.
  await say(
    `pool existing add ${LOOPBACK}:${b1}`, 'load vhosts', 'create service sel', 'set role = selector', `set listen = ${LOOPBACK}:${front}`, 'set persist_client = on',
    'set plugins = vhosts', 'vhost *.a.test = fresh', 'vhost * = balancer', 'enable sel', 'show service sel',
  );
  const viaSelector = await connectRaw(front!);
  try {
    const ask2 = async (host: string, what: string): Promise<void> => {
      viaSelector.send(`GET /sel HTTP/1.0\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`);
      const outcome = await viaSelector.read({ method: 'GET', timeoutMs: 5000 });
      out.push(`${what} Host ${host}`, ...comparableResponse(outcome).filter((l) => !/^(Server|Date): /.test(l)));
    };
    await ask2('www.a.test', 'selector client');
    await say('vhost sel *.a.test = nosuch', 'vhost sel www.a.test = balancer', 'vhost sel Bad/Host = balancer', 'vhost fresh z.test = fresh');
    await ask2('www.a.test', 'selector client (same connection)');
    await ask2('x.a.test', 'selector client (same connection)');
  } finally {
    viaSelector.close();
  }
  await say('disable fresh', 'show service fresh', 'set fresh.pool = nosuch', 'set fresh.role = bogus', 'create service fresh', 'create pool live');
  return out;
}

describe('a service built and changed on the console matches Perlbal 1.80', () => {
  afterAll(async () => {
    await Promise.all(started.map((r) => r.stop()));
  });

  const run = HAVE_PERLBAL ? testFor('tsbal') : test.skip;
  run('CREATE POOL, POOL ADD, CREATE SERVICE, SET role/listen/pool, ENABLE, then pool, HEADER, persist_client, listen and the VHOST rules of a new selector with clients connected', async () => {
    const [perlbal, tsbal] = [await play('perlbal'), await play('tsbal')];
    expect(perlbal.length).toBeGreaterThan(40);
    expect(tsbal).toEqual(perlbal);
  }, 30_000);
});
