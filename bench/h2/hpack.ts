// bench/h2/hpack.ts: ns per header block for tsbal's HPACK codec (src/proxy/h2/hpack.ts), no sockets.
// Decoding: real request blocks captured from h2load (nghttp2 1.52) and from node:http2 (nghttp2) sending Chromium
// 131's navigation headers, first block (primes the dynamic table) and steady state (what every later request looks
// like). Encoding: an nginx response head, Huffman on and off.
//
//   node --experimental-strip-types bench/h2/hpack.ts [iterations]     (the runtime tsbal ships on)
//   npx bun bench/h2/hpack.ts [iterations]
import { decodeHeaderBlock, encodeHeaderBlock, encodedSizeBound, newHpackDecoder, newHpackEncoder } from '../../src/proxy/h2/hpack.ts';

const iterations = Number(process.argv[2] ?? 1_000_000);

const H2LOAD_FIRST = Buffer.from('8486418b089d5c0b8170dc65b65c77827a8f9c541c722954d3a5358980aed89707', 'hex');
/** :path /, :scheme http, :authority and user-agent from the dynamic table, :method GET. */
const H2LOAD_STEADY = Buffer.from('8486bf82be', 'hex');
const CHROMIUM_FIRST = Buffer.from(
  '82418cf1e3c2e5f23a6ba0ab9ec9bf878440874148b1275ad1ffa3fe6f4f61e935b4ff3f7de0fe42c87f9fa53f9d274c50a976c1d527f3f7de0fe44d' +
    '7f3f408b4148b1275ad1ad49e33505023f30408d4148b1275ad1ad5d034ca7b29f07224c696e7578224092b6b9ac1c8558d520a4b6c2ad617b5a54' +
    '251f01317aced07f66a281b0dae053fafc087ed4ce6aadf2a7979c89c6bfb521aeba0bc8b1e632586d975765c53facd8f7e8cff4a506ea5531149d' +
    '4ffda97a7b0f49580b215c0b817029b8728ec330db2eaecb9f53e5497ca589d34d1f43aeba0c41a4c7a98f33a69a3fdf9a68fa1d75d0620d263d4c' +
    '79a68fbed00177fe8d48e62b03ee697e8d48e62b1e0b1d7f46a4731581d754df5f2c7cfdf6800bbdf43aeba0c41a4c7a9841a6a8b22c5f249c754c' +
    '5fbef046cfdf6800bbbf408a4148b4a549275906497f83a8f517408a4148b4a549275a93c85f86a87dcd30d25f408a4148b4a549275ad416cf023f' +
    '31408a4148b4a549275a42a13f8690e4b692d49f50929bd9abfa5242cb40d25fa523b3e94f684c9f518b2d4b70ddf45abefb4005df4086aec31ec3' +
    '27d785b6007d286f',
  'hex',
);
/** 17 fields: all indexed but :path, a Huffman literal without indexing (/static/app.css). */
const CHROMIUM_STEADY = Buffer.from('82cb87048a61091a4c46075d6b9108cac9c8c7c6c5c4c3c2c1c0bfbe', 'hex');

const NGINX_HEAD = [
  ':status', '200', 'server', 'nginx/1.22.1', 'date', 'Mon, 07 Dec 2026 19:00:00 GMT', 'content-type', 'text/html',
  'content-length', '615', 'last-modified', 'Tue, 13 Jun 2023 15:08:10 GMT', 'etag', '"6488865a-267"',
  'accept-ranges', 'bytes',
];

function timeDecode(label: string, first: Buffer | null, block: Buffer): void {
  const d = newHpackDecoder();
  const out: string[] = [];
  if (first !== null && decodeHeaderBlock(d, first, 0, first.length, out, 65536) !== 0) throw new Error(`${label}: first block`);
  out.length = 0;
  if (decodeHeaderBlock(d, block, 0, block.length, out, 65536) !== 0) throw new Error(`${label}: block`);
  const fields = out.length / 2;
  let check = 0;
  const run = (n: number): bigint => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      out.length = 0;
      check += decodeHeaderBlock(d, block, 0, block.length, out, 65536) + out.length;
    }
    return process.hrtime.bigint() - t0;
  };
  run(Math.min(iterations, 100_000)); // warm-up (JIT)
  const ns = Number(run(iterations)) / iterations;
  report(label, `${fields} fields, ${block.length} octets`, ns, check);
}

function timeEncode(label: string, huffman: boolean): void {
  const e = newHpackEncoder({ huffman });
  const out = Buffer.alloc(encodedSizeBound(NGINX_HEAD));
  const firstLength = encodeHeaderBlock(e, NGINX_HEAD, out, 0);
  const steadyLength = encodeHeaderBlock(e, NGINX_HEAD, out, 0);
  let check = 0;
  const run = (n: number): bigint => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) check += encodeHeaderBlock(e, NGINX_HEAD, out, 0);
    return process.hrtime.bigint() - t0;
  };
  run(Math.min(iterations, 100_000));
  const ns = Number(run(iterations)) / iterations;
  report(label, `first ${firstLength} octets, then ${steadyLength}`, ns, check);
}

function report(label: string, what: string, ns: number, check: number): void {
  console.log(`${label.padEnd(34)} ${ns.toFixed(0).padStart(6)} ns/block  (${what}; check ${check % 10})`);
}

const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined' ? 'bun' : `node ${process.version}`;
console.log(`${runtime}, ${iterations} iterations each`);
timeDecode('decode h2load steady', H2LOAD_FIRST, H2LOAD_STEADY);
timeDecode('decode h2load first (inserting)', null, H2LOAD_FIRST);
timeDecode('decode chromium steady', CHROMIUM_FIRST, CHROMIUM_STEADY);
timeDecode('decode chromium first (inserting)', null, CHROMIUM_FIRST);
timeEncode('encode nginx head, huffman', true);
timeEncode('encode nginx head, no huffman', false);
