import { describe, expect, test } from 'bun:test';
import { composeRules } from '../../src/proxy/route.ts';
import { rewrittenRequestHead, type HeaderRules } from '../../src/proxy/http/forward.ts';
import { parseRequestHead } from '../../src/proxy/http/request.ts';

const rules = (remove: string[], insert: Array<[string, string]>): HeaderRules => ({
  remove: new Set(remove),
  insert: insert.map(([name, value]) => ({ name, lower: name.toLowerCase(), value })),
});
const limits = { maxHeaderSize: 65536, maxHeaderCount: 100, maxUrlLength: 8192 };

function rewrite(head: string, r: HeaderRules): string {
  const buf = Buffer.from(head, 'latin1');
  const req = parseRequestHead(buf, 0, buf.length - 4, limits);
  if (req.kind === 'error') throw new Error(req.reason);
  return rewrittenRequestHead(req, r).toString('latin1');
}

describe("selectors' HEADER rules", () => {
  test('are applied to the request head before forwarding: removals, then inserts that set in place or append', () => {
    const head = 'GET /x?y HTTP/1.1\r\nHost: a\r\nX-Drop: 1\r\nX-Set: old\r\nX-Drop: 2\r\n\r\n';
    expect(rewrite(head, rules(['x-drop'], [['X-Set', 'new'], ['X-Add', 'v']]))).toBe('GET /x?y HTTP/1.1\r\nHost: a\r\nX-Set: new\r\nX-Add: v\r\n\r\n');
  });

  test('never touch the framing fields (the body is read by the client framing)', () => {
    const head = 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n';
    expect(rewrite(head, rules(['content-length'], [['Transfer-Encoding', 'chunked']]))).toBe(head);
  });

  test('two rule sets composed act as one applied after the other', () => {
    const head = 'GET / HTTP/1.1\r\nHost: h\r\nA: x\r\nB: x\r\nE: x\r\n\r\n';
    const pairs: Array<[HeaderRules, HeaderRules]> = [
      [rules(['a'], [['B', '1'], ['C', '1']]), rules(['b'], [['C', '2'], ['D', '2']])],
      [rules([], [['C', '1']]), rules([], [['D', '2'], ['C', '2']])],
      [rules(['e'], [['A', '1']]), rules(['a'], [['E', '2']])],
    ];
    for (const [first, then] of pairs) {
      expect(rewrite(head, composeRules(first, then)!)).toBe(rewrite(rewrite(head, first), then));
    }
    const [first, then] = pairs[0]!;
    expect(composeRules(null, then)).toBe(then);
    expect(composeRules(first, null)).toBe(first);
  });
});
