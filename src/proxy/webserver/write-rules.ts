// What a web_server PUT or DELETE may touch (Perlbal's ClientHTTP handle_put / handle_delete, before any disk
// access): the raw target must be `/dir/.../name` of conservative characters, with no `..`; min_put_directory
// leading directories must already exist, the rest are made. Pure: strings in, a decision out.

export type PutTarget =
  /** `existing`: leading directories that must exist; `made`: the ones below them, created when missing. */
  | { kind: 'ok'; existing: string[]; made: string[]; filename: string }
  | { kind: 'page'; status: 400; message: string };

const INVALID: { kind: 'page'; status: 400; message: string } = { kind: 'page', status: 400, message: 'Invalid filename' };
/** Perlbal's `\w` is ASCII here (no `use utf8`): letters, digits, `_`, plus `-` and `.`. */
const PUT_RE = /^((?:\/[A-Za-z0-9_.-]+)*)\/([A-Za-z0-9_.-]+)$/;
const DELETE_RE = /^(?:\/[A-Za-z0-9_.-]+)+$/;

/** A PUT's raw request target (not %-decoded, as in Perlbal; a query string makes it invalid). */
export function putTarget(target: string, minPutDirectory: number): PutTarget {
  if (target.includes('..')) return INVALID;
  const m = PUT_RE.exec(target);
  if (m === null) return INVALID;
  const dirs = m[1]!.split('/').filter((d) => d !== '');
  // A `.` component would name the directory itself; Perlbal lets it through to the filesystem, tsbal refuses it.
  if (dirs.includes('.') || m[2] === '.') return INVALID;
  if (dirs.length < minPutDirectory) return { kind: 'page', status: 400, message: 'Does not meet minimum directory requirement' };
  return { kind: 'ok', existing: dirs.slice(0, minPutDirectory), made: dirs.slice(minPutDirectory), filename: m[2]! };
}

/** A DELETE's raw request target: the path components, or Perlbal's 400. */
export function deleteTarget(target: string): { kind: 'ok'; parts: string[] } | { kind: 'page'; status: 400; message: string } {
  if (target.includes('..') || !DELETE_RE.test(target)) return INVALID;
  const parts = target.split('/').filter((d) => d !== '');
  if (parts.includes('.')) return INVALID;
  return { kind: 'ok', parts };
}

/** Perlbal's Content-MD5 test: the base64 digest against the header with its `=` padding (and trailing space) cut. */
export function md5Matches(header: string, actualBase64: string): boolean {
  return actualBase64.replace(/=+$/, '') === header.replace(/=+\s*$/, '');
}

/** The message Perl's `$!` gives for the errors a DELETE or PUT meets (Perlbal puts it in the page). */
export function errnoText(code: string | undefined): string {
  switch (code) {
    case 'EISDIR':
      return 'Is a directory';
    case 'ENOTDIR':
      return 'Not a directory';
    case 'EACCES':
      return 'Permission denied';
    case 'EPERM':
      return 'Operation not permitted';
    case 'ENOSPC':
      return 'No space left on device';
    case 'EROFS':
      return 'Read-only file system';
    case 'EBUSY':
      return 'Device or resource busy';
    case 'ENOTEMPTY':
      return 'Directory not empty';
    default:
      return code ?? 'Unknown error';
  }
}
