// The import graph of src/ and the cycles in it: pure helpers for test/import-cycles.test.ts.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

export interface ImportEdge {
  to: string;
  /** `import type` (or every name marked `type`): erased at run time. */
  typeOnly: boolean;
}

export type ImportGraph = Map<string, ImportEdge[]>;

const IMPORT_RE = /^\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"]([^'"]+)['"]/gm;
const DYNAMIC_RE = /import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The relative imports of one module's source (bare package imports are not part of the graph). */
export function importsOf(source: string): { spec: string; typeOnly: boolean }[] {
  const out: { spec: string; typeOnly: boolean }[] = [];
  for (const m of source.matchAll(IMPORT_RE)) {
    const spec = m[4]!;
    if (!spec.startsWith('.')) continue;
    let typeOnly = m[2] !== undefined;
    const names = m[3]!.trim();
    if (!typeOnly && names.startsWith('{') && names.endsWith('}')) {
      const parts = names.slice(1, -1).split(',').map((p) => p.trim()).filter((p) => p !== '');
      typeOnly = parts.length > 0 && parts.every((p) => p.startsWith('type '));
    }
    out.push({ spec, typeOnly });
  }
  for (const m of source.matchAll(DYNAMIC_RE)) {
    if (m[1]!.startsWith('.')) out.push({ spec: m[1]!, typeOnly: false });
  }
  return out;
}

function listTs(dir: string, acc: string[]): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) listTs(p, acc);
    else if (name.endsWith('.ts')) acc.push(p);
  }
  return acc;
}

/** Every .ts file under `root` with its relative imports, as paths relative to `root`. */
export function importGraphOf(root: string): ImportGraph {
  const g: ImportGraph = new Map();
  for (const file of listTs(root, [])) {
    const edges = importsOf(readFileSync(file, 'utf8')).map(({ spec, typeOnly }) => ({
      to: relative(root, resolve(dirname(file), spec)),
      typeOnly,
    }));
    g.set(relative(root, file), edges);
  }
  return g;
}

/**
 * The cycles of `graph` as its strongly connected components of more than one module (or a module importing
 * itself), each sorted; Tarjan's algorithm, iterative so a deep graph cannot overflow the stack.
 */
export function findCycles(graph: ImportGraph, includeTypeOnly: boolean): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  let next = 0;
  const succ = (v: string): string[] =>
    (graph.get(v) ?? []).filter((e) => (includeTypeOnly || !e.typeOnly) && graph.has(e.to)).map((e) => e.to);
  for (const root of [...graph.keys()].sort()) {
    if (index.has(root)) continue;
    const work: { v: string; out: string[]; i: number }[] = [];
    const enter = (v: string): void => {
      index.set(v, next);
      low.set(v, next);
      next++;
      stack.push(v);
      onStack.add(v);
      work.push({ v, out: succ(v), i: 0 });
    };
    enter(root);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      if (top.i < top.out.length) {
        const w = top.out[top.i++]!;
        if (!index.has(w)) enter(w);
        else if (onStack.has(w)) low.set(top.v, Math.min(low.get(top.v)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]!.v;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.v)!));
      }
      if (low.get(top.v) === index.get(top.v)) {
        const comp: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          comp.push(w);
        } while (w !== top.v);
        const selfLoop = succ(top.v).includes(top.v);
        if (comp.length > 1 || selfLoop) cycles.push(comp.sort());
      }
    }
  }
  return cycles;
}
