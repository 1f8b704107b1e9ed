// Heartbeat 3 wire codec: netstring framing with a trailer digest, plus the classic `>>>` text form.
// Pure: bytes in, fields out (and back). See reference heartbeat.md sections 3.2, 3.3 and 5.1.
import { createHmac } from 'node:crypto';
import { Buffer } from 'node:buffer';
import type { AuthKey, AuthMethod } from '../config/model.ts';

/** Type 0 is a string (kept byte-exact as latin1), type 1 is raw binary (srcuuid, destuuid). */
export type WireField =
  | { type: 0; name: string; value: string }
  | { type: 1; name: string; value: Uint8Array };

export interface AuthToken {
  index: number;
  digest: string;
}

export type DecodedPacket =
  | {
      ok: true;
      framing: 'netstring';
      fields: WireField[];
      /** The bytes the trailer digest covers: `###\n` through `%%%\n`. */
      signed: Uint8Array;
      auth: AuthToken;
    }
  | {
      ok: true;
      framing: 'classic';
      fields: WireField[];
      /** The classic rendering the inner `auth` field covers. */
      signed: Uint8Array;
      /** The inner `auth` field; null when the packet has none (and so cannot be authentic). */
      auth: AuthToken | null;
    }
  | { ok: false; error: string };

const NS_START = Buffer.from('###\n', 'latin1');
const NS_END = Buffer.from('%%%\n', 'latin1');
const CLASSIC_START = Buffer.from('>>>\n', 'latin1');
const CLASSIC_END = '<<<';
/** Heartbeat's receive buffer; anything larger is not a heartbeat packet. */
export const MAX_PACKET = 256 * 1024;

// ---------------------------------------------------------------------------------------------
// Digests

const CRC_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    table[i] = c >>> 0;
  }
  return table;
})();

/** CRC-32/POSIX without the length suffix (poly 0x04C11DB7, MSB first, init 0, complemented). */
export function crc32posix(data: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < data.length; i++) {
    crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ data[i]!) & 0xff]!) >>> 0;
  }
  return ~crc >>> 0;
}

/** The text heartbeat puts after the key index: lowercase hex; CRC as `%lx` (no zero padding). */
export function computeDigest(method: AuthMethod, key: string, data: Uint8Array): string {
  switch (method) {
    case 'sha1':
    case 'md5':
      return createHmac(method, Buffer.from(key, 'latin1')).update(data).digest('hex');
    case 'crc':
      return crc32posix(data).toString(16);
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

function netstring(payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${payload.length}:`, 'latin1'), payload, Buffer.from(',', 'latin1')]);
}

function fieldBytes(field: WireField): Buffer {
  const head = Buffer.from(`(${field.type})${field.name}=`, 'latin1');
  const value = field.type === 0 ? Buffer.from(field.value, 'latin1') : Buffer.from(field.value);
  return Buffer.concat([head, value]);
}

/**
 * The classic `name=value\n` rendering that the inner `auth` field signs: every field except `auth`, in order;
 * non-string fields carry a `(T)` prefix and a base64 value (cluster-glue msg2string NOHEAD).
 */
export function classicRendering(fields: readonly WireField[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    if (f.name === 'auth') continue;
    if (f.type === 0) parts.push(Buffer.from(`${f.name}=${f.value}\n`, 'latin1'));
    else parts.push(Buffer.from(`(${f.type})${f.name}=${Buffer.from(f.value).toString('base64')}\n`, 'latin1'));
  }
  return Buffer.concat(parts);
}

export interface EncodeOptions {
  /** `msgfmt classic` (heartbeat's default) adds the redundant inner `auth` field. */
  innerAuth: boolean;
}

/**
 * Encodes fields the way heartbeat sends them over UDP: `###\n`, one netstring per field, `%%%\n`, then the trailer
 * netstring `<index> <digest>` over everything before it. With innerAuth, an `auth` field is appended first.
 */
export function encodePacket(fields: readonly WireField[], key: AuthKey, options: EncodeOptions): Uint8Array {
  const all: WireField[] = fields.filter((f) => f.name !== 'auth');
  if (options.innerAuth) {
    const inner = computeDigest(key.method, key.key, classicRendering(all));
    all.push({ type: 0, name: 'auth', value: `${key.index} ${inner}` });
  }
  const body = Buffer.concat([NS_START, ...all.map((f) => netstring(fieldBytes(f))), NS_END]);
  const trailer = netstring(Buffer.from(`${key.index} ${computeDigest(key.method, key.key, body)}`, 'latin1'));
  return Buffer.concat([body, trailer]);
}

/** The classic `>>>` text form (what heartbeat's FIFO carries; a real node also accepts it over UDP). */
export function encodeClassicPacket(fields: readonly WireField[], key: AuthKey): Uint8Array {
  const all = fields.filter((f) => f.name !== 'auth');
  const body = classicRendering(all);
  const auth = `auth=${key.index} ${computeDigest(key.method, key.key, body)}\n`;
  return Buffer.concat([CLASSIC_START, body, Buffer.from(auth + CLASSIC_END + '\n', 'latin1')]);
}

// ---------------------------------------------------------------------------------------------
// Decoding

function parseAuthToken(text: string): AuthToken | null {
  const m = /^(\d{1,2}) ([0-9a-f]+)$/.exec(text);
  if (!m) return null;
  return { index: Number(m[1]), digest: m[2]! };
}

interface Peeled {
  payload: Buffer;
  next: number;
}

function peelNetstring(buf: Buffer, at: number): Peeled | string {
  let i = at;
  let len = 0;
  while (i < buf.length && buf[i]! >= 0x30 && buf[i]! <= 0x39) {
    len = len * 10 + (buf[i]! - 0x30);
    if (len > MAX_PACKET) return `netstring length too large at byte ${at}`;
    i++;
  }
  if (i === at) return `expected a netstring length at byte ${at}`;
  if (buf[i] !== 0x3a) return `expected ':' after netstring length at byte ${i}`;
  const start = i + 1;
  const end = start + len;
  if (end >= buf.length) return `truncated netstring at byte ${at} (length ${len})`;
  if (buf[end] !== 0x2c) return `netstring at byte ${at} not terminated by ','`;
  return { payload: buf.subarray(start, end), next: end + 1 };
}

function parseField(item: Buffer): WireField | string {
  // `(T)name=value`
  if (item.length < 4 || item[0] !== 0x28 || item[2] !== 0x29) return 'field without a (T) type prefix';
  const type = item[1]! - 0x30;
  const eq = item.indexOf(0x3d, 3);
  if (eq < 0) return 'field without "="';
  const name = item.toString('latin1', 3, eq);
  const value = item.subarray(eq + 1);
  if (type === 0) return { type: 0, name, value: value.toString('latin1') };
  if (type === 1) return { type: 1, name, value: Uint8Array.from(value) };
  return `unsupported field type ${type} (${name}); only Pacemaker sends types 2-5`;
}

function decodeNetstring(buf: Buffer): DecodedPacket {
  const fields: WireField[] = [];
  let i = NS_START.length;
  for (;;) {
    if (i >= buf.length) return { ok: false, error: 'missing %%% end marker' };
    if (buf.subarray(i, i + NS_END.length).equals(NS_END)) break;
    const peeled = peelNetstring(buf, i);
    if (typeof peeled === 'string') return { ok: false, error: peeled };
    const field = parseField(peeled.payload);
    if (typeof field === 'string') return { ok: false, error: field };
    fields.push(field);
    i = peeled.next;
  }
  const signedEnd = i + NS_END.length;
  if (signedEnd >= buf.length) return { ok: false, error: 'no auth trailer' };
  const trailer = peelNetstring(buf, signedEnd);
  if (typeof trailer === 'string') return { ok: false, error: `bad auth trailer: ${trailer}` };
  if (trailer.next !== buf.length) return { ok: false, error: `${buf.length - trailer.next} trailing bytes after the auth trailer` };
  const auth = parseAuthToken(trailer.payload.toString('latin1'));
  if (!auth) return { ok: false, error: 'malformed auth trailer' };
  return { ok: true, framing: 'netstring', fields, signed: buf.subarray(0, signedEnd), auth };
}

function decodeClassic(buf: Buffer): DecodedPacket {
  const text = buf.toString('latin1', CLASSIC_START.length);
  const lines = text.split('\n');
  const fields: WireField[] = [];
  let ended = false;
  for (const line of lines) {
    if (line === CLASSIC_END) {
      ended = true;
      break;
    }
    if (line === '') continue;
    const typed = /^\((\d)\)/.exec(line);
    const rest = typed ? line.slice(3) : line;
    const eq = rest.indexOf('=');
    if (eq <= 0) return { ok: false, error: `classic line without name=value: ${JSON.stringify(line.slice(0, 40))}` };
    const name = rest.slice(0, eq);
    const value = rest.slice(eq + 1);
    if (!typed || typed[1] === '0') fields.push({ type: 0, name, value });
    else if (typed[1] === '1') fields.push({ type: 1, name, value: Uint8Array.from(Buffer.from(value, 'base64')) });
    else return { ok: false, error: `unsupported classic field type ${typed[1]}` };
  }
  if (!ended) return { ok: false, error: 'missing <<< end marker' };
  const authField = fields.find((f) => f.name === 'auth');
  const auth = authField && authField.type === 0 ? parseAuthToken(authField.value) : null;
  return { ok: true, framing: 'classic', fields, signed: classicRendering(fields), auth };
}

export function decodePacket(bytes: Uint8Array): DecodedPacket {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length > MAX_PACKET) return { ok: false, error: `packet larger than ${MAX_PACKET} bytes` };
  if (buf.subarray(0, 4).equals(NS_START)) return decodeNetstring(buf);
  if (buf.subarray(0, 4).equals(CLASSIC_START)) return decodeClassic(buf);
  return { ok: false, error: 'not a heartbeat packet (no ### or >>> header)' };
}

/**
 * Checks a decoded packet's digest with the key of the index it names. (Heartbeat 3.0.6 uses its own outbound key
 * whatever the index says, which breaks key rotation; with one shared key both agree. See docs/compat.md.)
 */
export function verifyPacket(packet: DecodedPacket, keys: readonly AuthKey[]): 'ok' | 'no-auth' | 'unknown-key' | 'bad-digest' {
  if (!packet.ok) return 'no-auth';
  if (!packet.auth) return 'no-auth';
  const key = keys.find((k) => k.index === packet.auth!.index);
  if (!key) return 'unknown-key';
  const expected = computeDigest(key.method, key.key, packet.signed);
  return timingSafeEqualText(expected, packet.auth.digest) ? 'ok' : 'bad-digest';
}

function timingSafeEqualText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** The value of the first string field with this name. */
export function fieldValue(fields: readonly WireField[], name: string): string | undefined {
  for (const f of fields) if (f.name === name && f.type === 0) return f.value;
  return undefined;
}
