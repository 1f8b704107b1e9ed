// Minimal HTTP/1.x message framing for the test harness: enough to split what a raw backend receives into
// requests and what a raw client receives into responses, keeping the exact bytes. Deliberately lenient and
// independent of tsbal's own codec (the thing under test).

export interface Head {
  /** Request line or status line. */
  startLine: string;
  /** Header lines as received: [name, value] with the name's case kept. */
  headers: Array<[string, string]>;
  /** Bytes of the head including the blank line. */
  length: number;
}

/** Parses a head at the start of `buf`, or returns null when it is not complete yet. */
export function parseHead(buf: Buffer): Head | null {
  let end = buf.indexOf('\r\n\r\n');
  let sepLength = 4;
  const lf = buf.indexOf('\n\n');
  if (lf !== -1 && (end === -1 || lf < end)) {
    end = lf;
    sepLength = 2;
  }
  if (end === -1) return null;
  const lines = buf.subarray(0, end).toString('latin1').split(/\r?\n/);
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon === -1) headers.push([line, '']);
    else headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  return { startLine: lines[0] ?? '', headers, length: end + sepLength };
}

export function header(headers: ReadonlyArray<[string, string]>, name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

export function headerAll(headers: ReadonlyArray<[string, string]>, name: string): string[] {
  const lower = name.toLowerCase();
  return headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
}

export type BodyFraming =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' }
  | { kind: 'until-close' };

/** How the body after a head is framed (RFC 9112 section 6.3, simplified). */
export function bodyFraming(head: Head, side: 'request' | 'response', requestMethod = 'GET'): BodyFraming {
  if (side === 'response') {
    const status = Number(head.startLine.split(' ')[1]);
    if (requestMethod === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)) {
      return { kind: 'none' };
    }
  }
  const te = header(head.headers, 'transfer-encoding');
  if (te !== undefined && /chunked\s*$/i.test(te)) return { kind: 'chunked' };
  const cl = header(head.headers, 'content-length');
  if (cl !== undefined) return { kind: 'length', length: Number.parseInt(cl, 10) || 0 };
  return side === 'request' ? { kind: 'none' } : { kind: 'until-close' };
}

/**
 * Length in bytes of a complete chunked body at the start of `buf` (through the final CRLF after trailers),
 * or null if incomplete.
 */
export function chunkedLength(buf: Buffer): number | null {
  let pos = 0;
  for (;;) {
    const lineEnd = buf.indexOf('\r\n', pos);
    if (lineEnd === -1) return null;
    const size = Number.parseInt(buf.subarray(pos, lineEnd).toString('latin1').split(';')[0]!, 16);
    if (Number.isNaN(size)) return lineEnd + 2; // malformed: stop framing here
    pos = lineEnd + 2;
    if (size === 0) {
      for (;;) {
        const trailerEnd = buf.indexOf('\r\n', pos);
        if (trailerEnd === -1) return null;
        const empty = trailerEnd === pos;
        pos = trailerEnd + 2;
        if (empty) return pos;
      }
    }
    if (buf.length < pos + size + 2) return null;
    pos += size + 2;
  }
}

/** Decodes a chunked body (no validation beyond what chunkedLength needs). */
export function dechunk(buf: Buffer): Buffer {
  const parts: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const lineEnd = buf.indexOf('\r\n', pos);
    if (lineEnd === -1) break;
    const size = Number.parseInt(buf.subarray(pos, lineEnd).toString('latin1').split(';')[0]!, 16);
    if (!(size > 0)) break;
    parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
    pos = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/**
 * Bytes of the complete message (head + body) at the start of `buf`, or null when more bytes are needed.
 * `closed`: the peer has closed, which completes an until-close body.
 */
export function messageLength(
  buf: Buffer,
  side: 'request' | 'response',
  requestMethod = 'GET',
  closed = false,
): { head: Head; total: number; framing: BodyFraming } | null {
  const head = parseHead(buf);
  if (head === null) return null;
  const framing = bodyFraming(head, side, requestMethod);
  switch (framing.kind) {
    case 'none':
      return { head, total: head.length, framing };
    case 'length':
      return buf.length >= head.length + framing.length ? { head, total: head.length + framing.length, framing } : null;
    case 'chunked': {
      const n = chunkedLength(buf.subarray(head.length));
      return n === null ? null : { head, total: head.length + n, framing };
    }
    case 'until-close':
      return closed ? { head, total: buf.length, framing } : null;
  }
}
