// Commands that plugins add: VHOST, VPATH (Vhosts, Vpaths), ACCESS (AccessControl), REDIRECT (Redirect).
import type { AccessRule } from '../model.ts';
import { isIpv4, parseNetmaskSpec } from '../ipv4.ts';
import { looksIpv6, parseIpv6Network } from '../ipv6.ts';
import { contextService } from './commands.ts';
import { err, OK, parseArgs, type CommandHandler, type CommandResult } from './result.ts';
import { accessFor, metaFor } from './state.ts';
import { own } from '../records.ts';

const isResult = (v: object): v is CommandResult => 'kind' in v && !('name' in v);

const vhost: CommandHandler = (x) => {
  const a = parseArgs(x, /^vhost\s+(?:(\w+)\s+)?(\S+)\s*=\s*(\w+)$/);
  if (!a) return err('usage: VHOST [<service>] <host_or_pattern> = <dest_service>', /=\s*\S*\W/.test(x.c.cmd) ? 'the target is a service name (letters, digits, _)' : undefined);
  const [selName, host, target] = a as [string | undefined, string, string];
  const sel = contextService(x, selName, 'omitted service name not implied from context');
  if (isResult(sel)) return sel;
  if (sel.role !== 'selector') return err(`Service '${sel.name}' is not a selector service`);
  if (!/^[\w\-.*;:]+$/.test(host)) return err(`invalid host pattern: '${host}'`, 'letters, digits, -, ., and a leading *. (e.g. *.example.com)');
  if (!sel.plugins.includes('vhosts')) {
    x.warn(`VHOST on ${sel.name}, which has not registered the vhosts plugin; a later SET plugins = vhosts clears this rule`, `SET ${sel.name}.plugins = vhosts before the VHOST lines`);
  }
  const pattern = host.split(';')[0]!;
  if (pattern !== '*' && pattern.includes('*') && !/^\*\.[^*]+$/.test(pattern)) {
    x.warn(`'${host}': * matches only as a whole first label (*.example.com) or alone (*); here it is a literal character`);
  }
  const rule = { pattern: host, service: target.toLowerCase(), loc: x.c.loc };
  const index = metaFor(x.state, sel.name).vhostIndex;
  const i = index.get(host);
  if (i !== undefined) {
    x.warn(`VHOST ${host} replaces the rule from line ${sel.vhosts[i]!.loc.line}`);
    sel.vhosts[i] = rule;
  } else {
    index.set(host, sel.vhosts.length);
    sel.vhosts.push(rule);
  }
  return OK;
};

const vpath: CommandHandler = (x) => {
  const a = parseArgs(x, /^vpath\s+(?:(\w+)\s+)?(\S+)\s*=\s*(\w+)$/);
  if (!a) return err('usage: VPATH [<service>] <path regex> = <dest_service>');
  const [selName, regex, target] = a as [string | undefined, string, string];
  const sel = contextService(x, selName, 'omitted service name not implied from context');
  if (isResult(sel)) return sel;
  if (sel.role !== 'selector') return err(`Service '${sel.name}' is not a selector service`);
  try {
    new RegExp(regex);
  } catch {
    return err(`invalid regular expression: '${regex}'`);
  }
  const written = x.c.orig.split('=')[0]!;
  if (/[A-Z]/.test(written.replace(/^\s*vpath\s+/i, ''))) {
    x.warn(`VPATH regex is lowercased, as in Perlbal: it is ${regex}`, 'uppercase letters in a VPATH pattern never match');
  }
  sel.vpaths.push({ regex, service: target.toLowerCase(), loc: x.c.loc });
  return OK;
};

const NO_SERVICE = 'No service name in context from CREATE SERVICE <name> or USE <service_name>';

const access: CommandHandler = (x) => {
  const a = parseArgs(x, /^access\s+(policy|allow|deny|reset|queue_low)(?:\s+(\S+))?(?:\s+(\S+))?$/);
  if (!a) return err('usage: ACCESS <cmd> <arg1> [<arg2>]', 'ACCESS POLICY allow|deny, ACCESS ALLOW|DENY|QUEUE_LOW ip|netmask VALUE, ACCESS RESET');
  const [cmd, arg1, arg2] = a as [string, string | undefined, string | undefined];
  const svc = contextService(x, undefined, NO_SERVICE);
  if (isResult(svc)) return svc;
  if (cmd === 'reset') {
    x.state.access[svc.name] = { policy: 'allow', rules: [] };
    return OK;
  }
  const cfg = accessFor(x.state, svc.name);
  if (cmd === 'policy') {
    if (arg1 !== 'allow' && arg1 !== 'deny') return err("policy must be 'allow' or 'deny'");
    cfg.policy = arg1;
    return OK;
  }
  if (arg1 !== 'ip' && arg1 !== 'netmask') return err(`Unknown item to ${cmd}: '${arg1 ?? ''}'`, 'ip or netmask');
  if (arg2 === undefined) return err(`ACCESS ${cmd.toUpperCase()} ${arg1}: missing value`);
  // tsbal: IPv6 addresses and networks (`ip ::1`, `netmask 2001:db8::/32`); the IPv4 forms keep Perlbal's checks.
  const v6 = looksIpv6(arg2) ? parseIpv6Network(arg2) : null;
  if (v6 !== null && !v6.ok) return err(arg1 === 'ip' ? `ACCESS ${cmd.toUpperCase()} ip: '${arg2}' is not an IPv4 or IPv6 address` : 'Error parsing netmask', v6.message);
  if (arg1 === 'ip' && v6 !== null && arg2.includes('/')) return err(`ACCESS ${cmd.toUpperCase()} ip: '${arg2}' is a network`, `write ACCESS ${cmd.toUpperCase()} netmask ${arg2}`);
  if (arg1 === 'ip' && v6 === null && !isIpv4(arg2)) return err(`ACCESS ${cmd.toUpperCase()} ip: '${arg2}' is not an IPv4 address`);
  if (arg1 === 'netmask' && v6 === null) {
    const mask = parseNetmaskSpec(arg2);
    if (!mask.ok) return err('Error parsing netmask', mask.message);
  }
  const rule: AccessRule = { action: cmd as AccessRule['action'], kind: arg1, value: arg2, loc: x.c.loc };
  cfg.rules.push(rule);
  return OK;
};

const redirect: CommandHandler = (x) => {
  const a = parseArgs(x, /^redirect\s+host\s+(\S+)\s+(\S+)$/);
  if (!a) return err('usage: REDIRECT HOST <match_host> <target_host>');
  const [from, to] = (a as [string, string]).map((s) => s.toLowerCase()) as [string, string];
  const svc = contextService(x, undefined, NO_SERVICE);
  if (isResult(svc)) return svc;
  const list = own(x.state.redirects, svc.name) ?? [];
  x.state.redirects[svc.name] = list;
  const i = list.findIndex((r) => r.from === from);
  const rule = { from, to, loc: x.c.loc };
  if (i >= 0) list[i] = rule;
  else list.push(rule);
  return OK;
};

/** Accepted so configs that use them load; tsbal does not implement these plugins. */
const ignoredPluginCommand: CommandHandler = (x) => {
  if (x.ctx.mode === 'config') x.warn(`${x.c.word.toUpperCase()} is ignored: tsbal does not implement that plugin`);
  return OK;
};

/** `THROTTLE RELOAD config|whitelist|blacklist`: Perlbal re-reads them; tsbal reads them at every (re)load. */
const throttleCommand: CommandHandler = (x) => {
  const a = parseArgs(x, /^throttle\s+(reload)\s+(whitelist|blacklist|config)$/);
  if (!a) return err('usage: throttle reload <config|whitelist|blacklist>');
  return OK;
};

/** Handlers by command word; each needs its plugin loaded (PLUGIN_COMMANDS); INCLUDE is added by include.ts. */
export const PLUGIN_COMMAND_HANDLERS: Readonly<Record<string, CommandHandler>> = {
  vhost, vpath, access, redirect,
  perlrequire: ignoredPluginCommand, perlhandler: ignoredPluginCommand, throttle: throttleCommand,
};
