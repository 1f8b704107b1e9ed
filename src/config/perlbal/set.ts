// SET on services and pools (Service.pm set, Pool.pm set), DEFAULT, and SET role's re-initialisation.
import type { PoolModel, Role, ServiceModel } from '../model.ts';
import { didYouMean } from '../suggest.ts';
import { allServiceOptions, appliesTo, BALANCE_METHODS, PERLBAL_POOL_KEYS, PLUGIN_SETTERS, poolOption, roleRestriction, serviceOption, TSBAL_POOL_OPTIONS, type OptionSpec } from './options.ts';
import { canonicalPlugin, setPlugins } from './plugins.ts';
import { consequence, err, OK, type CommandResult, type Exec } from './result.ts';
import { metaFor, newPool } from './state.ts';
import { parseOptionValue, resolvePath } from './typed.ts';
import { tryReadFile } from './fs.ts';
import { parseBool, parseListen, parseTime } from './values.ts';
import { parseNodefileText } from './nodefile.ts';
import { emptyRecord } from '../records.ts';

const BUILTIN_ROLES: readonly Role[] = ['reverse_proxy', 'web_server', 'management', 'selector', 'upload_tracker'];

function availableRoles(x: Exec): Role[] {
  return x.state.loadedPlugins.includes('EchoService') ? [...BUILTIN_ROLES, 'echo'] : [...BUILTIN_ROLES];
}

/** Names are stored lowercased; Perlbal matches values after `=` with their case, tsbal does not but says so. */
export function lookupName<T>(x: Exec, map: Map<string, T>, raw: string): T | undefined {
  const found = map.get(raw.toLowerCase());
  if (found !== undefined && raw !== raw.toLowerCase()) {
    x.warn(`'${raw}' matches '${raw.toLowerCase()}' only because tsbal compares names without case; Perlbal 1.80 would not find it`,
      `write ${raw.toLowerCase()}`);
  }
  return found;
}

/** Perlbal's init: every option valid for the new role gets its DEFAULT or table default, through the type check. */
function initRole(x: Exec, service: ServiceModel): CommandResult {
  const meta = metaFor(x.state, service.name);
  const reset = [...meta.explicit].filter(([key]) => {
    const spec = serviceOption(key, x.state.loadedPlugins);
    return spec !== undefined && spec.type.kind !== 'special' && appliesTo(spec, service.role);
  });
  if (reset.length > 0) {
    const list = reset.map(([key, loc]) => `${key} (line ${loc.line})`).join(', ');
    x.warn(`SET role resets ${list} to the default`, 'put SET role first in the service block (Perlbal behaves the same)');
  }
  meta.explicit.clear();
  const options: ServiceModel['options'] = emptyRecord();
  const problems: string[] = [];
  for (const spec of allServiceOptions(x.state.loadedPlugins)) {
    if (spec.type.kind === 'special' || !appliesTo(spec, service.role)) continue;
    const def = x.state.defaults.get(spec.name);
    const raw = def?.value ?? spec.default;
    if (raw === null) {
      options[spec.name] = null;
      continue;
    }
    const r = parseOptionValue(spec, raw, { state: x.state, env: x.env, service: service.name });
    if (r.ok) options[spec.name] = r.value;
    else if (def) problems.push(`DEFAULT ${spec.name} = ${def.value} (line ${def.loc.line}): ${r.message}`);
  }
  service.options = options;
  return problems.length > 0 ? err(problems.join('; ')) : OK;
}

function setRole(x: Exec, service: ServiceModel, raw: string): CommandResult {
  const roles = availableRoles(x);
  const meta = metaFor(x.state, service.name);
  const role = roles.find((r) => r === raw);
  if (!role) {
    meta.roleFailed = true;
    const hint = raw === 'echo' ? 'LOAD EchoService first' : didYouMean(raw, roles) ?? `roles are ${roles.join(', ')}`;
    return err(`Role not valid for service ${service.name}`, hint);
  }
  meta.roleFailed = false;
  service.role = role;
  if (role !== 'reverse_proxy') service.pool = null;
  return initRole(x, service);
}

function setPool(x: Exec, service: ServiceModel, raw: string): CommandResult {
  const pool = lookupName(x, x.state.pools, raw);
  if (!pool) {
    const hint = x.state.services.has(raw.toLowerCase()) ? `'${raw}' is a service, not a pool` : didYouMean(raw.toLowerCase(), x.state.pools.keys()) ?? 'CREATE POOL it before this line';
    return err(`Pool '${raw}' not found`, hint);
  }
  service.pool = pool.name;
  return OK;
}

/** Obsolete form: nodefile/balance_method on a service go to its pool, auto-creating `<svc>_pool` like Perlbal. */
function forwardToPool(x: Exec, service: ServiceModel, key: string, raw: string): CommandResult {
  let poolName = service.pool;
  if (poolName === null) {
    if (!x.state.vivifyPools) {
      return err(`Attempt to vivify pool ${service.name}_pool but one or more pools have already been created manually`, `set ${key} on a pool: CREATE POOL p, SET ${key} = ..., then SET pool = p on the service`);
    }
    poolName = `${service.name}_pool`;
    if (!x.state.pools.has(poolName)) x.state.pools.set(poolName, newPool(poolName, x.c.loc));
    service.pool = poolName;
  }
  x.warn(`'${key}' set on service ${service.name} goes to pool ${poolName}; this form is obsolete`, `CREATE POOL ${poolName} and set ${key} there`);
  return setPoolKey(x, x.state.pools.get(poolName)!, key, raw);
}

export function setServiceKey(x: Exec, service: ServiceModel, key: string, raw: string): CommandResult {
  if (key === 'nodefile' || key === 'balance_method') return forwardToPool(x, service, key, raw);
  const meta = metaFor(x.state, service.name);
  const spec = serviceOption(key, x.state.loadedPlugins);
  if (spec) {
    if (!appliesTo(spec, service.role)) {
      if (meta.roleFailed) return consequence(roleRestriction(spec));
      return err(roleRestriction(spec), service.role === null ? 'put SET role = ... before this line' : `${service.name} is a ${service.role} service`);
    }
    const r = setTyped(x, service, spec, raw);
    if (r.kind === 'error') meta.failedKeys.add(key);
    else meta.failedKeys.delete(key);
    if (r.kind === 'ok') {
      const keys = key === 'persist_client_timeout' ? ['persist_client_idle_timeout', 'idle_timeout'] : [key];
      for (const k of keys) meta.explicit.set(k, x.c.loc);
    }
    return r;
  }
  if (key === 'plugins') return setPlugins(x, service, raw);
  const extra = /^extra\.(.+)$/.exec(key);
  if (extra) {
    service.extra[extra[1]!] = raw;
    return OK;
  }
  const pluginKey = /^(.+)\.(.+)$/.exec(key);
  if (pluginKey) {
    const canonical = canonicalPlugin(pluginKey[1]!);
    const setter = pluginKey[2]!;
    if (canonical && PLUGIN_SETTERS[canonical]?.includes(setter)) {
      if (!service.plugins.includes(canonical.toLowerCase())) {
        return err(`Unknown service parameter '${key}'`, `register the plugin first: SET plugins = ${canonical.toLowerCase()}`);
      }
      if (setter === 'use_observed_ip') {
        // Perlbal stores the raw value and tests Perl truth, so `off` turns it on there; tsbal reads a boolean.
        const b = parseBool(key, raw);
        if (!b.ok) return err(b.message, b.hint);
        if (!b.value && raw !== '0') x.warn(`${key} = ${raw} turns use_observed_ip off in tsbal; Perlbal reads any value but 0 as on`, 'write 0 for the same meaning in both');
      }
      if (setter.endsWith('_pattern') && !['undef', 'none', 'null'].includes(raw)) {
        try {
          new RegExp(raw);
        } catch (e) {
          return err('Invalid regular expression', `${raw}: ${(e as Error).message}`);
        }
      }
      service.extra[`${canonical.toLowerCase()}.${setter}`] = raw;
      return OK;
    }
  }
  const names = [...allServiceOptions(x.state.loadedPlugins).map((o) => o.name), 'plugins'];
  const hint = PERLBAL_POOL_KEYS.includes(key) || poolOption(key) ? `${key} is a pool parameter` : didYouMean(key, names);
  return err(`Unknown service parameter '${key}'`, hint);
}

function setTyped(x: Exec, service: ServiceModel, spec: OptionSpec, raw: string): CommandResult {
  switch (spec.name) {
    case 'role':
      return setRole(x, service, raw);
    case 'listen': {
      const r = parseListen(raw);
      if (!r.ok) return err(r.message, r.hint);
      service.listen = r.value;
      return OK;
    }
    case 'pool':
      return setPool(x, service, raw);
    case 'persist_client_timeout': {
      const r = parseTime(spec.name, raw);
      if (!r.ok) return err(r.message, r.hint);
      service.options.persist_client_idle_timeout = r.value;
      service.options.idle_timeout = r.value;
      return OK;
    }
  }
  const r = parseOptionValue(spec, raw, { state: x.state, env: x.env, service: service.name });
  if (!r.ok) return err(r.message, r.hint);
  service.options[spec.name] = r.value;
  return OK;
}

/** Perlbal's nodefile reader (nodefile.ts), nodes only. */
export function parseNodefile(text: string): PoolModel['nodes'] {
  return parseNodefileText(text).nodes;
}

function setNodefile(x: Exec, pool: PoolModel, raw: string): CommandResult {
  if (/^(?:none|undef|null|""|'')$/.test(raw)) {
    pool.nodefile = null;
    return OK;
  }
  const path = resolvePath(x.env, raw);
  if (x.env.fs.kind(path) === null) return err('File not found', `nodefile ${path} does not exist`);
  const read = tryReadFile(x.env.fs, path);
  if ('code' in read) return err(`Cannot read nodefile ${path}: ${read.code}`);
  if (!raw.startsWith('/')) x.warn(`nodefile ${raw} is relative: it is read from ${path} (the working directory)`, 'use an absolute path');
  const parsed = parseNodefileText(read.text);
  const bad = parsed.problems[0];
  if (bad !== undefined) return err(`nodefile ${path}:${bad.line}: ${bad.message}`, parsed.problems.length > 1 ? `and ${parsed.problems.length - 1} more line(s)` : undefined);
  pool.nodefile = path;
  pool.nodes = parsed.nodes;
  if (pool.nodes.length === 0) x.warn(`nodefile ${path} lists no backends`);
  return OK;
}

export function setPoolKey(x: Exec, pool: PoolModel, key: string, raw: string): CommandResult {
  if (key === 'nodefile') return setNodefile(x, pool, raw);
  if (key === 'balance_method') {
    const method = BALANCE_METHODS.find((m) => m === raw);
    if (!method) {
      const hint = /^['"].*['"]$/.test(raw) ? 'remove the quotes' : `methods are ${BALANCE_METHODS.join(', ')} (Perlbal has only random)`;
      return err('Unknown balance method', hint);
    }
    pool.balance_method = method;
    return OK;
  }
  const spec = poolOption(key);
  if (spec) {
    const r = parseOptionValue(spec, raw, { state: x.state, env: x.env, service: pool.name });
    if (!r.ok) return err(r.message, r.hint);
    pool.options[key] = r.value;
    return OK;
  }
  if (serviceOption(key, x.state.loadedPlugins) || key === 'plugins') {
    return err(`'${key}' is a service parameter, but the current object is pool '${pool.name}'`,
      `CREATE POOL switches the context to the pool; write SET <service>.${key} = ... or USE <service> first`);
  }
  const keys = [...PERLBAL_POOL_KEYS, ...TSBAL_POOL_OPTIONS.map((o) => o.name)];
  return err(`Unknown pool parameter '${key}'`, didYouMean(key, keys) ?? `pools take ${keys.join(', ')}`);
}

/** `DEFAULT key = value`: remembered for services whose role is set later. */
export function setDefault(x: Exec, key: string, raw: string): CommandResult {
  const spec = serviceOption(key, x.state.loadedPlugins);
  if (!spec) {
    const names = allServiceOptions(x.state.loadedPlugins).filter((o) => o.type.kind !== 'special').map((o) => o.name);
    x.warn(`DEFAULT ${key} has no effect: no such service option`, didYouMean(key, names));
  } else if (spec.type.kind === 'special') {
    x.warn(`DEFAULT ${key} is ignored by tsbal`, `set ${key} on each service`);
  }
  x.state.defaults.set(key, { value: raw, loc: x.c.loc });
  return OK;
}
