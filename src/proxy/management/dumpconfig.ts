// `dumpconfig`: the running config as config lines (Perlbal.pm MANAGE_dumpconfig, Service.pm / Pool.pm dumpconfig,
// the plugins' dumpconfig). Pools, then services, each followed by a blank line; in each service `role`, `listen`,
// `pool`, then every other option whose value is not the default, sorted, bools as `on`, then the plugins' lines,
// then ENABLE or DISABLE. tsbal keeps creation order where Perlbal prints hash order, and also prints what Perlbal
// leaves out but a replay needs (LOAD, SERVER, SET plugins, HEADER, REDIRECT), so the output can be fed back.
import type { OptionValue, PerlbalConfig, ServiceModel } from '../../config/model.ts';
import { allServiceOptions, appliesTo, PLUGIN_SETTERS, type OptionSpec } from '../../config/perlbal/options.ts';
import { canonicalPlugin } from '../../config/perlbal/plugins.ts';
import { formatHostPort, parseBool, parseInt, parseSecondsList, parseSize, parseTime } from '../../config/perlbal/values.ts';

/** The option's default as the model holds it, or undefined when it cannot be told without the file system. */
function defaultValue(spec: OptionSpec): OptionValue | undefined {
  const raw = spec.default;
  if (raw === null) return null;
  const t = spec.type;
  const r =
    t.kind === 'bool' ? parseBool(spec.name, raw)
    : t.kind === 'int' ? parseInt(spec.name, raw)
    : t.kind === 'size' ? parseSize(spec.name, raw)
    : t.kind === 'time' ? parseTime(spec.name, raw)
    : t.kind === 'seconds_list' ? parseSecondsList(spec.name, raw)
    : t.kind === 'list' ? { ok: true as const, value: raw.split(/[\s,]+/).filter(Boolean) }
    : { ok: true as const, value: raw };
  return r.ok ? r.value : undefined;
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? String(ms / 1000) : `${ms}ms`;
}

/** A typed value written back as a SET would take it. */
function formatValue(spec: OptionSpec, v: OptionValue): string {
  if (typeof v === 'boolean') return v ? 'on' : '0';
  if (spec.type.kind === 'time' && typeof v === 'number') return formatSeconds(v);
  if (spec.type.kind === 'seconds_list' && Array.isArray(v)) return v.map((x) => String(Number(x) / 1000)).join(',');
  if (Array.isArray(v)) return v.join(', ');
  return String(v);
}

const same = (a: OptionValue | undefined, b: OptionValue): boolean => JSON.stringify(a) === JSON.stringify(b);

function serviceLines(config: PerlbalConfig, s: ServiceModel): string[] {
  const out: string[] = [];
  if (s.role !== null) out.push(`SET role = ${s.role}`);
  if (s.listen !== null) out.push(`SET listen = ${formatHostPort(s.listen)}`);
  if (s.pool !== null) out.push(`SET pool = ${s.pool}`);
  const loaded = config.loadedPlugins.map((p) => canonicalPlugin(p) ?? p);
  const specs = allServiceOptions(loaded)
    .filter((o) => o.type.kind !== 'special' && appliesTo(o, s.role))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const spec of specs) {
    const v = s.options[spec.name];
    if (v === undefined || v === null || same(defaultValue(spec), v)) continue;
    // An empty list stands for an empty default ('' in Perlbal's table).
    if (Array.isArray(v) && v.length === 0 && (spec.default ?? '') === '') continue;
    out.push(`SET ${spec.name} = ${formatValue(spec, v)}`);
  }
  if (s.plugins.length > 0) out.push(`SET plugins = ${s.plugins.join(', ')}`);
  for (const [k, v] of Object.entries(s.extra)) {
    const plugin = /^(\w+)\./.exec(k)?.[1];
    const isSetter = plugin !== undefined && (PLUGIN_SETTERS[canonicalPlugin(plugin) ?? ''] ?? []).some((x) => k === `${plugin}.${x}`);
    out.push(isSetter ? `SET ${s.name}.${k} = ${v}` : `SET extra.${k} = ${v}`);
  }
  for (const h of s.headers) out.push(`HEADER ${s.name} ${h.op.toUpperCase()} ${h.name}${h.value === undefined ? '' : `: ${h.value}`}`);
  for (const v of s.vhosts) out.push(`VHOST ${v.pattern} = ${v.service}`);
  for (const v of s.vpaths) out.push(`VPATH ${v.regex} = ${v.service}`);
  if (s.plugins.includes('accesscontrol')) {
    const access = Object.hasOwn(config.access, s.name) ? config.access[s.name] : undefined;
    for (const r of access?.rules ?? []) out.push(`ACCESS ${r.action.toUpperCase()} ${r.kind.toUpperCase()} ${r.value}`);
    out.push(`ACCESS POLICY ${(access?.policy ?? 'allow').toUpperCase()}`);
  }
  const redirects = Object.hasOwn(config.redirects, s.name) ? config.redirects[s.name]! : [];
  for (const r of redirects) out.push(`REDIRECT HOST ${r.from} ${r.to}`);
  return out;
}

/** The lines of `dumpconfig`, without its closing `OK`. */
export function dumpConfig(config: PerlbalConfig): string[] {
  const out: string[] = [];
  for (const p of config.loadedPlugins) out.push(`LOAD ${canonicalPlugin(p) ?? p}`);
  for (const [k, v] of Object.entries(config.server)) out.push(`SERVER ${k} = ${v}`);
  if (out.length > 0) out.push('');
  for (const p of config.pools) {
    out.push(`CREATE POOL ${p.name}`);
    if (p.nodefile !== null) out.push(`  SET nodefile = ${p.nodefile}`);
    else for (const n of p.nodes) out.push(`  POOL ADD ${p.name} ${formatHostPort(n)}`);
    if (p.balance_method !== 'random') out.push(`  SET balance_method = ${p.balance_method}`);
    for (const [k, v] of Object.entries(p.options)) if (v !== null) out.push(`  SET ${k} = ${Array.isArray(v) ? v.join(', ') : String(v)}`);
    out.push('');
  }
  for (const s of config.services) {
    out.push(`CREATE SERVICE ${s.name}`);
    for (const line of serviceLines(config, s)) out.push(`  ${line}`);
    out.push(`${s.enabled ? 'ENABLE' : 'DISABLE'} ${s.name}`);
    out.push('');
  }
  return out;
}
