// /etc/ha.d/haresources: one resource group per logical line, `NODE RESOURCE...`, `\` continues a line.
// A resource is SCRIPT[::ARG...]; a bare dotted quad (with optional /bits/iface/broadcast) means IPaddr::it.
import type { HaResources, Resource, ResourceGroup } from './model.ts';
import type { SourceLocation } from './errors.ts';
import { createDiagnostics, splitLines, throwIfErrors, warningsOf, type Diagnostics, type Parsed } from './diagnostics.ts';
import { isIpv4 } from './ipv4.ts';

const IP_AGENTS = ['IPaddr', 'IPaddr2'] as const;
type IpAgent = (typeof IP_AGENTS)[number];

interface LogicalLine {
  text: string;
  loc: SourceLocation;
}

function logicalLines(text: string, file: string): LogicalLine[] {
  const out: LogicalLine[] = [];
  let pending: LogicalLine | null = null;
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    let content = lines[i]!.replace(/#.*/, '').trim();
    const continues = content.endsWith('\\');
    if (continues) content = content.slice(0, -1).trim();
    if (pending) pending.text += ` ${content}`;
    else if (content !== '' || continues) pending = { text: content, loc: { file, line: i + 1 } };
    if (!continues && pending) {
      if (pending.text.trim() !== '') out.push(pending);
      pending = null;
    }
  }
  if (pending && pending.text.trim() !== '') out.push(pending);
  return out;
}

/**
 * `IP[/BITS[/IFACE[/BROADCAST]]]` or `IP/BITS/BROADCAST` (a third part starting with a digit is the broadcast);
 * the interface may carry IPaddr2's `:LABEL`.
 */
function parseIpSpec(agent: IpAgent, spec: string, raw: string, loc: SourceLocation, d: Diagnostics): Resource | null {
  const parts = spec.split('/');
  const [ip, bits, third, fourth, ...extra] = parts;
  const bad = (why: string, hint?: string): null => {
    d.error(loc, `${raw}: ${why}`, hint ?? 'IP[/BITS[/IFACE[/BROADCAST]]], e.g. IPaddr::198.18.0.99/24/eth0');
    return null;
  };
  if (extra.length > 0) return bad('too many / parts');
  if (!ip || !isIpv4(ip)) return bad(`'${ip ?? ''}' is not an IPv4 address`);
  let cidr: number | null = null;
  if (bits !== undefined && bits !== '') {
    if (!/^\d+$/.test(bits) || Number(bits) > 32) {
      return bad(`'${bits}' is not a prefix length (0 to 32)`, isIpv4(bits) ? `write the netmask as a prefix length, e.g. /24` : undefined);
    }
    cidr = Number(bits);
  }
  let ifaceSpec: string | null = null;
  let broadcast: string | null = null;
  if (third !== undefined && third !== '') {
    if (/^\d/.test(third)) {
      if (fourth !== undefined) return bad('a broadcast address must come last');
      broadcast = third;
    } else {
      ifaceSpec = third;
      if (fourth !== undefined && fourth !== '') broadcast = fourth;
    }
  }
  if (broadcast !== null && !isIpv4(broadcast)) return bad(`'${broadcast}' is not an IPv4 broadcast address`);
  let iface = ifaceSpec;
  let label: string | null = null;
  if (ifaceSpec !== null) {
    const colon = ifaceSpec.indexOf(':');
    if (colon >= 0) {
      iface = ifaceSpec.slice(0, colon);
      label = ifaceSpec.slice(colon + 1);
    }
    if (!iface || !/^[A-Za-z0-9_.@-]{1,15}$/.test(iface)) return bad(`'${ifaceSpec}' is not an interface name`);
    if (label !== null && !/^[A-Za-z0-9_.-]+$/.test(label)) return bad(`'${label}' is not an interface label`);
  }
  return { kind: 'ip', agent, ip, cidr, iface, label, broadcast, raw };
}

function parseResource(raw: string, loc: SourceLocation, d: Diagnostics): Resource | null {
  if (/^\d+\.\d+\.\d+\.\d+(\/|$)/.test(raw)) return parseIpSpec('IPaddr', raw, raw, loc, d);
  const [name, ...args] = raw.split('::');
  if (!name) {
    d.error(loc, `${raw}: missing resource name before ::`);
    return null;
  }
  const agent = IP_AGENTS.find((a) => a === name);
  if (agent) {
    if (args.length !== 1 || args[0] === '') {
      d.error(loc, `${raw}: ${agent} takes one argument, the address`, `${agent}::198.18.0.99/24/eth0`);
      return null;
    }
    return parseIpSpec(agent, args[0]!, raw, loc, d);
  }
  const wrongCase = IP_AGENTS.find((a) => a.toLowerCase() === name.toLowerCase());
  if (wrongCase) d.warn(loc, `${raw}: '${name}' is not ${wrongCase}; it will be run as a script of that name`, `write ${wrongCase}`);
  return { kind: 'script', name, args, raw };
}

export function readHaResources(text: string, file: string): Parsed<HaResources> {
  const d = createDiagnostics();
  const groups: ResourceGroup[] = [];
  const seenIps = new Map<string, number>();
  for (const { text: line, loc } of logicalLines(text, file)) {
    const [node, ...tokens] = line.split(/\s+/).filter(Boolean);
    if (!node) continue;
    if (tokens.length === 0) {
      d.error(loc, `resource group for node ${node.toLowerCase()} lists no resources`, 'NODE RESOURCE..., e.g. lb1 IPaddr::198.18.0.99/24/eth0 perlbal');
      continue;
    }
    const resources: Resource[] = [];
    for (const t of tokens) {
      const r = parseResource(t, loc, d);
      if (!r) continue;
      if (r.kind === 'ip') {
        const earlier = seenIps.get(r.ip);
        if (earlier !== undefined) d.error(loc, `${r.ip} is already a resource on line ${earlier}`, 'an address can belong to one group only');
        else seenIps.set(r.ip, loc.line);
      }
      resources.push(r);
    }
    groups.push({ node: node.toLowerCase(), key: tokens[0]!, resources, loc });
  }
  return { value: { file, groups, warnings: warningsOf(d.list) }, diagnostics: d.list };
}

/** Parses haresources text; throws a ConfigError listing every error. Node names are checked against ha.cf by loadHaDir. */
export function parseHaResources(text: string, file: string): HaResources {
  const { value, diagnostics } = readHaResources(text, file);
  throwIfErrors(diagnostics);
  return value;
}
