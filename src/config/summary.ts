// The short "what will run" summary `tsbal check` prints: services, pools, listeners, nodes, VIPs, timings.
import { stickySettings } from '../proxy/options.ts';
import type { HaDirConfig, Medium, PerlbalConfig, Resource, ServiceModel } from './model.ts';
import { formatHostPort } from './perlbal/values.ts';

export function formatMs(ms: number): string {
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`;
}

const pad = (s: string, n: number) => (s.length >= n ? `${s} ` : s.padEnd(n));

function serviceDetail(s: ServiceModel): string {
  const parts: string[] = [];
  if (s.role === 'reverse_proxy' && s.pool) parts.push(`pool ${s.pool}`);
  const sticky = s.role === 'reverse_proxy' ? stickySettings(s.options) : null;
  if (sticky !== null) parts.push(sticky.mode === 'source' ? 'sticky source' : `sticky ${sticky.mode} ${sticky.cookie}`);
  if (s.role === 'web_server' && typeof s.options.docroot === 'string') parts.push(`docroot ${s.options.docroot}`);
  if (s.vhosts.length > 0) parts.push(`vhosts ${s.vhosts.map((v) => `${v.pattern} -> ${v.service}`).join(', ')}`);
  if (s.vpaths.length > 0) parts.push(`vpaths ${s.vpaths.map((v) => `${v.regex} -> ${v.service}`).join(', ')}`);
  if (s.plugins.length > 0 && s.role !== 'selector') parts.push(`plugins ${s.plugins.join(', ')}`);
  if (s.options.enable_ssl === true) parts.push(typeof s.options.ssl_cert_dir === 'string' ? `TLS (SNI from ${s.options.ssl_cert_dir})` : 'TLS');
  // As `tsbal run` will: ALPN offers h2 on a TLS listener unless ssl_http2 is off.
  if (s.options.enable_ssl === true && s.options.ssl_http2 !== false) parts.push('HTTP/2');
  if (s.options.enable_ssl !== true && s.options.http2_cleartext === true) parts.push('HTTP/2 cleartext (h2c)');
  if (s.options.redirect_https === true) parts.push('redirects to HTTPS');
  return parts.join('; ');
}

export function summarizePerlbal(cfg: PerlbalConfig): string[] {
  const targets = new Set(cfg.services.flatMap((s) => [...s.vhosts, ...s.vpaths].map((r) => r.service)));
  const width = Math.max(12, ...cfg.services.map((s) => s.name.length + 2), ...cfg.pools.map((p) => p.name.length + 2));
  const lines = [`perlbal.conf ${cfg.file}${cfg.files.length > 1 ? ` (+${cfg.files.length - 1} included)` : ''}`];
  for (const s of cfg.services) {
    const where = s.listen ? `listen ${formatHostPort(s.listen)}` : targets.has(s.name) ? '(selector target)' : '(no listener)';
    const state = s.enabled ? '' : ' [disabled]';
    lines.push(`  service ${pad(s.name, width)}${pad(s.role ?? '(no role)', 14)}${pad(where, 24)}${serviceDetail(s)}${state}`.trimEnd());
  }
  for (const p of cfg.pools) {
    const nodes = p.nodes.map((n) => `${formatHostPort(n)}${n.weight === undefined || n.weight === 1 ? '' : ` weight=${n.weight}`}`).join(', ') || '(no nodes)';
    const https = p.options.backend_ssl === true ? ` over HTTPS${p.options.backend_ssl_verify === false ? ' (not verified)' : ''}` : '';
    lines.push(`  pool    ${pad(p.name, width)}${pad(p.balance_method, 14)}${nodes}${p.nodefile ? ` (from ${p.nodefile})` : ''}${https}`);
  }
  if (cfg.loadedPlugins.length > 0) lines.push(`  plugins ${cfg.loadedPlugins.join(', ')}`);
  return lines;
}

function medium(m: Medium): string {
  if (m.kind === 'bcast') return `bcast ${m.iface}`;
  if (m.kind === 'ucast') return `ucast ${m.iface} -> ${m.peer}`;
  return `mcast ${m.iface} ${m.group}:${m.port} ttl ${m.ttl}`;
}

function resource(r: Resource): string {
  if (r.kind === 'script') return [r.name, ...r.args].join(' ');
  const where = [r.cidr !== null ? `/${r.cidr}` : '', r.iface ? ` on ${r.iface}${r.label ? `:${r.label}` : ''}` : ''].join('');
  return `VIP ${r.ip}${where} (${r.agent})`;
}

export function summarizeHa(ha: HaDirConfig, localNode: string | null): string[] {
  const h = ha.hacf;
  const lines = [`cluster      ${ha.dir}`];
  const me = localNode !== null ? ` (this node: ${localNode})` : '';
  lines.push(`  nodes      ${h.nodes.join(', ')}${me}`);
  lines.push(`  media      ${h.media.map(medium).join(', ')}; udp port ${h.udpPort}`);
  lines.push(`  timing     keepalive ${formatMs(h.keepaliveMs)}, deadtime ${formatMs(h.deadtimeMs)}, warntime ${formatMs(h.warntimeMs)}, initdead ${formatMs(h.initdeadMs)}; auto_failback ${h.autoFailback}`);
  const key = ha.authkeys.keys.find((k) => k.index === ha.authkeys.activeIndex);
  lines.push(`  auth       key ${ha.authkeys.activeIndex}${key ? ` ${key.method}` : ''}`);
  for (const g of ha.haresources.groups) lines.push(`  resources  ${g.node}: ${g.resources.map(resource).join(', ')}`);
  if (ha.haresources.groups.length === 0) lines.push('  resources  (none)');
  if (h.pingNodes.length > 0) lines.push(`  ping       ${h.pingNodes.join(', ')}`);
  if (h.ignored.length > 0) lines.push(`  not used   ${h.ignored.map((i) => `${i.directive} (line ${i.loc.line})`).join(', ')}`);
  return lines;
}
