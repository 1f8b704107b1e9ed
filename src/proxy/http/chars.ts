// Character classes of RFC 9110/9112 as byte tables, so the head parser validates in the same pass that splits.

/** tchar: the characters of a token (field names, methods). */
export const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TOKEN[c.charCodeAt(0)] = 1;

/**
 * Bytes allowed in a field value and a request target: VCHAR, obs-text, SP, HTAB. Not NUL, CR, LF, other CTLs or
 * DEL (a bare CR or LF inside a line is how line-ending smuggling starts).
 */
export const FIELD_VALUE = new Uint8Array(256);
for (let c = 0x20; c < 0x100; c++) if (c !== 0x7f) FIELD_VALUE[c] = 1;
FIELD_VALUE[0x09] = 1;

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (TOKEN[s.charCodeAt(i)] !== 1) return false;
  return true;
}
