// bench/tls/split: a callgrind dump's self cost (instructions) split by where it ran: OpenSSL, V8's builtins and
// JIT code, V8's compiler, V8's GC, Node's C++ and libuv, libc. For a tsbal dump under Node, whose OpenSSL is
// linked into the node binary: symbols of the node binary outside v8::/node::/uv_ are counted as OpenSSL.
// callgrind_annotate (3.19) mixes inclusive costs into its list, so this reads the dump format itself: a cost line
// belongs to the current fn= as self cost, except the one after a calls= line (the callee's inclusive cost).
//
//   npx bun bench/tls/split.ts callgrind.out.N REQUESTS [TOP]
import fs from 'node:fs';

const [file, requestsArg, topArg] = process.argv.slice(2);
if (file === undefined || requestsArg === undefined) throw new Error('usage: split.ts DUMP REQUESTS [TOP]');
const requests = Number(requestsArg);

const fnNames = new Map<string, string>();
const obNames = new Map<string, string>();
const selfCost = new Map<string, number>();
const objectOf = new Map<string, string>();
let fn: string | null = null;
let ob = '';
let afterCalls = false;
const named = (map: Map<string, string>, m: RegExpExecArray): string => {
  if (m[2] !== undefined) map.set(m[1]!, m[2]);
  return map.get(m[1]!) ?? m[1]!;
};
for (const line of fs.readFileSync(file, 'latin1').split('\n')) {
  if (line === '') continue;
  let m: RegExpExecArray | null;
  if ((m = /^fn=\((\d+)\)(?: (.*))?$/.exec(line))) {
    fn = named(fnNames, m);
    objectOf.set(fn, ob);
  } else if ((m = /^ob=\((\d+)\)(?: (.*))?$/.exec(line))) ob = named(obNames, m);
  else if ((m = /^cfn=\((\d+)\)(?: (.*))?$/.exec(line))) named(fnNames, m);
  else if ((m = /^cob=\((\d+)\)(?: (.*))?$/.exec(line))) named(obNames, m);
  else if (line.startsWith('calls=')) afterCalls = true;
  else if (/^[\d+\-*]/.test(line)) {
    if (afterCalls) {
      afterCalls = false;
      continue;
    }
    const cost = Number(line.split(' ')[1]);
    if (fn !== null && Number.isFinite(cost)) selfCost.set(fn, (selfCost.get(fn) ?? 0) + cost);
  }
}

function where(name: string, object: string): string {
  if (/libc\.so|ld-linux/.test(object)) return 'libc (malloc, memset, ...)';
  // C++ names may start with their return type (`void v8::internal::...`): match the namespace anywhere.
  if (/\bv8::internal::(compiler|maglev|baseline)::|^absl::/.test(name)) return 'V8 compiler (JIT warm-up)';
  if (/\bv8::internal::\S*(Heap|Scaveng|Mark|Sweep|Evacuat|Space|GC)|\bheap::base::|\bcppgc::/.test(name)) return 'V8 GC';
  if (/^Builtins_|\bv8::/.test(name)) return 'V8 builtins and runtime';
  if (object === '???' || /^0x[0-9a-f]+$/.test(name)) return 'JIT code (JS)';
  if (/\bnode::|^uv_|^uv__/.test(name)) return 'Node C++ and libuv';
  if (/\/node$|tsbal/.test(object)) return 'OpenSSL (in the node binary)';
  return `other (${object.split('/').pop()})`;
}

let total = 0;
const byWhere = new Map<string, number>();
for (const [name, cost] of selfCost) {
  total += cost;
  const w = where(name, objectOf.get(name) ?? '');
  byWhere.set(w, (byWhere.get(w) ?? 0) + cost);
}
const per = (n: number): string => Math.round(n / requests).toLocaleString('en-US');
console.log(`${per(total)} instructions per request (${requests} requests)`);
console.log('');
console.log('| where | instr/req | share |');
console.log('|---|---|---|');
for (const [w, cost] of [...byWhere].sort((a, b) => b[1] - a[1])) console.log(`| ${w} | ${per(cost)} | ${((100 * cost) / total).toFixed(1)} % |`);
console.log('');
for (const [name, cost] of [...selfCost].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 15))) {
  console.log(`${per(cost).padStart(10)}  ${name.slice(0, 100)}`);
}
