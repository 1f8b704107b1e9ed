// Chunked trailer sections on their way through the proxy (RFC 9110 6.5.1): fields that frame, route or only
// concern one hop are dropped, the rest are forwarded. A trailer `Content-Length` or `Host` that a peer merged into
// the head would let a client steer it; `Connection` and what it names, `TE`, `Trailer`, `Keep-Alive`, `Upgrade`
// and `Proxy-Connection` are hop-by-hop.
import { listTokens } from './parser.ts';

/** Lowercase names never forwarded in a trailer section. */
const DROPPED = new Set([
  'content-length',
  'transfer-encoding',
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
]);

/**
 * The trailer section to forward, from the one received (already validated by the chunked decoder: field lines
 * ending in CRLF, or in bare LF when the decoder was lenient, then an empty line). Kept lines as received with
 * CRLF, then the final CRLF. `hopByHop`: names the message head's Connection field listed (lowercase), also dropped.
 */
export function filterTrailerSection(section: Buffer, hopByHop: readonly string[] | null): Buffer {
  const lines = section.toString('latin1').split('\n');
  const names: string[] = [];
  const named = new Set(hopByHop ?? []);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.endsWith('\r') ? lines[i]!.slice(0, -1) : lines[i]!;
    lines[i] = line;
    const colon = line.indexOf(':');
    const name = colon === -1 ? '' : line.slice(0, colon).toLowerCase();
    names.push(name);
    if (name === 'connection') for (const token of listTokens(line.slice(colon + 1))) named.add(token);
  }
  let out = '';
  for (let i = 0; i < lines.length; i++) {
    const name = names[i]!;
    if (name === '' || DROPPED.has(name) || named.has(name)) continue;
    out += `${lines[i]}\r\n`;
  }
  return Buffer.from(`${out}\r\n`, 'latin1');
}

/** One chunk of the transfer coding around buf[start, end) (re-framing a body decoded from a lenient backend). */
export function frameChunk(buf: Buffer, start: number, end: number): Buffer {
  const size = (end - start).toString(16);
  const out = Buffer.allocUnsafe(size.length + 2 + (end - start) + 2);
  out.write(`${size}\r\n`, 0, 'latin1');
  buf.copy(out, size.length + 2, start, end);
  out.write('\r\n', out.length - 2, 'latin1');
  return out;
}

export const LAST_CHUNK = Buffer.from('0\r\n', 'latin1');
