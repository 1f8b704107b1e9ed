// web_server writes, differentially: PUT (sized, zero-byte, chunked with Expect: 100-continue, Content-MD5,
// min_put_directory, max_put_size) and DELETE, the same request bytes to real Perlbal 1.80 and to tsbal, each with
// a docroot of its own built the same way. Compared: every response (status, fields with Date and Server masked,
// body) and the docroot's files afterwards.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOOPBACK } from '../harness/ports.ts';
import { transcript } from '../harness/rawclient.ts';
import { type MultiRig, type ProxyKind, startMultiRig, TSBAL_RUNS } from './diffkit.ts';

const KINDS: ProxyKind[] = TSBAL_RUNS ? ['perlbal', 'tsbal'] : ['perlbal'];
const docroots = new Map<ProxyKind, string>();
const rigs = new Map<ProxyKind, MultiRig>();

function conf(docroot: string) {
  return ([open, minDir, readOnly]: number[]): string => `CREATE SERVICE open
  SET role = web_server
  SET listen = ${LOOPBACK}:${open}
  SET docroot = ${docroot}
  SET persist_client = on
  SET enable_put = on
  SET enable_delete = on
  SET max_put_size = 100
ENABLE open
CREATE SERVICE mindir
  SET role = web_server
  SET listen = ${LOOPBACK}:${minDir}
  SET docroot = ${docroot}
  SET enable_put = on
  SET enable_md5 = off
  SET min_put_directory = 1
ENABLE mindir
CREATE SERVICE readonly
  SET role = web_server
  SET listen = ${LOOPBACK}:${readOnly}
  SET docroot = ${docroot}
ENABLE readonly
`;
}

beforeAll(async () => {
  for (const kind of KINDS) {
    const root = mkdtempSync(join(tmpdir(), `tsbal-ws-writes-${kind}-`));
    mkdirSync(join(root, 'up'));
    mkdirSync(join(root, 'adir'));
    writeFileSync(join(root, 'old.txt'), 'old\n');
    docroots.set(kind, root);
  }
  const started = await Promise.all(KINDS.map((k) => startMultiRig(k, 3, conf(docroots.get(k)!), [])));
  for (const rig of started) rigs.set(rig.kind, rig);
}, 30_000);

afterAll(async () => {
  await Promise.all([...rigs.values()].map((r) => r.stop()));
  for (const root of docroots.values()) rmSync(root, { recursive: true, force: true });
});

/** Every file under `root` with its content, and every directory, sorted. */
function tree(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, rel)).sort()) {
    const path = rel === '' ? name : `${rel}/${name}`;
    if (statSync(join(root, path)).isDirectory()) out.push(`${path}/`, ...tree(root, path));
    else out.push(`${path} = ${JSON.stringify(readFileSync(join(root, path), 'latin1'))}`);
  }
  return out;
}

function observe(kind: ProxyKind, service: number, request: string, reads: number): Promise<string[]> {
  return transcript(rigs.get(kind)!.ports[service]!, request, Array.from({ length: reads }, () => undefined));
}

const OPEN = 0;
const MINDIR = 1;
const READONLY = 2;
const md5 = (s: string): string => createHash('md5').update(s).digest('base64');
const put = (path: string, body: string, extra = ''): string =>
  `PUT ${path} HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

/** [name, service, request bytes, responses to read] in order: each case sees the docroot the last one left. */
const CASES: Array<[string, number, string, number]> = [
  ['PUT a new file: 200, written; then GET it on the same connection', OPEN, `${put('/new.txt', 'hello')}GET /new.txt HTTP/1.0\r\n\r\n`, 2],
  ['PUT over an existing file replaces it', OPEN, put('/old.txt', 'replaced'), 1],
  ['zero-byte PUT: an empty file', OPEN, put('/empty.txt', ''), 1],
  ['PUT without Content-Length is a zero-byte PUT', OPEN, 'PUT /nolength.txt HTTP/1.0\r\n\r\n', 1],
  ['PUT makes the missing directories below the docroot', OPEN, put('/a/b/c.txt', 'deep'), 1],
  ['Content-MD5 that matches: 201', OPEN, put('/md5.txt', 'checked', `Content-MD5: ${md5('checked')}\r\n`), 1],
  ['Content-MD5 that does not match: 400 with both digests, nothing written', OPEN, put('/bad-md5.txt', 'checked', `Content-MD5: ${md5('other')}\r\n`), 1],
  ['larger than max_put_size: 400', OPEN, put('/big.txt', 'x'.repeat(101)), 1],
  ['invalid name with ..: 400 Invalid filename, and a close (the body is not read)', OPEN, put('/up/../x.txt', 'a'), 1],
  ['invalid name with a query: 400', OPEN, put('/q.txt?x=1', 'a'), 1],
  ['invalid name with an encoded space: 400', OPEN, put('/sp%20ace.txt', 'a'), 1],
  ['invalid name ending in a slash: 400', OPEN, put('/up/', 'a'), 1],
  ['chunked PUT with Expect: 100-continue: 100 Continue, then 200', OPEN,
    'PUT /chunked.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n', 2],
  ['min_put_directory 1: a file right in the docroot is too shallow: 400', MINDIR, put('/top.txt', 'a'), 1],
  ['min_put_directory 1: a base directory that does not exist: 404', MINDIR, put('/nobase/x.txt', 'a'), 1],
  ['min_put_directory 1: an existing base gets its new subdirectories: 200', MINDIR, put('/up/new/deeper.txt', 'deep'), 1],
  ['DELETE a file: 204, then 404', OPEN, 'DELETE /new.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\nDELETE /new.txt HTTP/1.0\r\n\r\n', 2],
  ['DELETE a directory: 400 Is a directory; DELETE with .. : 400', OPEN,
    'DELETE /adir HTTP/1.0\r\nConnection: keep-alive\r\n\r\nDELETE /up/../old.txt HTTP/1.0\r\n\r\n', 2],
  ['PUT and DELETE where not enabled: 403', READONLY, `${put('/ro.txt', 'a')}DELETE /old.txt HTTP/1.0\r\n\r\n`, 2],
];

describe('web_server writes: tsbal answers and writes as Perlbal 1.80', () => {
  for (const [name, service, request, reads] of CASES) {
    const t = TSBAL_RUNS ? test : test.todo;
    t(name, async () => {
      const [perlbal, tsbal] = await Promise.all(KINDS.map((k) => observe(k, service, request, reads)));
      expect(tsbal).toEqual(perlbal!);
      expect(tree(docroots.get('tsbal')!)).toEqual(tree(docroots.get('perlbal')!));
    });
  }
});
