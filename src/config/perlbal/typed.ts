// Turns a raw SET value into the model's typed value, following the option's type.
import { posix } from 'node:path';
import type { OptionValue } from '../model.ts';
import { isIpv4 } from '../ipv4.ts';
import { didYouMean } from '../suggest.ts';
import type { OptionSpec } from './options.ts';
import type { CommandEnv, PerlbalState } from './state.ts';
import { isCidr, parseBool, parseInt, parseSecondsList, parseSize, parseStatusList, parseTime, type ValueResult } from './values.ts';

export interface ValueScope {
  state: PerlbalState;
  env: CommandEnv;
  /** The service being set, for Perlbal's messages that name it. */
  service: string;
}

const ok = (value: OptionValue): ValueResult<OptionValue> => ({ ok: true, value });
const fail = (message: string, hint?: string): ValueResult<OptionValue> => (hint === undefined ? { ok: false, message } : { ok: false, message, hint });

export const resolvePath = (env: CommandEnv, p: string): string => posix.resolve(env.cwd, p);

/** Parses `raw` for `spec`; file checks go through the injected fs. 'special' kinds are handled by the caller. */
export function parseOptionValue(spec: OptionSpec, raw: string, scope: ValueScope): ValueResult<OptionValue> {
  const key = spec.name;
  const { env } = scope;
  const t = spec.type;
  switch (t.kind) {
    case 'bool':
      return parseBool(key, raw);
    case 'int':
      return parseInt(key, raw, t.min !== undefined && t.max !== undefined ? { min: t.min, max: t.max, ...(t.message ? { message: t.message } : {}) } : undefined);
    case 'size':
      return parseSize(key, raw);
    case 'time':
      return parseTime(key, raw);
    case 'string':
      return ok(raw);
    case 'enum':
      return t.values.includes(raw) ? ok(raw) : fail(`Value of '${key}' must be one of: ${t.values.join(', ')}`, didYouMean(raw, t.values));
    case 'cookie_name':
      return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(raw)
        ? ok(raw)
        : fail(`Invalid cookie name '${raw}' for '${key}'`, 'a cookie name is letters, digits and !#$%&\'*+-.^_`|~ (no spaces, =, ; or quotes)');
    case 'list':
      return ok(raw.split(/[\s,]+/).filter(Boolean));
    case 'seconds_list':
      return parseSecondsList(key, raw);
    case 'cidr_list': {
      const specs = raw.split(/\s*,\s*/).filter(Boolean);
      if (specs.length === 0) return fail('Error defining trusted upstream proxies: None found');
      const bad = specs.find((s) => !isCidr(s));
      return bad === undefined ? ok(specs) : fail(`Error defining trusted upstream proxies: '${bad}' is not an address or CIDR`, 'e.g. 10.0.0.0/8, 192.168.1.5');
    }
    case 'udp_endpoints': {
      const list = raw.split(/\s*,\s*/).filter(Boolean);
      for (const ipa of list) {
        const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(ipa);
        if (!m || !isIpv4(m[1]!) || Number(m[2]) > 65535) return fail(`Invalid UDP endpoint: "${ipa}".  Must be of form a.b.c.d:port`);
      }
      return ok(list);
    }
    case 'ip_port': {
      const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(raw);
      return m && isIpv4(m[1]!) && Number(m[2]) <= 65535 ? ok(raw) : fail('Expecting IP:port of form a.b.c.d:port.');
    }
    case 'file_or_default':
      if (raw === spec.default) return ok(raw);
      return env.fs.kind(resolvePath(env, raw)) === 'file' ? ok(raw) : fail(`File '${raw}' not found for '${key}'`, `looked for ${resolvePath(env, raw)}`);
    case 'dir_or_none':
      return env.fs.kind(resolvePath(env, raw)) === 'dir' ? ok(raw) : fail(`Directory '${raw}' not found for '${key}'`);
    case 'dir_required': {
      const trimmed = raw.length > 1 ? raw.replace(/\/+$/, '') : raw;
      if (env.fs.kind(resolvePath(env, trimmed)) === 'dir') return ok(trimmed);
      const why = /^["']/.test(raw) ? 'remove the quotes: perlbal.conf has no quoting' : `${resolvePath(env, trimmed)} does not exist`;
      return key === 'docroot'
        ? fail(`Directory not found for service ${scope.service}`, why)
        : fail(`Directory (${raw}) not found for service ${scope.service} (${key})`);
    }
    case 'executable':
      return env.fs.isExecutable(resolvePath(env, raw)) ? ok(raw) : fail(`Server process (${raw}) not executable.`);
    case 'service_ref': {
      const name = raw.toLowerCase();
      if (scope.state.services.has(name)) return ok(name);
      return fail(`Service '${raw}' not found`, 'the service must be created before this line');
    }
    case 'log_target':
      if (raw === 'off' || raw === 'stdout' || raw.startsWith('/')) return ok(raw);
      return fail(`Expecting off, stdout or an absolute path for parameter '${key}'`);
    case 'check_path':
      return /^\/[\x21-\x7e]*$/.test(raw) ? ok(raw) : fail(`Expecting a request path starting with / for parameter '${key}'`, 'e.g. /health or /; no spaces');
    case 'status_list': {
      const list = parseStatusList(raw);
      return list === null ? fail(`Expecting HTTP statuses for parameter '${key}'`, 'a list of statuses and ranges, e.g. 200, 200-399 or 200,301-302') : ok(list);
    }
    case 'special':
      return fail(`internal: '${key}' needs its own handler`);
  }
}
