// Accept/reject decisions compared with real Perlbal 1.80 (Debian's perlbal package): each snippet is
// loaded by Perlbal::load_config in its own perl process, which runs the same command executor as
// `perlbal --config` without entering the event loop. Deliberate differences are listed with their reason.
import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeConfigFs, readPerlbalConfig } from '../../src/config/perlbal.ts';
import { formatDiagnostic } from '../../src/config/errors.ts';
import { runCommand } from '../harness/cli.ts';

const HAVE_PERLBAL = existsSync('/usr/share/perl5/Perlbal.pm');
const dir = mkdtempSync(join(tmpdir(), 'tsbal-pbdiff-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Loads Perlbal once, then judges each file in a forked child, so every file starts from a clean Perlbal. */
const ORACLE = `
$SIG{__WARN__} = sub {};
require Perlbal;
$| = 1;
for my $file (@ARGV) {
  my $pid = fork();
  if (!$pid) {
    open(STDOUT, '>', '/dev/null');
    my $ok = eval { Perlbal::load_config($file, sub {}) };
    POSIX::_exit($@ ? 2 : $ok ? 0 : 1);
  }
  waitpid($pid, 0);
  print "$file ", ($? >> 8) == 0 ? "LOADED" : "FAILED", "\\n";
}
`;

/** Every listener on 127.0.0.1:0 so Perlbal's ENABLE binds a free port and nothing clashes. */
const localize = (text: string) => text.replace(/(SET\s+(?:\w+[. ])?listen\s*=\s*)\S+/gi, '$1127.0.0.1:0');
const MGMT = '\nCREATE SERVICE zz_mgmt\nSET role = management\nSET listen = 127.0.0.1:0\nENABLE zz_mgmt\n';
const fixture = (p: string) => readFileSync(new URL(`./fixtures/${p}`, import.meta.url), 'utf8');

let counter = 0;
/** Perlbal's verdict on each config: true = loaded. */
async function perlbalAccepts(texts: string[]): Promise<boolean[]> {
  const files = texts.map((text) => {
    const file = join(dir, `c${counter++}.conf`);
    writeFileSync(file, text);
    return file;
  });
  const r = await runCommand('perl', ['-MPOSIX', '-e', ORACLE, ...files], { timeoutMs: 100_000 });
  const verdicts = new Map(r.stdout.trim().split('\n').map((l) => l.split(' ') as [string, string]));
  return files.map((f) => {
    const v = verdicts.get(f);
    if (v === undefined) throw new Error(`perl oracle gave no verdict for ${f}: ${r.stdout} ${r.stderr}`);
    return v === 'LOADED';
  });
}

/** Both read the same real files (INCLUDE targets in the temp dir). */
function tsbalErrors(text: string): string[] {
  return readPerlbalConfig(text, { file: join(dir, 'c.conf'), fs: nodeConfigFs, cwd: dir }).diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
}

const S = 'CREATE SERVICE s\n';
const RP = 'CREATE SERVICE s\nSET role = reverse_proxy\n';

/** Both must agree. */
const SAME: Array<[string, string]> = [
  ['tutorial section 4', fixture('tutorial/perlbal-section4.conf')],
  ['tutorial section 8', fixture('tutorial/perlbal-section8.conf')],
  ['lowercasing before =', 'CREATE SERVICE FooBar\nSET FOOBAR.Role = Reverse_Proxy\n'.replace('Reverse_Proxy', 'reverse_proxy')],
  ['three SET forms', RP + 'SET s.idle_timeout=5\nSET s persist_client_idle_timeout =7\nSET connect_ahead= 2\n'],
  ['POOL in either order', 'CREATE POOL p\nPOOL p ADD 10.0.0.1\nPOOL ADD p 10.0.0.2:81\nPOOL REMOVE p 10.0.0.9\n'],
  ['DEFAULT then role', 'DEFAULT persist_client = on\n' + RP],
  ['HEADER insert and remove', RP + 'HEADER s insert X-A: b\nHEADER s remove X-B\n'],
  ['SERVER keys', 'SERVER pidfile = /tmp/x.pid\nSERVER max_connections = 1000\n'],
  ['sizes and bools', RP + 'SET buffer_size = 1M\nSET persist_backend = YES\nSET buffer_backend_connect = 512b\n'],
  ['vhosts with a later target', 'LOAD vhosts\nCREATE SERVICE sel\nSET role = selector\nSET plugins = vhosts\nVHOST *.a.com = t\nVHOST * = t\n'],
  ['plugin setter with the service name', 'LOAD vhosts\nLOAD NotModified\nCREATE SERVICE d\nSET role = selector\nSET plugins = vhosts, notmodified\nSET d.notmodified.host_pattern = ^i\\.\n'],
  ['extra keys', RP + 'SET s.extra.foo = bar\n'],
  ['access control', 'LOAD AccessControl\n' + RP + 'ACCESS POLICY deny\nACCESS ALLOW ip 10.0.0.1\n'],
  ['redirect', 'LOAD Redirect\n' + RP + 'REDIRECT HOST a.com b.com\n'],
  ['persist_client_timeout', RP + 'SET persist_client_timeout = 5\n'],
  ['HEADER without a space after the colon', RP + 'HEADER s insert X-A:b\n'],
  ['SET plugins = none, upload_tracker role, numeric names', S + 'SET role = selector\nSET plugins = none\nCREATE SERVICE 123\nSET role = upload_tracker\n'],
  ['docroot with a trailing slash, index_files list', 'CREATE SERVICE w\nSET role = web_server\nSET docroot = /tmp/\nSET index_files = a b, c\n'],
  ['DEFAULT of an unknown key', 'DEFAULT frob = 1\n'],
  ['SERVER reproxy limits and aio none', 'SERVER max_reproxy_connections(10.0.0.1:80) = 5\nSERVER max_reproxy_connections = 10\nSERVER aio_mode = none\n'],
  ['selector latency and default_service', 'CREATE SERVICE web\nSET role = web_server\n' + S + 'SET role = selector\nSET latency = 5\nSET default_service = web\n'],
  ['report commands in a config file', 'LOAD Stats\nstats\nxs\nmime list\n'],
  ['plugin tunables', 'LOAD EchoService\nLOAD MaxContentLength\nLOAD XFFExtras\n' + RP + 'SET max_content_length = 100\nSET send_backend_port = on\nCREATE SERVICE e\nSET role = echo\nSET echo_delay = 3\n'],
  ['ACCESS RESET and QUEUE_LOW, VPATH', 'LOAD AccessControl\nLOAD vpaths\n' + RP + 'ACCESS RESET\nACCESS QUEUE_LOW ip 1.2.3.4\nCREATE SERVICE v\nSET role = selector\nSET plugins = vpaths\nVPATH ^/a = s\n'],
  ['obsolete service-level nodefile and balance_method (auto-created pool)', RP + 'SET balance_method = random\nSET nodefile = /dev/null\n'],
  ['nodefile none, pool port 0 (means 80)', 'CREATE POOL p\nSET nodefile = none\nPOOL p ADD 10.0.0.1:0\n'],
  ['unset $VAR expands to nothing', RP + 'SET verify_backend_path = /$NOPE_UNSET_VAR\n'],
  ['error: unknown command', 'FOO bar\n'],
  ['error: bad name', 'CREATE SERVICE a-b\n'],
  ['error: no context', 'SET foo = bar\n'],
  ['error: unknown parameter', S + 'SET foo = bar\n'],
  ['error: bad role', S + 'SET role = bogus\n'],
  ['error: bad bool', RP + 'SET persist_client = maybe\n'],
  ['error: option before role', S + 'SET persist_backend = on\n'],
  ['error: missing pool', RP + 'SET pool = nopool\n'],
  ['error: host name listen', S + 'SET listen = localhost:80\n'],
  ['error: negative int', RP + 'SET connect_ahead = -1\n'],
  ['error: 10g', RP + 'SET buffer_size = 10g0\n'],
  ['error: chance 101', RP + 'SET queue_relief_chance = 101\n'],
  ['error: pool host name', 'CREATE POOL p1\nPOOL p1 ADD localhost:80\n'],
  ['error: pool verb', 'CREATE POOL p1\nPOOL p1 FROB 127.0.0.1:80\n'],
  ['error: duplicate pool', 'CREATE POOL p1\nCREATE POOL p1\n'],
  ['error: round_robin', 'CREATE POOL p1\nSET balance_method = round_robin\n'],
  ['error: quoted random', "CREATE POOL p1\nSET balance_method = 'random'\n"],
  ['error: unknown pool key (silent in Perlbal)', 'CREATE POOL p1\nSET foo = bar\n'],
  ['error: CREATE POOL switched the context', S + 'SET role = reverse_proxy\nCREATE POOL p\nSET persist_client = on\n'],
  ['error: enable twice', S + 'SET role = management\nSET listen = 127.0.0.1:0\nENABLE s\nENABLE s\n'],
  ['error: VHOST without LOAD', 'VHOST *.a.com = x\n'],
  ['error: vhosts on a reverse_proxy', 'LOAD vhosts\n' + RP + 'SET plugins = vhosts\n'],
  ['error: unknown server key', 'SERVER foo = 1\n'],
  ['error: HEADER without value', S + 'HEADER s insert X-A\n'],
  ['error: USE unknown', 'USE nosuch\n'],
  ['error: bad DEFAULT value, at SET role', 'DEFAULT persist_client = maybe\n' + RP],
  ['error: extra without the service name', RP + 'SET extra.foo = bar\n'],
  ['error: plugin setter without the service name', 'LOAD NotModified\nCREATE SERVICE d\nSET notmodified.host_pattern = x\n'],
  ['error: REDIRECT on a pool', 'LOAD Redirect\nCREATE POOL p\nREDIRECT HOST a b\n'],
  ['error: VERBOSE', 'VERBOSE maybe\n'],
  ['error: track_obj 2', 'SERVER track_obj = 2\n'],
  ['error: missing ssl_key_file', RP + 'SET ssl_key_file = /nonexistent.pem\n'],
  ['error: bad upload_status_listeners', RP + 'SET upload_status_listeners = bad\n'],
  ['error: missing buffer_uploads_path', RP + 'SET buffer_uploads_path = /nonexistent\n'],
  ['error: SET without =', RP + 'SET s.persist_client on\n'],
  ['error: CREATE without a name', 'CREATE SERVICE\n'],
  ['error: ENABLE a pool', 'CREATE POOL p\nENABLE p\n'],
  ['error: SET on an unknown object', 'SET nope.persist_client = on\n'],
  ['error: echo role without EchoService', S + 'SET role = echo\n'],
  ['error: VHOST after UNLOAD vhosts', 'LOAD vhosts\nUNLOAD vhosts\nVHOST * = s\n'],
  ['error: RELOAD', 'LOAD vhosts\nRELOAD vhosts\n'],
  ['error: INCLUDE without LOAD include', 'INCLUDE = /dev/null\n'],
];

/** tsbal decides differently on purpose (docs/compat.md): [name, config, tsbal accepts?]. */
const DIFFERENT: Array<[string, string, boolean]> = [
  ['tsbal: SET plugins naming an unloaded plugin is an error (Perlbal prints ERROR and goes on)', S + 'SET role = selector\nSET plugins = vhosts\n', false],
  ['tsbal: errors inside an INCLUDEd file stop startup', `LOAD include\nINCLUDE = ${dir}/inc-*.conf\n`, false],
  ['tsbal: names match without case', 'CREATE POOL mypool\n' + RP + 'SET pool = MyPool\n', true],
  ['tsbal: time values take ms/s/m suffixes', RP + 'SET idle_timeout = 1500ms\n', true],
  ['tsbal: sizes take g', RP + 'SET buffer_size = 1g\n', true],
  ['tsbal: roundrobin and leastconn balance methods', 'CREATE POOL p\nSET balance_method = leastconn\n', true],
  ['tsbal: trusted_upstream_proxies without Net::Netmask', S + 'SET trusted_upstream_proxies = 10.0.0.0/8\n', true],
  ['tsbal: plugin names in any case', 'LOAD accesscontrol\n', true],
  ['tsbal: aio_mode ioaio is accepted and ignored (Debian has no IO::AIO)', 'SERVER aio_mode = ioaio\n', true],
  ['tsbal: POOL ADD with the pool from context', 'CREATE POOL p\nPOOL ADD 10.0.0.1\n', true],
  ['tsbal: max_backend_uses is an integer', RP + 'SET max_backend_uses = abc\n', false],
  ['tsbal: pool addresses are real IPv4 addresses', 'CREATE POOL p\nPOOL p ADD 1x2x3x4\n', false],
  ['tsbal: listen addresses are checked when set', S + 'SET listen = 10.0.0.300:80\n', false],
];

describe.skipIf(!HAVE_PERLBAL)('accept/reject matches real Perlbal 1.80', () => {
  test('the same snippets are accepted or refused by both', async () => {
    const configs = SAME.map(([, text]) => localize(text) + MGMT);
    const perlbal = await perlbalAccepts(configs);
    const verdicts = SAME.map(([name], i) => {
      const errors = tsbalErrors(configs[i]!);
      return { name, perlbal: perlbal[i], tsbal: errors.length === 0, errors };
    });
    const disagreements = verdicts.filter((v) => v.perlbal !== v.tsbal);
    expect(disagreements).toEqual([]);
    expect(verdicts.filter((v) => v.perlbal).length).toBeGreaterThan(10);
  }, 120_000);

  test('documented differences go the documented way, and Perlbal really decides otherwise', async () => {
    writeFileSync(join(dir, 'inc-a.conf'), 'CREATE SERVICE inc\nSET inc.bogus = 1\n');
    const configs = DIFFERENT.map(([, text]) => text + MGMT);
    const perlbal = await perlbalAccepts(configs);
    const verdicts = DIFFERENT.map(([name, , expected], i) => ({ name, expected, tsbal: tsbalErrors(configs[i]!).length === 0, perlbal: perlbal[i] }));
    expect(verdicts.filter((v) => v.tsbal !== v.expected || v.perlbal === v.expected)).toEqual([]);
  }, 120_000);
});
