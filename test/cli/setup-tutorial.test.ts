// The tutorial, proven end to end (issue 15 §3). Four machines in the namespace lab, each with its own filesystem
// (test/harness/tutorialhosts.ts): web1 and web2 run Debian's Apache with the tutorial's LogFormat change; lb1 and
// lb2 start bare, get tsbal with install.sh from a release served on their own 127.0.0.1, run `tsbal setup` (lb2 the
// join line lb1 printed) with the tutorial's defaults (keepalive 2 s, deadtime 10 s), and start the systemd unit's
// exact ExecStartPre and ExecStart lines (systemd cannot run here). Then section 7's checks: requests to the VIP
// reach both Apaches and each access log shows the client's address; one Apache stopped, every request still
// succeeds; lb1 crashed, lb2 holds the VIP and serves; lb1 back, it takes the VIP back. Then the same with section
// 8's vhost config, put in place with `tsbal reload`. It measures bare hosts to a serving VIP.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { copyRelease } from '../install/release.ts';
import { ensureDist } from '../harness/dist.ts';
import { crashHost } from '../harness/hacluster.ts';
import type { HostNs } from '../harness/hostns.ts';
import { createLab, LAB_ADDRESSES, LAB_VIP, type Lab } from '../harness/netns.ts';
import { makeTempDir, removeDir } from '../harness/procs.ts';
import { waitFor, type ProcHandle } from '../harness/proc.ts';
import { createBareLbHost, createWebHost, unitLines, type WebHost } from '../harness/tutorialhosts.ts';

const RELEASE_PORT = 8000;
const RELEASE_URL = `http://127.0.0.1:${RELEASE_PORT}`;
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The tutorial's deadtime (setup's default): a crash is seen after it, plus a keepalive or two. */
const FAILOVER_WAIT_MS = 20_000;
const CLIENT = LAB_ADDRESSES.client;

let lab: Lab | null = null;
let base = '';
let release = '';
const web = {} as Record<'web1' | 'web2', WebHost>;
const lb = {} as Record<'lb1' | 'lb2', HostNs>;
const running = {} as Record<'lb1' | 'lb2', ProcHandle | null>;
/** Bare hosts to a serving VIP, ms, and its parts. */
const timing: Record<string, number> = {};

beforeAll(async () => {
  const dist = await ensureDist();
  base = makeTempDir('tutorial');
  release = join(base, 'release');
  copyRelease(dist.dir, release);
  lab = await createLab({ nonlocalBind: false });
  for (const h of ['web1', 'web2'] as const) {
    web[h] = await createWebHost(lab, h, base);
    await web[h].start();
  }
  for (const h of ['lb1', 'lb2'] as const) {
    lb[h] = await createBareLbHost(lab, h, base);
    running[h] = null;
  }
}, 240_000);

afterAll(async () => {
  await lab?.teardown();
  if (base !== '') removeDir(base);
  if (Object.keys(timing).length > 0) console.log(`tutorial timing: ${JSON.stringify(timing)}`);
}, 60_000);

async function must(h: HostNs, script: string, timeoutMs = 60_000): Promise<string> {
  const r = await h.exec(['bash', '-c', `export PATH=${PATH}\n${script}`], timeoutMs);
  if (r.code !== 0) throw new Error(`${h.host}: ${script.split('\n')[0]}: exit ${r.code}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** install.sh as the tutorial's reader runs it: fetched from the release and piped to sh (the release server is the host's own 127.0.0.1). */
async function install(h: HostNs): Promise<void> {
  const server = lab!.spawn(h.host, ['python3', '-m', 'http.server', '--bind', '127.0.0.1', String(RELEASE_PORT), '--directory', release], { label: `release on ${h.host}` });
  try {
    await waitFor(`the release server on ${h.host}`, async () => ((await h.exec(['curl', '-sf', '-o', '/dev/null', `${RELEASE_URL}/SHA256SUMS`], 5_000)).code === 0 ? true : undefined), { timeoutMs: 10_000, intervalMs: 50 });
    const out = await must(h, `curl -fsSL ${RELEASE_URL}/install.sh | TSBAL_BASE_URL=${RELEASE_URL} TSBAL_NO_DEPS=1 sh\ntsbal --version`, 120_000);
    expect(out).toMatch(/tsbal \d+\.\d+\.\d+/);
  } finally {
    server.kill('SIGKILL');
  }
}

/** Runs the unit's ExecStartPre (tsbal check) and starts its ExecStart in the foreground, as systemd would. */
async function startUnit(h: HostNs): Promise<ProcHandle> {
  const unit = unitLines(await must(h, 'cat /etc/systemd/system/tsbal.service'));
  const pre = unit.get('ExecStartPre')!;
  const start = unit.get('ExecStart')!;
  expect([pre, start]).toEqual(['/usr/local/bin/tsbal check', '/usr/local/bin/tsbal run']);
  await must(h, pre);
  const proc = h.spawn(start.split(' '), `tsbal ${h.host}`);
  running[h.host as 'lb1' | 'lb2'] = proc;
  return proc;
}

const logs = (): string =>
  (['lb1', 'lb2'] as const).map((h) => `--- ${h} ${running[h] === null ? '(not started)' : `exit ${JSON.stringify(running[h]!.exit())}\n${running[h]!.stdout().slice(-3000)}${running[h]!.stderr().slice(-3000)}`}`).join('\n');

async function holders(): Promise<string> {
  return (await lab!.holders()).join('+') || 'nobody';
}

async function waitHolder(host: 'lb1' | 'lb2', timeoutMs: number): Promise<void> {
  await waitFor(`the VIP on ${host} alone`, async () => ((await holders()) === host ? true : undefined), { timeoutMs, intervalMs: 50, describe: async () => `holders ${await holders()}\n${logs()}` });
}

interface Answer {
  code: number;
  body: string;
}

/** One request from the client to the VIP on a new connection (curl), with a Host header and a cookie jar if given. */
async function get(host?: string, jar?: string): Promise<Answer> {
  const args = [
    'curl', '-s', '--max-time', '3', '-o', '-', '-w', '\n%{http_code}',
    ...(host === undefined ? [] : ['-H', `Host: ${host}`]),
    ...(jar === undefined ? [] : ['-b', jar, '-c', jar]),
    `http://${LAB_VIP}/`,
  ];
  const r = await lab!.exec('client', args, { timeoutMs: 6_000 });
  const lines = r.stdout.trimEnd().split('\n');
  return { code: Number(lines.pop()), body: lines.join('\n').trim() };
}

/** `count` requests; every one must succeed. Returns how many each body said (`web1`, `web2 site`...). */
async function serveAll(count: number, host?: string, jar?: string): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const a = await get(host, jar);
    expect([a.code, i, host ?? '-'], `request ${i} (Host ${host ?? '-'}): ${a.code} ${a.body}\n${logs()}`).toEqual([200, i, host ?? '-']);
    seen[a.body] = (seen[a.body] ?? 0) + 1;
  }
  return seen;
}

async function waitServingVip(timeoutMs: number, host?: string): Promise<void> {
  await waitFor('an answer on the VIP', async () => ((await get(host)).code === 200 ? true : undefined), { timeoutMs, intervalMs: 50, describe: async () => `holders ${await holders()}\n${logs()}` });
}

/**
 * The client's requests in an access log: its curl GETs. (verify_backend's OPTIONS and the health checks setup
 * configures, `tsbal-health-check`, come from the balancer itself, with no X-Forwarded-For: logged as `-`.)
 */
const fromClient = (line: string): boolean => /"GET \/ HTTP\/1\.1" .*"curl\//.test(line);

/** The access log lines Apache wrote since `from`, each of which must start with the client's address. */
async function newLines(h: 'web1' | 'web2', from: number, name?: string): Promise<string[]> {
  return (await web[h].accessLog(name)).slice(from);
}

/** Section 7's failover: lb1 crashes, lb2 holds the VIP and serves; lb1 comes back (a reboot, then its unit) and takes it back. */
async function crashAndReturn(host?: string, sticky?: { jar: string; backend: string }): Promise<void> {
  await crashHost(lab!, 'lb1');
  running.lb1 = null;
  await waitHolder('lb2', FAILOVER_WAIT_MS);
  await waitServingVip(5_000, host);
  await serveAll(10, host);
  // The sticky client keeps its backend through lb2 (the cookie's key comes from the shared authkeys).
  if (sticky !== undefined) expect(await serveAll(5, host, sticky.jar)).toEqual({ [sticky.backend]: 5 });
  // tsbal status on the survivor says it holds the VIP and saw lb1 die.
  const status = await must(lb.lb2, 'tsbal status');
  expect(status).toContain(`vip: ${LAB_VIP}/24 on eth0: held by lb2 (this node), home lb1`);
  expect(status).toMatch(/transition \S+ ha: node lb1: is dead/);
  // lb1 back: the host boots again with the same disk (its files persist) and starts its unit.
  lb.lb1 = await createBareLbHost(lab!, 'lb1', base);
  await must(lb.lb1, 'sysctl -w net.ipv4.ip_nonlocal_bind=1 && test -x /usr/local/bin/tsbal');
  await startUnit(lb.lb1);
  await waitHolder('lb1', FAILOVER_WAIT_MS);
  await waitServingVip(5_000, host);
  await serveAll(10, host);
}

describe('the tutorial with tsbal, end to end', () => {
  test('section 7: bare hosts to a serving VIP with install.sh, setup and the unit; both Apaches log the client; an Apache down; lb1 crashed and back', async () => {
    const t0 = performance.now();
    await Promise.all([install(lb.lb1), install(lb.lb2)]);
    timing.installMs = Math.round(performance.now() - t0);
    const setupOut = await must(
      lb.lb1,
      `tsbal setup --node lb1 --peer lb2 --vip ${LAB_VIP}/24 --iface eth0 --backend ${LAB_ADDRESSES.web1}:80 --backend ${LAB_ADDRESSES.web2}:80 --init systemd`,
    );
    const joinLine = setupOut.split('\n').find((l) => l.includes('| tsbal setup '));
    if (joinLine === undefined) throw new Error(`setup on lb1 printed no join line:\n${setupOut}`);
    await must(lb.lb2, `${joinLine} --init systemd`);
    timing.setupMs = Math.round(performance.now() - t0) - timing.installMs;
    expect(await must(lb.lb2, 'cat /etc/ha.d/authkeys')).toBe(await must(lb.lb1, 'cat /etc/ha.d/authkeys'));
    const t1 = performance.now();
    await Promise.all([startUnit(lb.lb1), startUnit(lb.lb2)]);
    await waitServingVip(40_000);
    timing.startToServingMs = Math.round(performance.now() - t1);
    timing.bareToServingMs = Math.round(performance.now() - t0);
    await waitHolder('lb1', 5_000);

    // Requests to the VIP reach both Apaches, and each access log line starts with the client's address.
    const before = { web1: (await web.web1.accessLog()).length, web2: (await web.web2.accessLog()).length };
    const seen = await serveAll(20);
    expect(Object.keys(seen).sort()).toEqual(['web1', 'web2']);
    for (const h of ['web1', 'web2'] as const) {
      const lines = (await newLines(h, before[h])).filter(fromClient);
      expect(lines.length, `${h}: ${lines.join("\n")}`).toBe(seen[h] ?? 0);
      for (const l of lines) expect(l.startsWith(`${CLIENT} `), l).toBe(true);
    }

    // A sticky client (setup writes cookie affinity) keeps its backend.
    const jar = join(base, 'cookies.txt');
    const first = await serveAll(1, undefined, jar);
    const pinned = Object.keys(first)[0]!;
    expect(await serveAll(10, undefined, jar)).toEqual({ [pinned]: 10 });
    expect(await must(lb.lb1, 'grep -i "sticky" /etc/perlbal/perlbal.conf')).toContain('SET sticky          = cookie');

    // One Apache stopped: every request still succeeds, all on the other.
    await web.web2.stop();
    expect(await serveAll(20)).toEqual({ web1: 20 });
    await web.web2.start();

    await crashAndReturn(undefined, { jar, backend: pinned });
    expect(timing.bareToServingMs).toBeLessThan(60_000);
  }, 240_000);

  test('section 8: the vhost config (two sites by Host header) with tsbal reload; the same checks', async () => {
    // Apache: one name-based vhost per site on each web host, each logging in Debian's combined format.
    for (const h of ['web1', 'web2'] as const) {
      const sites = ['site', 'example']
        .map((s) => `<VirtualHost *:80>\n  ServerName www.${s}.com\n  DocumentRoot /var/www/${s}\n  CustomLog \${APACHE_LOG_DIR}/${s}-access.log combined\n</VirtualHost>\n`)
        .join('');
      await must(web[h], `mkdir -p /var/www/site /var/www/example\necho '${h} site' > /var/www/site/index.html\necho '${h} example' > /var/www/example/index.html\ncat > /etc/apache2/sites-available/sites.conf <<'EOF'\n${sites}EOF\na2ensite -q sites`);
      await web[h].stop();
      await web[h].start();
    }
    // perlbal.conf: section 8's layout on the lab's addresses, put in place on both nodes and applied with tsbal reload.
    const conf = [
      'LOAD vhosts',
      'CREATE POOL sitefarm',
      `  POOL sitefarm ADD ${LAB_ADDRESSES.web1}:80`,
      `  POOL sitefarm ADD ${LAB_ADDRESSES.web2}:80`,
      'CREATE POOL examplefarm',
      `  POOL examplefarm ADD ${LAB_ADDRESSES.web1}:80`,
      `  POOL examplefarm ADD ${LAB_ADDRESSES.web2}:80`,
      ...['site', 'example'].flatMap((s) => [
        `CREATE SERVICE ${s}_balancer`,
        '  SET role            = reverse_proxy',
        `  SET pool            = ${s}farm`,
        '  SET persist_client  = on',
        '  SET persist_backend = on',
        '  SET verify_backend  = on',
        `ENABLE ${s}_balancer`,
      ]),
      'CREATE SERVICE vhost_selector',
      `  SET listen          = ${LAB_VIP}:80`,
      '  SET role            = selector',
      '  SET plugins         = vhosts',
      '  SET persist_client  = on',
      '  VHOST *.site.com    = site_balancer',
      '  VHOST *.example.com = example_balancer',
      'ENABLE vhost_selector',
      'CREATE SERVICE mgmt',
      '  SET role   = management',
      '  SET listen = 127.0.0.1:16000',
      'ENABLE mgmt',
      '',
    ].join('\n');
    for (const h of ['lb1', 'lb2'] as const) {
      await must(lb[h], `cat > /etc/perlbal/perlbal.conf <<'EOF'\n${conf}EOF\ntsbal check`);
      const reloaded = await must(lb[h], `tsbal reload --pid ${running[h]!.pid}`);
      expect(reloaded).toContain('reload OK');
      // The management port moved with the reload (60000 → 16000).
      expect(reloaded).toContain('management +127.0.0.1:16000 -127.0.0.1:60000');
    }

    const logged = async (): Promise<Record<string, number>> => {
      const out: Record<string, number> = {};
      for (const h of ['web1', 'web2'] as const) for (const s of ['site', 'example']) out[`${h} ${s}`] = (await web[h].accessLog(`${s}-access.log`)).length;
      return out;
    };
    const before = await logged();
    const site = await serveAll(10, 'www.site.com');
    const example = await serveAll(10, 'www.example.com');
    expect(Object.keys(site).sort()).toEqual(['web1 site', 'web2 site']);
    expect(Object.keys(example).sort()).toEqual(['web1 example', 'web2 example']);
    for (const h of ['web1', 'web2'] as const) {
      for (const s of ['site', 'example'] as const) {
        const lines = (await web[h].accessLog(`${s}-access.log`)).slice(before[`${h} ${s}`]).filter(fromClient);
        expect(lines.length, `${h} ${s}`).toBe((s === 'site' ? site : example)[`${h} ${s}`]!);
        for (const l of lines) expect(l.startsWith(`${CLIENT} `), l).toBe(true);
      }
    }

    await web.web1.stop();
    expect(await serveAll(10, 'www.site.com')).toEqual({ 'web2 site': 10 });
    expect(await serveAll(10, 'www.example.com')).toEqual({ 'web2 example': 10 });
    await web.web1.start();

    await crashAndReturn('www.example.com');
    expect(Object.keys(await serveAll(10, 'www.site.com')).sort()).toEqual(['web1 site', 'web2 site']);
  }, 180_000);
});
