// web_server, differentially: the same perlbal.conf and docroot served by real Perlbal 1.80 and by tsbal, the same
// request bytes sent to both. Compared after normalising only what docs/compat.md declares: the Date value, the
// Server value (Perlbal / tsbal) and the status line's version and reason phrase.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOOPBACK } from '../harness/ports.ts';
import { transcript } from '../harness/rawclient.ts';
import { type MultiRig, type ProxyKind, startMultiRig, TSBAL_RUNS } from './diffkit.ts';

let docroot: string;
const rigs = new Map<ProxyKind, MultiRig>();

function conf([files, listing, sel, concat, redirectOnly]: number[]): string {
  return `LOAD vhosts
LOAD Redirect
CREATE SERVICE concat
  SET role = web_server
  SET listen = ${LOOPBACK}:${concat}
  SET docroot = ${docroot}
  SET persist_client = on
  SET enable_concatenate_get = on
ENABLE concat
CREATE SERVICE redironly
  SET role = web_server
  SET listen = ${LOOPBACK}:${redirectOnly}
  SET plugins = redirect
  SET persist_client = on
  REDIRECT HOST old.example new.example
ENABLE redironly
CREATE SERVICE files
  SET role = web_server
  SET listen = ${LOOPBACK}:${files}
  SET docroot = ${docroot}/
  SET persist_client = on
  SET index_files = index.htm, index.html
ENABLE files
CREATE SERVICE listing
  SET role = web_server
  SET listen = ${LOOPBACK}:${listing}
  SET docroot = ${docroot}
  SET dirindexing = on
  SET server_tokens = off
ENABLE listing
CREATE SERVICE hidden
  SET role = web_server
  SET docroot = ${docroot}/sub
CREATE SERVICE sel
  SET role = selector
  SET listen = ${LOOPBACK}:${sel}
  SET plugins = vhosts
  SET persist_client = on
  VHOST static.example = hidden
ENABLE sel
`;
}

beforeAll(async () => {
  docroot = mkdtempSync(join(tmpdir(), 'tsbal-ws-diff-'));
  mkdirSync(join(docroot, 'sub'));
  mkdirSync(join(docroot, 'noindex'));
  mkdirSync(join(docroot, 'noindex', 'dir'));
  const files: Array<[string, string | Buffer]> = [
    ['a.txt', 'hello\n'], ['page.html', '<p>page</p>'], ['s.css', 'x{}'], ['i.png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2])],
    ['noext', 'plain'], ['UPPER.HTML', '<b>x</b>'], ['sub/index.html', '<p>sub index</p>'], ['noindex/b.js', 'var b;'], ['noindex/A.txt', 'A'],
  ];
  for (const [name, body] of files) {
    writeFileSync(join(docroot, name), body);
    utimesSync(join(docroot, name), 1_600_000_000, 1_600_000_000);
  }
  utimesSync(join(docroot, 'noindex'), 1_600_000_000, 1_600_000_000);
  const kinds: ProxyKind[] = TSBAL_RUNS ? ['perlbal', 'tsbal'] : ['perlbal'];
  const started = await Promise.all(kinds.map((k) => startMultiRig(k, 5, conf, [])));
  for (const rig of started) rigs.set(rig.kind, rig);
}, 30_000);

afterAll(async () => {
  await Promise.all([...rigs.values()].map((r) => r.stop()));
  rmSync(docroot, { recursive: true, force: true });
});

/** Every response on the connection: status code, fields (Date and Server values masked), body. */
function observe(kind: ProxyKind, service: number, request: string, methods: string[]): Promise<string[]> {
  return transcript(rigs.get(kind)!.ports[service]!, request, methods);
}

const FILES = 0;
const LISTING = 1;
const SELECTOR = 2;
const CONCAT = 3;
const REDIRECT_ONLY = 4;
const LM = 'Sun, 13 Sep 2020 12:26:40 GMT';

const CASES: Array<[string, number, string, string[]?]> = [
  ['GET a text file', FILES, 'GET /a.txt HTTP/1.0\r\n\r\n'],
  ['HEAD a text file', FILES, 'HEAD /a.txt HTTP/1.0\r\n\r\n', ['HEAD']],
  ['Content-Type: html, css, png, no extension, upper-case extension', FILES,
    'GET /page.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /s.css HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', ['GET', 'GET']],
  ['Content-Type: png, none, upper case', FILES,
    'GET /i.png HTTP/1.1\r\nHost: x\r\n\r\nGET /noext HTTP/1.1\r\nHost: x\r\n\r\nGET /UPPER.HTML HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', ['GET', 'GET', 'GET']],
  ['the query is cut, %XX decoded', FILES, 'GET /a%2Etxt?x=1 HTTP/1.0\r\n\r\n'],
  ['a directory serves its first existing index file, with or without the slash', FILES,
    'GET /sub HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /sub/ HTTP/1.0\r\n\r\n', ['GET', 'GET']],
  ['no index file, no dirindexing: Directory listing disabled', FILES, 'GET /noindex/ HTTP/1.0\r\n\r\n'],
  ['dirindexing lists the directory', LISTING, 'GET /noindex HTTP/1.0\r\n\r\n'],
  ['missing file: 404', FILES, 'GET /nope.txt HTTP/1.0\r\n\r\n'],
  ['/../ and its %-encoded forms: 403 Bogus URL', FILES,
    'GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\nGET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\nGET /sub/%2E%2E%2F..%2Fetc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', ['GET', 'GET', 'GET']],
  ['?? concatenation, not enabled', FILES, 'GET /noindex/??b.js,A.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /noindex??b.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', ['GET', 'GET']],
  ['If-Modified-Since equal to Last-Modified: 304; IE length suffix; other date: 200', FILES,
    `GET /a.txt HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: ${LM}\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: ${LM}; length=6\r\n\r\n` +
      `GET /a.txt HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: ${LM}; length=7\r\nConnection: close\r\n\r\n`, ['GET', 'GET', 'GET']],
  ['Range: a-b, a-, end past the size: 206', FILES,
    'GET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=1-3\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=2-\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=4-99\r\nConnection: close\r\n\r\n', ['GET', 'GET', 'GET']],
  ['Range: start past the end, start > end, -0: 416', FILES,
    'GET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=6-\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=3-1\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=-0\r\nConnection: close\r\n\r\n', ['GET', 'GET', 'GET']],
  ['several ranges: the whole file; HEAD with a range: 206 headers', FILES,
    'GET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1,3-4\r\n\r\nHEAD /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\nConnection: close\r\n\r\n', ['GET', 'HEAD']],
  ['PUT and DELETE (not enabled): 403', FILES, 'PUT /new.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nDELETE /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', ['PUT', 'DELETE']],
  ['other methods: 400', FILES, 'OPTIONS /a.txt HTTP/1.0\r\n\r\n'],
  ['server_tokens off, no persist_client: no Server, Connection: close', LISTING, 'GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['?? concatenation: the files in order, the type of the first known extension, newest Last-Modified; a ?v= cut', CONCAT,
    'GET /noindex/??A.txt,b.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
  // One ?? request per connection: Perlbal answers a later one on a kept-alive connection 404 "Base directory not a
  // directory" (it tests a stale $! after its stat; docs/compat.md).
  ['?? concatenation: HEAD', CONCAT, 'HEAD /noindex/??b.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', ['HEAD']],
  ['?? concatenation: names with a directory; a ?v= after the list is cut', CONCAT, 'GET /??noindex/b.js,a.txt,s.css?v=12 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
  ['?? concatenation: If-Modified-Since equal to the newest: 304', CONCAT,
    `GET /noindex/??b.js,A.txt HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: ${LM}\r\nConnection: close\r\n\r\n`],
  ['?? concatenation: a missing file: 404', CONCAT, 'GET /noindex/??b.js,nope.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
  ['?? concatenation: a directory in the list: 404', CONCAT, 'GET /??noindex HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
  ['?? concatenation: a base that is not a directory: 404', CONCAT, 'GET /a.txt/??b.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
  ['?? concatenation: ../ in a name: 403', CONCAT, 'GET /noindex/??../a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
  ['?? concatenation: more than 100 files: 403', CONCAT,
    `GET /??${Array.from({ length: 101 }, () => 'a.txt').join(',')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`],
  ['a web_server without docroot that only redirects: 301 for its host, 500 Docroot unconfigured otherwise', REDIRECT_ONLY,
    'GET /x?y=1 HTTP/1.1\r\nHost: old.example\r\n\r\nGET /x HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n', ['GET', 'GET']],
  ['a selector hands a vhost to a web_server without a listener; keep-alive by the selector', SELECTOR,
    'GET / HTTP/1.1\r\nHost: static.example\r\n\r\nGET /index.html HTTP/1.1\r\nHost: static.example\r\nConnection: close\r\n\r\n', ['GET', 'GET']],
];

describe('web_server: tsbal answers as Perlbal 1.80', () => {
  for (const [name, service, request, methods] of CASES) {
    const t = TSBAL_RUNS ? test : test.todo;
    t(name, async () => {
      const [perlbal, tsbal] = await Promise.all([observe('perlbal', service, request, methods ?? ['GET']), observe('tsbal', service, request, methods ?? ['GET'])]);
      expect(tsbal).toEqual(perlbal);
    });
  }
});
