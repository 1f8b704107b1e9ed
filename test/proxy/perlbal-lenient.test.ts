// Differential: backends that answer loosely (bare LF, HTTP/1.0 read until close, odd whitespace) behind real
// Perlbal 1.80 and behind tsbal, same perlbal.conf, same client bytes. Where Perlbal serves such a response,
// tsbal must serve the same status, headers that matter and body (and keep the backend usable); the client-side
// differences are the declared ones (HTTP/1.1 status line, keep-alive headers, CRLF and one framing header).
import { afterAll, describe, expect } from 'bun:test';
import { TUTORIAL_OPTIONS } from '../harness/perlbalconf.ts';
import type { RecordedRequest, Reply } from '../harness/rawbackend.ts';
import { describeOutcome } from '../harness/rawclient.ts';
import { KINDS, type Observation, comparableResponse, lazyRigs, observe, startRig, testFor } from './diffkit.ts';

/** Each path's backend answer (OPTIONS, the verify probe, is answered with bare LF too). */
const ANSWERS: Record<string, { bytes: string; close?: boolean }> = {
  '/repro': { bytes: 'HTTP/1.0 200 OK\nContent-Length: 6\nConnection: keep-alive\n\nhello\n' },
  '/lf-close': { bytes: 'HTTP/1.0 200 OK\nContent-Type: text/plain\n\nread until close\n', close: true },
  '/crlf-close': { bytes: 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nread until close\n', close: true },
  '/mixed': { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 2\nX-A: 1\r\n\nok' },
  '/value-ws': { bytes: 'HTTP/1.1 200 OK\nContent-Length:   2 \t\nX-Pad:  a  \n\nok' },
  '/reason-ws': { bytes: 'HTTP/1.1 404 Not  Here \nContent-Length: 2\n\nno' },
  '/spaces': { bytes: 'HTTP/1.1  200  OK\nContent-Length: 2\n\nok' },
  '/fold': { bytes: 'HTTP/1.1 200 OK\r\nX-Foo: a\r\n  b\r\nContent-Length: 2\r\n\r\nok' },
};

/**
 * Answers Perlbal never completes (observed: the client waits until idle_timeout); tsbal serves them as HAProxy
 * does (docs/compat.md). Perlbal ends the head at the first CRLFCRLF, wherever it is, and wants the status line first.
 */
const PERLBAL_HANGS: Record<string, { bytes: string }> = {
  '/lflf-then-crlfcrlf': { bytes: 'HTTP/1.1 200 OK\nContent-Length: 8\n\nab\r\n\r\ncd' },
  '/lead': { bytes: '\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' },
};

function reply(req: RecordedRequest): Reply {
  if (req.method === 'OPTIONS') return { bytes: 'HTTP/1.0 200 OK\nContent-Length: 0\nConnection: keep-alive\n\n' };
  return ANSWERS[req.target] ?? PERLBAL_HANGS[req.target] ?? { bytes: 'HTTP/1.1 500 Unknown Path\r\nContent-Length: 0\r\n\r\n' };
}

const rigs = lazyRigs((kind) => startRig(kind, { set: TUTORIAL_OPTIONS }, [{ name: 'b1', reply }]));
afterAll(() => rigs.stopAll());

/** What each proxy gave for each path (filled by the Perlbal tests, compared by the tsbal ones). */
const perlbalSaw = new Map<string, Observation>();

async function seen(kind: 'perlbal' | 'tsbal', path: string): Promise<Observation> {
  return observe(await rigs.get(kind), `GET ${path} HTTP/1.1\r\nHost: lenient.test\r\n\r\n`, { timeoutMs: 3000 });
}

describe('lenient backend responses: tsbal serves what Perlbal serves', () => {
  for (const path of Object.keys(ANSWERS)) {
    for (const kind of KINDS) {
      testFor(kind)(`${kind}: ${path} ${JSON.stringify(ANSWERS[path]!.bytes)}`, async () => {
        let obs = await seen(kind, path);
        if (kind === 'perlbal') {
          expect(obs.outcome.kind, describeOutcome(obs.outcome)).toBe('response');
          perlbalSaw.set(path, obs);
          return;
        }
        const golden = perlbalSaw.get(path) ?? (await seen('perlbal', path));
        expect(comparableResponse(obs.outcome), describeOutcome(obs.outcome)).toEqual(comparableResponse(golden.outcome));
        // The same close decision: a length-less body ends with a close in both.
        expect(obs.closedAfter, describeOutcome(obs.outcome)).toBe(golden.closedAfter);
        if (obs.outcome.kind === 'response') {
          const raw = obs.outcome.response.raw;
          const head = raw.subarray(0, obs.outcome.response.head.length).toString('latin1');
          expect(head.replace(/\r\n/g, ''), `CRLF only: ${JSON.stringify(head)}`).not.toMatch(/[\r\n]/);
        }
        // The backend is still usable for the next request (not marked down, as before the fix).
        obs = await seen(kind, '/repro');
        expect(comparableResponse(obs.outcome)).toEqual(['200 OK', 'Content-Length: 6', 'body="hello\\n"']);
      });
    }
  }
});

describe('lenient backend responses Perlbal never completes: tsbal serves them', () => {
  const body: Record<string, string> = { '/lflf-then-crlfcrlf': 'ab\r\n\r\ncd', '/lead': 'ok' };
  for (const path of Object.keys(PERLBAL_HANGS)) {
    for (const kind of KINDS) {
      testFor(kind)(`${kind}: ${path} ${JSON.stringify(PERLBAL_HANGS[path]!.bytes)}`, async () => {
        const obs = await observe(await rigs.get(kind), `GET ${path} HTTP/1.1\r\nHost: lenient.test\r\n\r\n`, { timeoutMs: 1500 });
        if (kind === 'perlbal') {
          expect(describeOutcome(obs.outcome)).toStartWith('no complete response');
          expect(obs.outcome.kind === 'timeout' && obs.outcome.received.length).toBe(0);
        } else {
          expect(comparableResponse(obs.outcome)).toEqual(['200 OK', `Content-Length: ${body[path]!.length}`, `body=${JSON.stringify(body[path])}`]);
        }
      });
    }
  }
});
