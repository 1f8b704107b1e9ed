// src/ has no import cycle: imports flow one way (in src/proxy: client → route → exchange → upstream), so each part
// can be read and tested without the ones above it. The cycle finder itself is pinned on small graphs first.
import { describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { findCycles, importGraphOf, importsOf, type ImportGraph } from './harness/import-graph.ts';

function graph(edges: Record<string, string[]>, typeOnly: Record<string, string[]> = {}): ImportGraph {
  const g: ImportGraph = new Map();
  for (const [from, tos] of Object.entries(edges)) g.set(from, tos.map((to) => ({ to, typeOnly: false })));
  for (const [from, tos] of Object.entries(typeOnly)) {
    const list = g.get(from) ?? [];
    for (const to of tos) list.push({ to, typeOnly: true });
    g.set(from, list);
  }
  return g;
}

describe('the cycle finder', () => {
  test('finds a three-module cycle and leaves the module hanging off it out', () => {
    const g = graph({ 'a.ts': ['b.ts'], 'b.ts': ['c.ts'], 'c.ts': ['a.ts', 'd.ts'], 'd.ts': [] });
    expect(findCycles(g, false)).toEqual([['a.ts', 'b.ts', 'c.ts']]);
  });

  test('finds a module importing itself, two separate cycles, and nothing in a DAG', () => {
    expect(findCycles(graph({ 'a.ts': ['a.ts'] }), false)).toEqual([['a.ts']]);
    const two = graph({ 'a.ts': ['b.ts'], 'b.ts': ['a.ts'], 'c.ts': ['d.ts'], 'd.ts': ['c.ts', 'a.ts'] });
    expect(findCycles(two, false).sort()).toEqual([['a.ts', 'b.ts'], ['c.ts', 'd.ts']]);
    expect(findCycles(graph({ 'a.ts': ['b.ts', 'c.ts'], 'b.ts': ['c.ts'], 'c.ts': [] }), false)).toEqual([]);
  });

  test('a cycle closed only by a type import counts only when type imports are asked for', () => {
    const g = graph({ 'a.ts': ['b.ts'], 'b.ts': [] }, { 'b.ts': ['a.ts'] });
    expect(findCycles(g, false)).toEqual([]);
    expect(findCycles(g, true)).toEqual([['a.ts', 'b.ts']]);
  });

  test('a long chain does not overflow the stack', () => {
    const edges: Record<string, string[]> = {};
    for (let i = 0; i < 5_000; i++) edges[`m${i}.ts`] = [`m${i + 1}.ts`];
    edges['m5000.ts'] = ['m0.ts'];
    expect(findCycles(graph(edges), false)[0]!.length).toBe(5_001);
  });

  test('reads value, type-only, re-export and dynamic imports; bare packages are not modules of src', () => {
    const src = [
      "import { a } from './a.ts';",
      "import type { B } from './b.ts';",
      "import { type C, type D } from './c.ts';",
      "import { type E, f } from './e.ts';",
      "export { g } from '../g.ts';",
      "import { connect } from 'node:net';",
      "const h = await import('./h.ts');",
    ].join('\n');
    expect(importsOf(src)).toEqual([
      { spec: './a.ts', typeOnly: false },
      { spec: './b.ts', typeOnly: true },
      { spec: './c.ts', typeOnly: true },
      { spec: './e.ts', typeOnly: false },
      { spec: '../g.ts', typeOnly: false },
      { spec: './h.ts', typeOnly: false },
    ]);
  });
});

describe('src/', () => {
  const g = importGraphOf(join(import.meta.dir, '..', 'src'));

  test('the graph is the real one (src/proxy/client.ts imports relay.ts)', () => {
    expect(g.get(join('proxy', 'client.ts'))!.map((e) => e.to)).toContain(join('proxy', 'relay.ts'));
  });

  test('has no import cycle at run time (imports that are not `import type`)', () => {
    expect(findCycles(g, false)).toEqual([]);
  });

  // Type-only cycles count too: records that point at each other (a client and its exchange, a service and its
  // engine, a backend connection and its service) are declared in src/proxy/records.ts, which imports no module
  // that could import it back.
  test('has no import cycle counting `import type` too', () => {
    expect(findCycles(g, true)).toEqual([]);
  });
});
