// Perlbal's nodefile format (Pool.pm, reference 3.4), plus tsbal's `weight=N`: per line, text after `#` dropped,
// the first `a.b.c.d[:port]` (or, tsbal, `[ipv6][:port]`) anywhere on the line, port 80 by default; lines without an address are ignored, as in
// Perlbal. Pure: text in, nodes and located problems out. The config loader and the live watcher
// (proxy/nodefiles.ts) both read files through this, so `tsbal check` and a running tsbal agree on what one means.
import type { PoolNode } from '../model.ts';
import { parseNode } from './values.ts';

/** HAProxy's range: 0 drains (no new requests), 256 is the most. */
export const MAX_WEIGHT = 256;

export interface NodefileProblem {
  /** 1-based line number in the file. */
  line: number;
  message: string;
}

export interface ParsedNodefile {
  nodes: PoolNode[];
  /** Lines that name a backend tsbal cannot use (bad address, port or weight). Perlbal skipped them silently. */
  problems: NodefileProblem[];
}

const ADDRESS = /(\[[^\]\s]*\]|\d+\.\d+\.\d+\.\d+)(?::(\d+))?/;
const WEIGHT = /\bweight\s*=\s*(\S*)/i;

/** `weight=N` as POOL ADD and nodefiles take it: an integer 0..256, or an error message. */
export function parseWeight(raw: string): number | string {
  if (!/^\d+$/.test(raw) || Number(raw) > MAX_WEIGHT) return `weight must be an integer from 0 to ${MAX_WEIGHT}, not '${raw}'`;
  return Number(raw);
}

export function parseNodefileText(text: string): ParsedNodefile {
  const nodes: PoolNode[] = [];
  const problems: NodefileProblem[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/#.*/, '');
    const m = ADDRESS.exec(line);
    if (m === null) continue;
    const node = parseNode(m[1]!, m[2]);
    if (node === null) {
      problems.push({ line: i + 1, message: `'${m[0]}' is not a valid ${m[1]!.startsWith('[') ? '[IPv6]' : 'IPv4'} address and port` });
      continue;
    }
    const w = WEIGHT.exec(line);
    if (w === null) {
      nodes.push(node);
      continue;
    }
    const weight = parseWeight(w[1]!);
    if (typeof weight === 'string') problems.push({ line: i + 1, message: weight });
    else nodes.push({ ...node, weight });
  }
  return { nodes, problems };
}
