// The checker's own cost, without load: proxy CPU per second of wall time while idle, plain against checking
// 100 backends every 1 s (the same setup as bench/proxy's *-checks rows, checks.ts), for tsbal and HAProxy side
// by side. Under wrk the check cost per request shrinks as req/s grows; this is its fixed part, per second.
//
//   npx bun bench/proxy/checks-idle.ts [--seconds 20] [--no-build]
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { startHaproxy } from '../../test/harness/haproxy.ts';
import { nginxCounters, startNginxBackend } from '../../test/harness/nginx.ts';
import { type Daemon, stopAll } from '../../test/harness/procs.ts';
import { REPO_ROOT } from '../../test/harness/cli.ts';
import { TUTORIAL_OPTIONS } from '../../test/harness/perlbalconf.ts';
import { startTsbal } from '../../test/harness/tsbal.ts';
import { CHECK_INTERVAL, CHECK_PATH, type CheckTargets, checkRate, startCheckTargets, startTsbalChecked } from './checks.ts';

const { values: args } = parseArgs({
  options: { seconds: { type: 'string', default: '20' }, 'no-build': { type: 'boolean', default: false } },
});
const SECONDS = Number(args.seconds);

if (!args['no-build']) {
  const build = spawnSync('node_modules/.bin/node', ['build/bundle.ts'], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('bundle build failed (node build/bundle.ts)');
}

const daemons: Daemon[] = [];
try {
  const backends = await Promise.all([startNginxBackend({ name: 'b1' }), startNginxBackend({ name: 'b2' })]);
  daemons.push(...backends);
  const ports = backends.map((b) => b.port);
  const tsbalTargets = await startCheckTargets('tsbal-idle', 1);
  const haproxyTargets = await startCheckTargets('haproxy-idle', 3);
  daemons.push(tsbalTargets.nginx, haproxyTargets.nginx);
  const proxies: Array<[string, Daemon, CheckTargets | null]> = [
    ['tsbal', await startTsbal({ backends: ports, set: TUTORIAL_OPTIONS }, { kind: 'dist' }), null],
    ['tsbal-checks', await startTsbalChecked(ports, tsbalTargets, TUTORIAL_OPTIONS, { kind: 'dist' }), tsbalTargets],
    ['haproxy', await startHaproxy(ports), null],
    [
      'haproxy-checks',
      await startHaproxy(ports, { checks: { path: CHECK_PATH, interval: CHECK_INTERVAL, idleServers: haproxyTargets.addresses } }),
      haproxyTargets,
    ],
  ];
  daemons.push(...proxies.map(([, d]) => d));
  // Past start-up and the first interval (checks start at a random point of it).
  await new Promise((r) => setTimeout(r, 3000));
  for (const t of [tsbalTargets, haproxyTargets]) t.since = { ms: Date.now(), requests: (await nginxCounters(t.nginx)).requests };
  const before = proxies.map(([, d]) => d.usage().cpuSeconds);
  const t0 = Date.now();
  const load = os.loadavg()[0]!;
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const wall = (Date.now() - t0) / 1000;
  console.log(`idle ${wall.toFixed(1)} s, load average ${load.toFixed(2)} -> ${os.loadavg()[0]!.toFixed(2)}`);
  console.log('| proxy | CPU ms per s idle | checks/s at the 98 check-only backends |');
  console.log('| --- | ---: | ---: |');
  for (const [i, [name, d, targets]] of proxies.entries()) {
    const ms = ((d.usage().cpuSeconds - before[i]!) / wall) * 1000;
    const rate = targets ? (await checkRate(targets)).toFixed(1) : '–';
    console.log(`| ${name} | ${ms.toFixed(2)} | ${rate} |`);
  }
} finally {
  await stopAll(daemons);
}
