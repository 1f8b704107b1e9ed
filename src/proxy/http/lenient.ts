// Backend response heads, read as HAProxy and nginx read them. The strict parser (response.ts) runs first and
// almost always succeeds; only when it refuses a head does this rewrite the head into its strict form (CRLF line
// ends, one space in the status line, no leading empty lines, obs-fold joined) and parse that. Whatever the
// rewrite cannot vouch for (whitespace before a colon, a folded framing field, a bare CR, anything that is not a
// status line) is still refused, so a leniency never changes how a body is framed. Requests never come here.
import { latin1 } from './fields.ts';
import { bodyStartAfter, findLfHeadEnd, resetHeadReader, scanHead, skipEmptyLines, type HeadReader } from './head-reader.ts';
import type { Fields, HeadLimits } from './parser.ts';
import { parseResponseHead, type ResponseError, type ResponseHead } from './response.ts';

/** `HTTP/x.y`, whitespace, three digits, and an optional reason after more whitespace. */
const STATUS_LINE_RE = /^(HTTP\/[0-9]\.[0-9])[ \t]+([0-9]{3})(?:[ \t]+(.*))?$/;
/** Fields that frame the body: a fold in them is refused rather than guessed at. */
const FRAMING_FIELD_RE = /^(content-length|transfer-encoding)[ \t]*:/i;

export type NormalisedHead = { kind: 'head'; buf: Buffer; end: number } | ResponseError;

/**
 * The head at buf[from, ...) rewritten in strict form, followed by the rest of buf[0, total) (the start of the
 * body): the head is out[0, end), the CRLFCRLF after it at `end`. An error when no complete head is there or a
 * line cannot be made strict without guessing.
 */
export function normaliseResponseHead(buf: Buffer, from: number, total: number): NormalisedHead {
  const start = skipEmptyLines(buf, from, total);
  const lfAt = findLfHeadEnd(buf, start, total);
  if (lfAt === -1) return { kind: 'error', reason: 'response head has no end' };
  const lines = latin1(buf, start, lfAt).split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    // One CR before the LF is the line end; any other CR stays and is refused by the strict parser.
    if (line.endsWith('\r')) lines[i] = line.slice(0, -1);
  }
  const status = STATUS_LINE_RE.exec(lines[0]!);
  if (status !== null) lines[0] = `${status[1]} ${status[2]}${status[3] === undefined ? '' : ` ${status[3]}`}`;
  const out: string[] = [lines[0]!];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const first = line.charCodeAt(0);
    if (first !== 0x20 && first !== 0x09) {
      out.push(line);
      continue;
    }
    // obs-fold (RFC 9112 5.2): a proxy may replace it with SP. Not right after the status line (2.2), and not in
    // a field that frames the body.
    if (out.length === 1) return { kind: 'error', reason: 'whitespace before the first response header field' };
    const previous = out[out.length - 1]!;
    if (FRAMING_FIELD_RE.test(previous)) return { kind: 'error', reason: 'obs-fold in a framing header' };
    // Its whitespace becomes as many spaces, appended: Perlbal's join (`a` + `  b` is `a  b`).
    out[out.length - 1] = (previous + line.replace(/^[ \t]+/, (ws) => ' '.repeat(ws.length))).replace(/[ \t]+$/, '');
  }
  const head = Buffer.from(out.join('\r\n'), 'latin1');
  const bodyStart = bodyStartAfter(buf, lfAt);
  const normalised = Buffer.allocUnsafe(head.length + 4 + total - bodyStart);
  head.copy(normalised, 0);
  normalised.write('\r\n\r\n', head.length, 'latin1');
  buf.copy(normalised, head.length + 4, bodyStart, total);
  return { kind: 'head', buf: normalised, end: head.length };
}

/**
 * Reads a backend's response head from `chunk[start..]` (carrying an incomplete head over in `reader`): null
 * while incomplete, else the parsed head (its body or the next bytes start at `res.bodyStart` in
 * `res.fields.buf`) or why it was refused. Strict first; the lenient rewrite only when that refuses.
 */
export function readResponseHead(
  reader: HeadReader,
  chunk: Buffer,
  start: number,
  method: string,
  limits: HeadLimits,
  fields: Fields | null,
): ResponseHead | ResponseError | null {
  const scan = scanHead(reader, chunk, start, limits.maxHeaderSize, limits.maxHeaderSize, false, true);
  switch (scan.kind) {
    case 'incomplete':
      return null;
    case 'too-large':
      return { kind: 'error', reason: 'response head too large' };
    case 'bare-lf':
      // Not reported with lfEnds; kept for the type.
      return { kind: 'error', reason: 'bare LF in the response head' };
    case 'head': {
      const res = parseResponseHead(scan.buf, scan.start, scan.end, method, limits, fields);
      if (res.kind === 'response') {
        resetHeadReader(reader);
        return res;
      }
      return lenient(reader, scan.buf, scan.start, method, limits, fields);
    }
    case 'head-lf':
      return lenient(reader, scan.buf, scan.start, method, limits, fields);
  }
}

function lenient(
  reader: HeadReader,
  buf: Buffer,
  start: number,
  method: string,
  limits: HeadLimits,
  fields: Fields | null,
): ResponseHead | ResponseError {
  resetHeadReader(reader);
  const norm = normaliseResponseHead(buf, start, buf.length);
  if (norm.kind === 'error') return norm;
  // Refused here, the reason names the line as rewritten (a bare LF is no longer what is wrong with it).
  const res = parseResponseHead(norm.buf, 0, norm.end, method, limits, fields);
  if (res.kind === 'error') return res;
  res.normalised = true;
  return res;
}
