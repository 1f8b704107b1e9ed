// Every example config Debian's perlbal package ships (/usr/share/doc/perlbal/examples/*.conf) passes `tsbal check`
// and starts under `tsbal run`, unchanged, with the files it names present: each runs in its own network and mount
// namespace (so 0.0.0.0:80 and /var/www are its own), the listeners it declares are probed, and SIGTERM stops it.
import { describe, expect, test } from 'bun:test';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ENTRY } from '../harness/cli.ts';

const EXAMPLES = '/usr/share/doc/perlbal/examples';
const files = existsSync(EXAMPLES) ? readdirSync(EXAMPLES).filter((f) => f.endsWith('.conf')).sort() : [];
const IS_ROOT = process.getuid?.() === 0;

/** What to send to a listener of an example, and what the first line back must be. */
const PROBES: Record<string, Array<{ port: number; send: string; expect: RegExp }>> = {
  'echoservice.conf': [
    { port: 7123, send: 'hello\n', expect: /^hello$/ },
    { port: 7124, send: 'later\n', expect: /^later$/ },
  ],
  'load-balancer.conf': [
    // The example's backends (10.0.0.x) are unreachable in the namespace: a 503, promptly.
    { port: 80, send: 'GET / HTTP/1.0\r\n\r\n', expect: /^HTTP\/1\.[01] 503 / },
    { port: 81, send: 'GET / HTTP/1.0\r\n\r\n', expect: /^HTTP\/1\.[01] 503 / },
  ],
  'not-modified-plugin.conf': [
    { port: 8001, send: 'GET /a.css HTTP/1.0\r\nHost: immutable.example.com\r\nIf-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n\r\n', expect: /^HTTP\/1\.[01] 304 / },
  ],
  'virtual-hosts.conf': [
    { port: 80, send: 'GET / HTTP/1.0\r\nHost: www.site.com\r\n\r\n', expect: /^HTTP\/1\.[01] 200 / },
    { port: 80, send: 'GET /index.html HTTP/1.0\r\nHost: www.example.com\r\n\r\n', expect: /^HTTP\/1\.[01] 200 / },
  ],
  'webserver.conf': [{ port: 80, send: 'GET /perlbal/examples/webserver.conf HTTP/1.0\r\n\r\n', expect: /^HTTP\/1\.[01] 200 / }],
  'ssl.conf': [],
};

/** Examples `tsbal run` cannot start, by name, with the exact refusal: none since TLS landed (ssl.conf starts). */
const EXPECTED_REFUSALS: Record<string, string> = {};

/** The `SET listen` ports of the enabled services (what must be listening once it runs). */
function listenPorts(text: string): number[] {
  return [...text.matchAll(/^\s*SET\s+listen\s*=\s*[\d.]+:(\d+)\s*$/gim)].map((m) => Number(m[1]));
}

/** A small client run inside the namespace: connects, sends, prints the first line it gets back. */
const PROBE_JS = `
const net = require('node:net');
const [port, payload] = [Number(process.argv[2]), Buffer.from(process.argv[3], 'base64')];
const s = net.connect(port, '127.0.0.1', () => s.write(payload));
let got = '';
const t = setTimeout(() => { console.log('TIMEOUT ' + JSON.stringify(got)); process.exit(0); }, 5000);
s.on('data', (b) => { got += b.toString('latin1'); const i = got.search(/\\r?\\n/); if (i >= 0) { console.log(got.slice(0, i)); clearTimeout(t); s.destroy(); } });
s.on('error', (e) => { console.log('ERROR ' + e.code); clearTimeout(t); });
`;

function setUpFiles(dir: string): void {
  // load-balancer.conf: `SET nodefile = conf/nodelist.dat`, relative to where perlbal starts.
  mkdirSync(join(dir, 'conf'));
  copyFileSync(join(EXAMPLES, 'nodelist.dat'), join(dir, 'conf', 'nodelist.dat'));
  // ssl.conf: certs/server-key.pem and certs/server-cert.pem, made as the example's own comment says.
  mkdirSync(join(dir, 'certs'));
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-keyout', 'certs/server-key.pem', '-out', 'certs/server-cert.pem', '-days', '2', '-nodes', '-subj', '/CN=localhost'], { cwd: dir });
  if (made.status !== 0) throw new Error(`openssl: ${made.stderr}`);
  // virtual-hosts.conf: docroots /var/www/site.com/ and /var/www/example.com/ (bind-mounted over /var/www).
  for (const site of ['site.com', 'example.com']) {
    mkdirSync(join(dir, 'www', site), { recursive: true });
    writeFileSync(join(dir, 'www', site, 'index.html'), `<p>${site}</p>\n`);
  }
  writeFileSync(join(dir, 'probe.cjs'), PROBE_JS);
  mkdirSync(join(dir, 'ha.d'));
}

/** The shell script run in fresh namespaces: check, run, wait for the ports, probe, SIGTERM, report. */
function script(dir: string, conf: string, ports: number[], probes: (typeof PROBES)[string]): string {
  const tsbal = `${process.execPath} ${CLI_ENTRY}`;
  const probeLines = probes.map((p) => `echo "probe ${p.port}: $(${process.execPath} probe.cjs ${p.port} ${Buffer.from(p.send).toString('base64')})"`).join('\n');
  return `set -u
ip link set lo up
mount --bind ${dir}/www /var/www
# No heartbeat here: an empty /etc/ha.d (the default, whose missing ha.cf means proxy only).
mkdir -p /etc/ha.d && mount --bind ${dir}/ha.d /etc/ha.d
cd ${dir}
${tsbal} check -c ${conf} > check.out 2>&1; echo "check rc=$?"
${tsbal} run -c ${conf} > run.out 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
up=0
for i in $(seq 1 150); do
  kill -0 $pid 2>/dev/null || break
  n=0; for p in ${ports.join(' ')}; do ss -Hltn "sport = :$p" | grep -q LISTEN && n=$((n+1)); done
  if [ $n -eq ${ports.length} ]; then up=1; break; fi
  sleep 0.1
done
echo "listening=$up"
${probeLines}
kill -TERM $pid 2>/dev/null; wait $pid; echo "run rc=$?"
`;
}

describe('the example configs Debian ships with perlbal', () => {
  test('there are examples to try (perlbal is installed)', () => {
    expect(files.length).toBeGreaterThanOrEqual(6);
  });

  for (const file of files) {
    const run = IS_ROOT ? test : test.skip;
    run(`${file}: tsbal check passes and tsbal run starts it, unchanged`, () => {
      const conf = join(EXAMPLES, file);
      const dir = mkdtempSync(join(tmpdir(), 'tsbal-example-'));
      try {
        setUpFiles(dir);
        const ports = listenPorts(readFileSync(conf, 'utf8'));
        const r = spawnSync('timeout', ['60', 'unshare', '-n', '-m', '--propagation', 'private', 'sh', '-c', script(dir, conf, ports, PROBES[file] ?? [])], { encoding: 'utf8' });
        const out = r.stdout;
        const check = readFileSync(join(dir, 'check.out'), 'utf8');
        const runLog = existsSync(join(dir, 'run.out')) ? readFileSync(join(dir, 'run.out'), 'utf8') : '';
        const context = `${out}\n--- check:\n${check}\n--- run:\n${runLog}\n${r.stderr}`;
        expect(out, context).toContain('check rc=0');
        expect(check, context).toContain('configuration OK');
        const refusal = EXPECTED_REFUSALS[file];
        if (refusal !== undefined) {
          // A named, expected exception: run refuses it with exactly this located message, never half-starts.
          expect(runLog, context).toContain(`${conf}:`);
          expect(runLog, context).toContain(refusal);
          expect(out, context).toContain('listening=0');
          return;
        }
        expect(out, context).toContain('listening=1');
        for (const p of PROBES[file] ?? []) {
          const line = out.split('\n').filter((l) => l.startsWith(`probe ${p.port}: `)).find((l) => p.expect.test(l.slice(`probe ${p.port}: `.length)));
          expect(line, `${p.port} ${p.expect}\n${context}`).toBeDefined();
        }
        expect(out, context).toContain('run rc=0');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 90_000);
  }
});
