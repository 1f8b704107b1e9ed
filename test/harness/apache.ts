// Debian's Apache 2.4 (mpm event) on a 127.0.0.1 high port, with its own ServerRoot, PidFile and logs in a
// private temp dir. Never touches /etc/apache2 or the system service.
//
// Routes:
//   /            static index.html: "apache <name>\n" (Content-Length known, so keep-alive works for HTTP/1.0)
//   /big.txt     static file of `bigBytes` bytes
//   /slow?ms=N   mod_lua: sleeps N ms (default 500), then "slept N\n"
//   /echo        mod_lua: the request line and request headers as Apache received them, one per line
// Every request is logged to access.log as `<name> "<request line>" <status> <bytes>`; see apacheHits().
import fs from 'node:fs';
import path from 'node:path';
import { LOOPBACK, sleep } from './ports.ts';
import { type Daemon, makeTempDir, startDaemon, startWithFreshPorts } from './procs.ts';

const MODULES = '/usr/lib/apache2/modules';

export interface ApacheOptions {
  /** Shown in the body of / and in the access log. */
  name?: string;
  bigBytes?: number;
  /** MaxRequestWorkers (default 64: two children of 32 threads). At capacity, mpm event closes idle keep-alive connections. */
  maxRequestWorkers?: number;
  /** Serve HTTPS (mod_ssl) with this certificate and key instead of plain HTTP. */
  tls?: { cert: string; key: string };
}

export interface Apache extends Daemon {
  port: number;
  /** Request lines logged so far, e.g. `GET / HTTP/1.0`. Apache logs after it responds, so this can lag. */
  hits(): string[];
  /** Polls hits() until there are at least `count` (or `timeoutMs` passes) and returns them. */
  waitForHits(count: number, timeoutMs?: number): Promise<string[]>;
}

const SLOW_LUA = `
function handle(r)
  local args = r:parseargs()
  local ms = tonumber(args.ms or "500") or 500
  r.usleep(ms * 1000)
  r.content_type = "text/plain"
  r:puts("slept " .. ms .. "\\n")
  return apache2.OK
end
`;

const ECHO_LUA = `
function handle(r)
  r.content_type = "text/plain"
  r:puts(r.the_request .. "\\n")
  for k, v in pairs(r:headers_in_table()) do
    r:puts(k .. ": " .. v .. "\\n")
  end
  return apache2.OK
end
`;

function apacheConf(dir: string, port: number, name: string, maxWorkers: number, tls?: { cert: string; key: string }): string {
  const runAs = process.getuid?.() === 0 ? 'User www-data\nGroup www-data' : '';
  const load = (mod: string, file: string): string => `LoadModule ${mod}_module ${MODULES}/mod_${file}.so`;
  return `ServerRoot "${dir}"
ServerName ${LOOPBACK}
Listen ${LOOPBACK}:${port}
PidFile ${dir}/httpd.pid
DefaultRuntimeDir ${dir}
Mutex file:${dir} default
ErrorLog ${dir}/error.log
LogLevel warn
${load('mpm_event', 'mpm_event')}
${load('authz_core', 'authz_core')}
${load('mime', 'mime')}
${load('dir', 'dir')}
${load('headers', 'headers')}
${load('lua', 'lua')}
${runAs}
StartServers 1
ServerLimit ${Math.ceil(maxWorkers / 32)}
ThreadsPerChild 32
MaxRequestWorkers ${maxWorkers}
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30
TypesConfig ${dir}/mime.types
AddType text/plain .txt
AddType text/html .html
LogFormat "${name} \\"%r\\" %>s %b" hits
CustomLog ${dir}/access.log hits
DocumentRoot ${dir}/htdocs
DirectoryIndex index.html
<Directory ${dir}/htdocs>
  Require all granted
</Directory>
LuaMapHandler ^/slow$ ${dir}/slow.lua
LuaMapHandler ^/echo$ ${dir}/echo.lua
${tls === undefined ? '' : `${load('socache_shmcb', 'socache_shmcb')}
${load('ssl', 'ssl')}
SSLSessionCache shmcb:${dir}/ssl_scache(512000)
SSLEngine on
SSLCertificateFile ${tls.cert}
SSLCertificateKeyFile ${tls.key}
`}`;
}

export function startApache(options: ApacheOptions = {}): Promise<Apache> {
  const name = options.name ?? 'a';
  return startWithFreshPorts(1, async ([port]) => {
    const dir = makeTempDir(`apache-${name}`);
    fs.mkdirSync(path.join(dir, 'htdocs'), { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'htdocs/index.html'), `apache ${name}\n`);
    fs.writeFileSync(path.join(dir, 'htdocs/big.txt'), 'x'.repeat(options.bigBytes ?? 100_000));
    fs.writeFileSync(path.join(dir, 'slow.lua'), SLOW_LUA);
    fs.writeFileSync(path.join(dir, 'echo.lua'), ECHO_LUA);
    fs.writeFileSync(path.join(dir, 'mime.types'), '');
    fs.writeFileSync(path.join(dir, 'httpd.conf'), apacheConf(dir, port!, name, options.maxRequestWorkers ?? 64, options.tls));
    const daemon = await startDaemon({
      name: `apache-${name}`,
      command: '/usr/sbin/apache2',
      args: ['-d', dir, '-f', `${dir}/httpd.conf`, '-DFOREGROUND'],
      dir,
      ports: [port!],
      logFiles: [`${dir}/error.log`],
      // Debian's apache2 refuses to start without these when it reads its envvars-based defaults.
      env: { ...process.env, APACHE_RUN_DIR: dir, APACHE_LOCK_DIR: dir, APACHE_LOG_DIR: dir },
    });
    const hits = (): string[] => {
      const log = fs.existsSync(path.join(dir, 'access.log')) ? fs.readFileSync(path.join(dir, 'access.log'), 'utf8') : '';
      return log
        .split('\n')
        .filter(Boolean)
        .map((line) => /"(.*)"/.exec(line)?.[1] ?? line);
    };
    return {
      ...daemon,
      port: port!,
      hits,
      async waitForHits(count, timeoutMs = 2000) {
        const deadline = Date.now() + timeoutMs;
        let seen = hits();
        while (seen.length < count && Date.now() < deadline) {
          await sleep(20);
          seen = hits();
        }
        return seen;
      },
    };
  });
}
