// The real daemons tsbal is compared with, and tsbal itself, as child processes on 127.0.0.1 high ports with
// private temp dirs. One file per daemon; this module gathers them.
export { type Apache, startApache } from './apache.ts';
export { type Haproxy, startHaproxy } from './haproxy.ts';
export { type Nginx, startNginxBackend, startNginxProxy } from './nginx.ts';
export { type PerlbalConfProxy, startPerlbal, startWithConf } from './perlbal.ts';
export { type HeaderLine, type ReverseProxySpec, TUTORIAL_OPTIONS, reverseProxyConf } from './perlbalconf.ts';
export { type Daemon, groupUsage, readProc, startDaemon, stopAll } from './procs.ts';
export { canConnect, freePort, freePorts, waitForPorts } from './ports.ts';
export { type TsbalBuild, startTsbal, startTsbalWithConf, tsbalRunExists } from './tsbal.ts';
export { type WrkResult, parseWrk, runWrk, totalErrors } from './wrk.ts';
