// FRR's frr.conf, read as far as an anycast node needs: does it announce exactly perlbal.conf's anycast_vip, to a
// BGP neighbour, with BFD? Pure: text in, diagnostics out (`file:line: message`). Not a full FRR parser: the commands
// that matter are found by their words, indented or not, as written by hand or by vtysh's `write memory`.
import type { ConfigDiagnostic } from './errors.ts';

interface PrefixEntry {
  action: 'permit' | 'deny';
  prefix: string;
  /** `le`/`ge`: the entry matches more than one prefix length. */
  range: boolean;
  line: number;
}

interface RouteMapEntry {
  action: 'permit' | 'deny';
  prefixLists: string[];
  line: number;
}

interface Neighbour {
  remoteAs: string | null;
  bfd: boolean;
  group: string | null;
  outPolicy: boolean;
  line: number;
}

interface Redistribute {
  family: 'ipv4' | 'ipv6';
  routeMap: string | null;
  line: number;
}

export interface FrrConf {
  prefixLists: Map<string, PrefixEntry[]>;
  routeMaps: Map<string, RouteMapEntry[]>;
  bgp: {
    asn: string;
    line: number;
    routerId: string | null;
    ebgpRequiresPolicy: boolean;
    neighbours: Map<string, Neighbour>;
    redistribute: Redistribute[];
  } | null;
}

export function parseFrrConf(text: string): FrrConf {
  const conf: FrrConf = { prefixLists: new Map(), routeMaps: new Map(), bgp: null };
  let block: 'none' | 'route-map' | 'bgp' = 'none';
  let family: 'ipv4' | 'ipv6' = 'ipv4';
  let routeMap: RouteMapEntry | null = null;
  const neighbour = (name: string, line: number): Neighbour => {
    const map = conf.bgp!.neighbours;
    let n = map.get(name);
    if (n === undefined) map.set(name, (n = { remoteAs: null, bfd: false, group: null, outPolicy: false, line }));
    return n;
  };
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    const indented = /^\s/.test(raw);
    const words = raw.trim().split(/\s+/);
    const w0 = words[0] ?? '';
    if (w0 === '' || w0.startsWith('!') || w0.startsWith('#')) return;
    // A command at column 0 leaves the block before it (vtysh also writes `exit`; hand-written files often do not).
    if (!indented) {
      block = 'none';
      if (w0 === 'exit' || w0 === 'end') return;
    }
    if ((w0 === 'ip' || w0 === 'ipv6') && words[1] === 'prefix-list' && words[2] !== undefined) {
      const rest = words.slice(3);
      if (rest[0] === 'seq') rest.splice(0, 2);
      const [action, prefix] = rest;
      if ((action === 'permit' || action === 'deny') && prefix !== undefined) {
        const list = conf.prefixLists.get(words[2]) ?? [];
        list.push({ action, prefix: prefix === 'any' ? (w0 === 'ip' ? '0.0.0.0/0' : '::/0') : prefix, range: rest.includes('le') || rest.includes('ge') || prefix === 'any', line });
        conf.prefixLists.set(words[2], list);
      }
      return;
    }
    if (w0 === 'route-map' && words[1] !== undefined && (words[2] === 'permit' || words[2] === 'deny')) {
      routeMap = { action: words[2], prefixLists: [], line };
      const list = conf.routeMaps.get(words[1]) ?? [];
      list.push(routeMap);
      conf.routeMaps.set(words[1], list);
      block = 'route-map';
      return;
    }
    if (block === 'route-map' && routeMap !== null && w0 === 'match' && words[2] === 'address' && words[3] === 'prefix-list' && words[4] !== undefined) {
      (routeMap as RouteMapEntry).prefixLists.push(words[4]);
      return;
    }
    if (w0 === 'router' && words[1] === 'bgp' && words[2] !== undefined && words.length === 3) {
      conf.bgp = { asn: words[2], line, routerId: null, ebgpRequiresPolicy: true, neighbours: new Map(), redistribute: [] };
      block = 'bgp';
      family = 'ipv4';
      return;
    }
    if (block !== 'bgp' || conf.bgp === null) return;
    if (w0 === 'address-family' && (words[1] === 'ipv4' || words[1] === 'ipv6')) family = words[1];
    else if (w0 === 'exit-address-family') family = 'ipv4';
    else if (w0 === 'bgp' && words[1] === 'router-id' && words[2] !== undefined) conf.bgp.routerId = words[2];
    else if (w0 === 'no' && words[1] === 'bgp' && words[2] === 'ebgp-requires-policy') conf.bgp.ebgpRequiresPolicy = false;
    else if (w0 === 'redistribute' && words[1] === 'connected') {
      const at = words.indexOf('route-map');
      conf.bgp.redistribute.push({ family, routeMap: at > 0 ? (words[at + 1] ?? null) : null, line });
    } else if (w0 === 'neighbor' && words[1] !== undefined && words[2] !== undefined) {
      const n = neighbour(words[1], line);
      if (words[2] === 'remote-as' && words[3] !== undefined) n.remoteAs = words[3];
      else if (words[2] === 'bfd') n.bfd = true;
      else if (words[2] === 'peer-group' && words[3] !== undefined) n.group = words[3];
      else if (words[2] === 'route-map' && words[4] === 'out') n.outPolicy = true;
    }
  });
  return conf;
}

/** A neighbour's setting, its own or its peer-group's. */
function effective<K extends 'remoteAs' | 'bfd' | 'outPolicy'>(conf: FrrConf, n: Neighbour, key: K): Neighbour[K] {
  const group = n.group === null ? undefined : conf.bgp?.neighbours.get(n.group);
  const own = n[key];
  return own === null || own === false ? (group?.[key] ?? own) : own;
}

/**
 * frr.conf against perlbal.conf's `anycast_vip` (`198.18.2.1/32` or an IPv6 /128): FRR must announce that prefix
 * and nothing else, to at least one BGP neighbour; BFD and a fixed router-id are warnings.
 */
export function checkFrrAgainstVip(text: string, file: string, vipPrefix: string): ConfigDiagnostic[] {
  const conf = parseFrrConf(text);
  const out: ConfigDiagnostic[] = [];
  const error = (line: number, message: string, hint?: string): void => void out.push({ file, line, severity: 'error', message, ...(hint ? { hint } : {}) });
  const warn = (line: number, message: string, hint?: string): void => void out.push({ file, line, severity: 'warning', message, ...(hint ? { hint } : {}) });
  const fam = vipPrefix.includes(':') ? 'ipv6' : 'ipv4';
  const bgp = conf.bgp;
  if (bgp === null) {
    error(0, `no router bgp: nothing announces anycast_vip ${vipPrefix} to the router`, 'tsbal setup --anycast writes this file; see docs/setup.md');
    return out;
  }
  // Peers are the neighbours with an address (a peer-group's name is not one).
  const peers = [...bgp.neighbours.entries()].filter(([name, n]) => /[.:]/.test(name) && effective(conf, n, 'remoteAs') !== null);
  if (peers.length === 0) error(bgp.line, `router bgp ${bgp.asn} has no neighbour with a remote-as: anycast_vip ${vipPrefix} is announced to nobody`);
  for (const [name, n] of peers) {
    const remote = effective(conf, n, 'remoteAs');
    const ebgp = remote === 'external' || (remote !== 'internal' && remote !== bgp.asn);
    if (ebgp && bgp.ebgpRequiresPolicy && !effective(conf, n, 'outPolicy')) {
      error(n.line, `neighbour ${name} (eBGP) gets nothing: FRR 8 sends no route over eBGP without an outbound policy`, 'add `no bgp ebgp-requires-policy` under router bgp');
    }
    if (!ebgp) {
      warn(n.line, `neighbour ${name} is iBGP (remote-as ${remote}, this node's own AS ${bgp.asn}): the router spreads over the nodes only with \`maximum-paths ibgp\`, not the eBGP setup that tsbal setup --anycast prints`, 'give the nodes an AS of their own (the same on every node), other than the router\'s');
    }
    if (!effective(conf, n, 'bfd')) {
      warn(n.line, `neighbour ${name} has no bfd: a crashed node stays announced until the BGP hold time (about 7 s at timers 3 9, 180 s by default)`, `neighbor ${name} bfd`);
    }
  }
  if (bgp.routerId === null) {
    warn(bgp.line, 'no bgp router-id: FRR takes the highest address, which can be the VIP; adding it then changes the router-id and resets every session', 'bgp router-id <this node\'s own address>');
  }
  const redistributes = bgp.redistribute.filter((r) => r.family === fam);
  if (redistributes.length === 0) {
    error(bgp.line, `no redistribute connected under address-family ${fam} unicast: anycast_vip ${vipPrefix} is never announced`);
    return out;
  }
  for (const r of redistributes) {
    if (r.routeMap === null) {
      error(r.line, 'redistribute connected without a route-map announces every connected route (this node\'s own subnets too), not only the VIP', `redistribute connected route-map <a route-map that permits only ${vipPrefix}>`);
      continue;
    }
    const entries = conf.routeMaps.get(r.routeMap);
    if (entries === undefined) {
      error(r.line, `route-map ${r.routeMap} is not defined: FRR announces nothing through it, so anycast_vip ${vipPrefix} is not announced`);
      continue;
    }
    let announcesVip = false;
    for (const e of entries.filter((x) => x.action === 'permit')) {
      if (e.prefixLists.length === 0) {
        error(e.line, `route-map ${r.routeMap} permits without matching a prefix-list: every connected route is announced, not only ${vipPrefix}`);
        continue;
      }
      for (const name of e.prefixLists) {
        const list = conf.prefixLists.get(name);
        if (list === undefined) {
          error(e.line, `prefix-list ${name} is not defined (route-map ${r.routeMap})`);
          continue;
        }
        for (const p of list.filter((x) => x.action === 'permit')) {
          if (p.prefix === vipPrefix && !p.range) announcesVip = true;
          else error(p.line, `prefix-list ${name} permits ${p.prefix}${p.range ? ' (a range)' : ''}: only anycast_vip ${vipPrefix} (perlbal.conf) may be announced`, `ip prefix-list ${name} seq 5 permit ${vipPrefix}`);
        }
      }
    }
    if (!announcesVip) error(r.line, `route-map ${r.routeMap} does not permit anycast_vip ${vipPrefix} (perlbal.conf): the VIP is never announced`);
  }
  return out;
}

/** FRR's daemons file: bgpd must run, and bfdd too when a neighbour uses BFD. */
export function checkFrrDaemons(text: string, file: string, needBfd: boolean): ConfigDiagnostic[] {
  const value = (key: string): { on: boolean; line: number } => {
    const lines = text.split('\n');
    const index = lines.findIndex((l) => new RegExp(`^\\s*${key}\\s*=`).test(l));
    return { on: index >= 0 && /=\s*"?yes"?\s*$/.test(lines[index]!), line: index + 1 };
  };
  const out: ConfigDiagnostic[] = [];
  const bgpd = value('bgpd');
  if (!bgpd.on) out.push({ file, line: bgpd.line, severity: 'error', message: 'bgpd is not on: FRR will not speak BGP, so nothing announces the anycast VIP', hint: 'bgpd=yes, then systemctl restart frr' });
  const bfdd = value('bfdd');
  if (needBfd && !bfdd.on) out.push({ file, line: bfdd.line, severity: 'error', message: 'bfdd is not on, but frr.conf uses bfd: the BFD sessions never come up', hint: 'bfdd=yes, then systemctl restart frr' });
  return out;
}

/** Whether any neighbour of frr.conf uses BFD (so the daemons file must run bfdd). */
export function usesBfd(text: string): boolean {
  return [...(parseFrrConf(text).bgp?.neighbours.values() ?? [])].some((n) => n.bfd);
}
