// Golden error messages for perlbal.conf: Perlbal's own wording (reference section 8.5) where it has one,
// with the line, and tsbal's hint in parentheses.
import { describe, expect, test } from 'bun:test';
import { memoryConfigFs, readPerlbalConfig } from '../../src/config/perlbal.ts';
import { formatDiagnostic } from '../../src/config/errors.ts';

const S = 'CREATE SERVICE s\n';
const RP = 'CREATE SERVICE s\nSET role = reverse_proxy\n';
const fs = memoryConfigFs({}, ['/tmp']);

/** The first error a snippet produces, as the user sees it. */
function firstError(text: string): string {
  const errors = readPerlbalConfig(text, { file: 'p.conf', fs }).diagnostics.filter((d) => d.severity === 'error');
  return errors.length > 0 ? formatDiagnostic(errors[0]!) : '(accepted)';
}

const GOLDEN: Array<[string, string]> = [
  ['FOO bar', 'p.conf:1: unknown command: foo'],
  ['CRATE SERVICE s', 'p.conf:1: unknown command: crate (did you mean create?)'],
  ['CREATE SERVICE a-b', 'p.conf:1: usage: CREATE {service|pool} <name> (names may contain letters, digits and _ only)'],
  ['SET foo = bar', 'p.conf:1: omitted service/pool name not implied from context (CREATE SERVICE/POOL or USE a name first, or name it on this line)'],
  [S + 'SET foo = bar', "p.conf:2: Unknown service parameter 'foo'"],
  [RP + 'SET persist_bakend = on', "p.conf:3: Unknown service parameter 'persist_bakend' (did you mean persist_backend?)"],
  [S + 'SET role = bogus', 'p.conf:2: Role not valid for service s (roles are reverse_proxy, web_server, management, selector, upload_tracker)'],
  [S + 'SET role = reverse_prxy', 'p.conf:2: Role not valid for service s (did you mean reverse_proxy?)'],
  [RP + 'SET persist_client = maybe', "p.conf:3: Expecting boolean value for parameter 'persist_client' (use on or off)"],
  [S + 'SET persist_backend = on', "p.conf:2: The 'persist_backend' option can only be set on a 'reverse_proxy' service (put SET role = ... before this line)"],
  ['CREATE SERVICE s\nSET role = web_server\nSET max_retries = 1', "p.conf:3: The 'max_retries' option can only be set on a 'reverse_proxy' service (s is a web_server service)"],
  [S + 'SET role = management\nSET header_timeout = 1', "p.conf:3: The 'header_timeout' option can only be set on a 'reverse_proxy', 'selector' or 'web_server' service (s is a management service)"],
  [RP + 'SET pool = nopool', "p.conf:3: Pool 'nopool' not found (CREATE POOL it before this line)"],
  [S + 'SET listen = localhost:80', 'p.conf:2: Listen argument must be ip:port or port. e.g. 192.168.0.1:80 or 81 (host names are not accepted; write the IP address)'],
  [S + 'SET listen = 10.0.0.300:80', "p.conf:2: Listen argument must be ip:port or port. e.g. 192.168.0.1:80 or 81 ('10.0.0.300' is not a valid IPv4 address)"],
  [RP + 'SET connect_ahead = -1', "p.conf:3: Expecting integer value for parameter 'connect_ahead' (negative numbers are not allowed)"],
  [RP + 'SET buffer_size = 10x', "p.conf:3: Expecting size unit value for parameter 'buffer_size' in bytes, or suffixed with 'K' or 'M' (e.g. 65536, 64k or 2m)"],
  [RP + 'SET idle_timeout = 5x', "p.conf:3: Expecting a time value for parameter 'idle_timeout' (N (seconds), Nms, Ns or Nm, e.g. 30 or 500ms)"],
  [RP + 'SET queue_relief_chance = 101', 'p.conf:3: Expecting integer value between 0 and 100, inclusive.'],
  [S + 'SET role = selector\nSET default_service = nosuch', "p.conf:3: Service 'nosuch' not found (the service must be created before this line)"],
  ['CREATE SERVICE s\nSET role = web_server\nSET docroot = "/tmp"', 'p.conf:3: Directory not found for service s (remove the quotes: perlbal.conf has no quoting)'],
  ['CREATE POOL p1\nPOOL p1 ADD localhost:80', "p.conf:2: Invalid syntax to 'pool' command (backends are IPv4 addresses; host names are not accepted)"],
  ['CREATE POOL p1\nPOOL p1 FROB 127.0.0.1:80', "p.conf:2: Invalid command:  must be 'add' or 'remove'"],
  ['POOL nosuch ADD 127.0.0.1:80', "p.conf:1: Pool 'nosuch' not found"],
  ['CREATE POOL p1\nCREATE POOL p1', "p.conf:2: pool 'p1' already exists (created on line 1; services and pools share one namespace)"],
  ['CREATE POOL p1\nCREATE SERVICE p1', "p.conf:2: pool 'p1' already exists (created on line 1; services and pools share one namespace)"],
  ['CREATE POOL p1\nSET balance_method = round_robin', 'p.conf:2: Unknown balance method (methods are random, roundrobin, leastconn, source (Perlbal has only random))'],
  ["CREATE POOL p\nSET balance_method = 'random'", 'p.conf:2: Unknown balance method (remove the quotes)'],
  ['CREATE POOL p1\nSET nodefile = /nonexistent', 'p.conf:2: File not found (nodefile /nonexistent does not exist)'],
  ['CREATE POOL p1\nSET foo = bar', "p.conf:2: Unknown pool parameter 'foo' (pools take nodefile, balance_method, max_conns, queue_timeout, health_check, health_check_path, health_check_method, health_check_host, health_check_expect, health_check_interval, health_check_timeout, health_check_rise, health_check_fall, health_check_reuse, health_check_5xx_streak, slow_start, all_down, backend_ssl, backend_ssl_verify, backend_ssl_ca, backend_ssl_sni)"],
  ['CREATE POOL p1\nSET health_check_intervl = 2s', "p.conf:2: Unknown pool parameter 'health_check_intervl' (did you mean health_check_interval?)"],
  ['CREATE POOL p1\nSET health_check_interval = 2x', "p.conf:2: Expecting a time value for parameter 'health_check_interval' (N (seconds), Nms, Ns or Nm, e.g. 30 or 500ms)"],
  ['CREATE POOL p1\nSET health_check_path = health', "p.conf:2: Expecting a request path starting with / for parameter 'health_check_path' (e.g. /health or /; no spaces)"],
  ['CREATE POOL p1\nSET health_check_expect = 2xx', "p.conf:2: Expecting HTTP statuses for parameter 'health_check_expect' (a list of statuses and ranges, e.g. 200, 200-399 or 200,301-302)"],
  ['CREATE POOL p1\nSET health_check_fall = 0', "p.conf:2: Expecting integer value between 1 and 100 for parameter 'health_check_fall'"],
  ['CREATE POOL p1\nSET health_check = udp', "p.conf:2: Value of 'health_check' must be one of: off, http, tcp"],
  ['CREATE POOL p1\nSET all_down = 502', "p.conf:2: Value of 'all_down' must be one of: keep_trying, 503 (did you mean 503?)"],
  [RP + 'SET health_check_path = /', "p.conf:3: Unknown service parameter 'health_check_path' (health_check_path is a pool parameter)"],
  ['CREATE SERVICE s\nCREATE POOL p\nSET persist_client = on', "p.conf:3: 'persist_client' is a service parameter, but the current object is pool 'p' (CREATE POOL switches the context to the pool; write SET <service>.persist_client = ... or USE <service> first)"],
  ['ENABLE nosuch', "p.conf:1: service 'nosuch' does not exist"],
  [S + 'SET role = management\nENABLE s\nENABLE s', 'p.conf:4: service s is already enabled'],
  [S + 'SET role = management\nSET listen = 127.0.0.1:1\nENABLE s\nDISABLE s', "p.conf:5: can't disable management service"],
  ['LOAD nosuchplugin', "p.conf:1: unknown plugin 'nosuchplugin' (Perlbal's plugins are AccessControl, AutoRemoveLeadingDir, Cgilike, EchoService, FlvStreaming, Highpri, Include, LazyCDN, MaxContentLength, NotModified, Palimg, Queues, Redirect, Stats, Throttle, Vhosts, Vpaths, XFFExtras)"],
  ['LOAD vhost', "p.conf:1: unknown plugin 'vhost' (did you mean Vhosts?)"],
  ['VHOST *.a.com = x', 'p.conf:1: unknown command: vhost (LOAD Vhosts first)'],
  ['LOAD vhosts\n' + RP + 'SET plugins = vhosts', "p.conf:4: You can't load the vhost plugin on a service not of role selector. (SET role = selector first)"],
  [S + 'SET role = selector\nSET plugins = vhosts', 'p.conf:3: Plugin vhosts not loaded; not registered for s. (add LOAD Vhosts before this line)'],
  ['LOAD vhosts\nCREATE SERVICE b\nSET role = reverse_proxy\nVHOST b z.com = b', "p.conf:4: Service 'b' is not a selector service"],
  ['LOAD vhosts\n' + S + 'SET role = selector\nVHOST Bad/Host = t', "p.conf:4: invalid host pattern: 'bad/host' (letters, digits, -, ., and a leading *. (e.g. *.example.com))"],
  ['LOAD vhosts\n' + S + 'SET role = selector\nVHOST ok.com = bad-name', 'p.conf:4: usage: VHOST [<service>] <host_or_pattern> = <dest_service> (the target is a service name (letters, digits, _))'],
  ['LOAD vpaths\n' + S + 'SET role = selector\nVPATH ^/(a = t', "p.conf:4: invalid regular expression: '^/(a'"],
  ['SERVER workers = many', "p.conf:1: workers must be auto or 1..256, got 'many' (SERVER workers = auto, or a number such as 2)"],
  ['SERVER workers = 0', "p.conf:1: workers must be auto or 1..256, got '0' (SERVER workers = auto, or a number such as 2)"],
  ['SERVER foo = 1', "p.conf:1: unknown server option 'foo' (keys are max_reproxy_connections, max_connections, nice_level, aio_mode, aio_threads, track_obj, pidfile, crash_backtrace, workers, anycast_vip, anycast_dev, anycast_require, anycast_withdraw_wait)"],
  ['SERVER max_conections = 1', "p.conf:1: unknown server option 'max_conections' (did you mean max_connections?)"],
  ['SERVER aio_mode = linux', 'p.conf:1: Linux::AIO no longer supported (use none)'],
  ['SERVER max_connections = lots', 'p.conf:1: Expected numeric parameter'],
  [S + 'HEADER s insert X-A', 'p.conf:2: no value provided'],
  ['HEADER nosuch insert X-A: 1', "p.conf:1: service 'nosuch' does not exist"],
  ['USE nosuch', "p.conf:1: Non-existent pool or service 'nosuch'"],
  ['SET listen = ${foo}', 'p.conf:1: Unknown config variable: foo (the only form is ${ip:IFACE})'],
  ['SET listen = ${ip:eth9}', "p.conf:1: Can't find IP of interface 'eth9' (the interface must exist and have an IPv4 address)"],
  ['LOAD include\nINCLUDE=/x', 'p.conf:2: usage: INCLUDE = <config files> (put a space on both sides of =)'],
  ['LOAD include\nINCLUDE = /nonexistent.conf', 'p.conf:2: Error opening config file (/nonexistent.conf): No such file or directory'],
  ['LOAD accesscontrol\nACCESS ALLOW ip', "p.conf:2: No service name in context from CREATE SERVICE <name> or USE <service_name> (CREATE SERVICE or USE a service first)"],
  ['LOAD accesscontrol\n' + S + 'ACCESS POLICY maybe', "p.conf:3: policy must be 'allow' or 'deny'"],
  ['LOAD accesscontrol\n' + S + 'ACCESS DENY netmask 10.0.0.0/33', "p.conf:3: Error parsing netmask ('10.0.0.0/33': more than 32 bits)"],
  ['LOAD accesscontrol\n' + S + 'ACCESS DENY netmask 10.0.0.0/255.0.255.0', "p.conf:3: Error parsing netmask ('10.0.0.0/255.0.255.0': '255.0.255.0' is not a prefix length or a contiguous mask)"],
  ['crash', 'p.conf:1: CRASH in a config file would stop the server (remove this line)'],
  ['SET s.notmodified.host_pattern = x', "p.conf:1: service/pool 's' does not exist"],
  ['LOAD notmodified\nSET notmodified.host_pattern = x', "p.conf:2: service/pool 'notmodified' does not exist (plugin settings need the service name: SET <service>.notmodified.host_pattern = ...)"],
  // Whole-file checks, which Perlbal meets only at run time (or never).
  ['', 'p.conf: No services or management port configured. Nothing to do. (ENABLE a service that has a listen address)'],
  [RP + 'SET listen = 80\nENABLE s', 'p.conf:1: service s (reverse_proxy) has no pool (CREATE POOL, POOL <pool> ADD ip:port, then SET pool = <pool>)'],
  [S + 'SET role = selector\nSET listen = 80\nENABLE s', 'p.conf:1: selector s has no selector plugin; every request would get 500 (LOAD vhosts, then SET plugins = vhosts and VHOST lines)'],
  ['CREATE SERVICE s\nSET role = web_server\nSET listen = 80\nENABLE s', 'p.conf:1: service s (web_server) has no docroot (SET docroot = /var/www, or SET plugins = redirect for a web_server that only redirects)'],
  ['CREATE SERVICE s\nSET listen = 80\nENABLE s', 'p.conf:1: service s is enabled but has no role (SET role = reverse_proxy (or web_server, selector, management))'],
  ['CREATE SERVICE a\nSET role = management\nSET listen = 80\nENABLE a\nCREATE SERVICE b\nSET role = management\nSET listen = 127.0.0.1:80\nENABLE b', 'p.conf:5: service b listens on 127.0.0.1:80, which service a (line 1) already uses'],
];

describe('perlbal.conf error messages (golden)', () => {
  for (const [text, expected] of GOLDEN) {
    test(`${JSON.stringify(text.split('\n').at(-1))} -> ${expected.replace(/^p\.conf(:\d+)?: /, '')}`, () => {
      expect(firstError(text)).toBe(expected);
    });
  }

  test('every bad line is reported, not just the first; lines after a failed CREATE are not blamed on the previous object', () => {
    const text = ['CREATE SERVICE ok', 'SET role = reverse_proxy', 'CREATE SERVICE bad-name', 'SET persist_client = on', 'SET bogus = 1', 'CREATE SERVICE t', 'SET role = nope', 'SET persist_backend = on', 'SET listen = 1.2.3'].join('\n');
    expect(readPerlbalConfig(text, { file: 'p.conf' }).diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([
      'p.conf:3: usage: CREATE {service|pool} <name> (names may contain letters, digits and _ only)',
      'p.conf:7: Role not valid for service t (roles are reverse_proxy, web_server, management, selector, upload_tracker)',
      'p.conf:9: Listen argument must be ip:port or port. e.g. 192.168.0.1:80 or 81',
    ]);
  });

  test('a failed SET pool or SET docroot is the only error: no second "has no pool/docroot" for the same mistake', () => {
    const text = [
      'CREATE SERVICE rp', 'SET role = reverse_proxy', 'SET pool = nopool', 'ENABLE rp',
      'CREATE SERVICE web', 'SET role = web_server', 'SET docroot = /nonexistent', 'ENABLE web',
      'CREATE SERVICE bare', 'SET role = reverse_proxy', 'ENABLE bare',
    ].join('\n');
    expect(readPerlbalConfig(text, { file: 'p.conf', fs }).diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([
      "p.conf:3: Pool 'nopool' not found (CREATE POOL it before this line)",
      'p.conf:7: Directory not found for service web (/nonexistent does not exist)',
      'p.conf:9: service bare (reverse_proxy) has no pool (CREATE POOL, POOL <pool> ADD ip:port, then SET pool = <pool>)',
    ]);
  });

  test('errors inside an INCLUDEd file carry that file and line', () => {
    const r = readPerlbalConfig('LOAD include\nINCLUDE = /etc/perlbal/*.conf\n', { file: 'p.conf', fs: memoryConfigFs({ '/etc/perlbal/a.conf': '\nCREATE SERVICE x\nSET x.frob = 1\n' }) });
    expect(r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual(["/etc/perlbal/a.conf:3: Unknown service parameter 'frob'"]);
  });

  test('an INCLUDE loop is refused instead of recursing forever', () => {
    const fs2 = memoryConfigFs({ '/a.conf': 'LOAD include\nINCLUDE = /b.conf\n', '/b.conf': 'INCLUDE = /a.conf\n' });
    const r = readPerlbalConfig('LOAD include\nINCLUDE = /a.conf\n', { file: '/top.conf', fs: fs2 });
    expect(r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([
      '/b.conf:1: INCLUDE cycle: /a.conf is already being read (/top.conf -> /a.conf -> /b.conf -> /a.conf)',
    ]);
  });
});

describe('health-check settings that cannot do what they say (warnings)', () => {
  const warnings = (text: string): string[] =>
    readPerlbalConfig(text, { file: 'p.conf', fs }).diagnostics.filter((d) => d.severity === 'warning').map(formatDiagnostic);
  const SVC = 'CREATE SERVICE s\nSET role = reverse_proxy\nSET listen = 127.0.0.1:80\nSET pool = p1\nENABLE s\n';

  test('check settings without health_check_path or health_check are flagged at the pool', () => {
    expect(warnings('CREATE POOL p1\nPOOL p1 ADD 127.0.0.1:81\nSET health_check_interval = 5s\nSET slow_start = 30s\n' + SVC)).toContain(
      'p.conf:1: warning: pool p1: health_check_interval, slow_start have no effect: health checks are off (SET health_check_path = /health (or health_check = tcp) on the pool)',
    );
    expect(warnings('CREATE POOL p1\nPOOL p1 ADD 127.0.0.1:81\nSET health_check_5xx_streak = 5\n' + SVC).join('\n')).not.toContain('health checks are off');
  });

  test('a timeout not shorter than the interval is flagged', () => {
    expect(warnings('CREATE POOL p1\nPOOL p1 ADD 127.0.0.1:81\nSET health_check_path = /\nSET health_check_interval = 1s\nSET health_check_timeout = 2s\n' + SVC)).toContain(
      'p.conf:1: warning: pool p1: health_check_timeout (2000 ms) is not shorter than health_check_interval (1000 ms); a silent backend then takes fall × timeout to be taken out (SET health_check_timeout = 500ms (shorter than the interval))',
    );
    // Only the interval set: the warning names the default timeout, so the user knows which setting to add.
    expect(warnings('CREATE POOL p1\nPOOL p1 ADD 127.0.0.1:81\nSET health_check_path = /\nSET health_check_interval = 1s\n' + SVC)).toContain(
      'p.conf:1: warning: pool p1: the default health_check_timeout (1000 ms) is not shorter than health_check_interval (1000 ms); a silent backend then takes fall × timeout to be taken out (SET health_check_timeout = 500ms (shorter than the interval))',
    );
    expect(warnings('CREATE POOL p1\nPOOL p1 ADD 127.0.0.1:81\nSET health_check_path = /\n' + SVC)).toEqual([]);
  });
});
