// perlbal.conf text for the proxies under comparison. The same text is fed to real Perlbal and to tsbal.
import { LOOPBACK } from './ports.ts';

/** The tutorial's options (Debian HA load balancer recipe). */
export const TUTORIAL_OPTIONS: Readonly<Record<string, string>> = {
  persist_client: 'on',
  persist_backend: 'on',
  verify_backend: 'on',
};

export type HeaderLine = { op: 'insert'; name: string; value: string } | { op: 'remove'; name: string };

export interface ReverseProxySpec {
  /** Backend ports on 127.0.0.1, in pool order. */
  backends: readonly number[];
  /** Service `SET` lines after role/listen/pool, in order (e.g. TUTORIAL_OPTIONS). */
  set?: Readonly<Record<string, string>>;
  /** Pool `SET` lines (e.g. balance_method). */
  poolSet?: Readonly<Record<string, string>>;
  headers?: readonly HeaderLine[];
  /** Adds a management service on its own port. */
  management?: boolean;
}

export interface ProxyPorts {
  listen: number;
  /** Present when the spec asked for a management service. */
  mgmt: number | null;
}

export function reverseProxyConf(spec: ReverseProxySpec, ports: ProxyPorts): string {
  const lines = ['CREATE POOL backends'];
  for (const [key, value] of Object.entries(spec.poolSet ?? {})) lines.push(`  SET ${key} = ${value}`);
  for (const port of spec.backends) lines.push(`  POOL backends ADD ${LOOPBACK}:${port}`);
  lines.push(
    '',
    'CREATE SERVICE balancer',
    `  SET listen = ${LOOPBACK}:${ports.listen}`,
    '  SET role = reverse_proxy',
    '  SET pool = backends',
  );
  for (const [key, value] of Object.entries(spec.set ?? {})) lines.push(`  SET ${key} = ${value}`);
  for (const h of spec.headers ?? []) {
    lines.push(h.op === 'insert' ? `HEADER balancer INSERT ${h.name}: ${h.value}` : `HEADER balancer REMOVE ${h.name}`);
  }
  lines.push('ENABLE balancer');
  if (ports.mgmt !== null) {
    lines.push('', 'CREATE SERVICE mgmt', '  SET role = management', `  SET listen = ${LOOPBACK}:${ports.mgmt}`, 'ENABLE mgmt');
  }
  return `${lines.join('\n')}\n`;
}
