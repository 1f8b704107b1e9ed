// Which file a web_server request names (Perlbal's ClientHTTPBase _serve_request, before any disk access): the
// target %-decoded as Perlbal's durl does, refused when it could climb out of the docroot, the query chopped.
// Pure: strings in, a decision out. Paths are byte strings (one char per byte, latin1), as Perl sees them.

export type TargetDecision =
  /** `uri`: decoded, query removed; always starts with `/` and has no `..` segment. */
  | { kind: 'path'; uri: string }
  /** `/base/??a.css,b.css` (enable_concatenate_get): `base` ends in `/`; `files` as listed, not checked yet. */
  | { kind: 'concat'; base: string; files: string[] }
  /** Answered without touching the disk (Perlbal's _simple_response). */
  | { kind: 'page'; status: 403 | 404 | 500; message: string };

const HEX = /%([0-9A-Fa-f]{2})/g;

/** Perlbal::Util::durl: every %XX becomes its byte; `+` stays `+`. */
export function percentDecode(s: string): string {
  return s.replace(HEX, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

const BOGUS: TargetDecision = { kind: 'page', status: 403, message: 'Bogus URL' };

/**
 * Perlbal refuses `/../` and targets not starting with `/` (403 Bogus URL). It lets a trailing `/..` through
 * (`GET /..` lists or serves the docroot's parent); tsbal refuses every `..` segment, and NUL bytes, the same way.
 */
export function resolveTarget(target: string, leadingDir: string | null = null): TargetDecision {
  let decoded = percentDecode(target);
  // AutoRemoveLeadingDir's start_serve_request hook: `s!^/$tail!!` on the decoded target, before the checks below.
  if (leadingDir !== null && decoded.startsWith(`/${leadingDir}`)) decoded = decoded.slice(leadingDir.length + 1);
  if (!decoded.startsWith('/') || decoded.includes('/../')) return BOGUS;
  if (decoded.includes('??')) {
    // Perl's `/(.+)\?\?(.+)/`: the last `??` splits (greedy), newlines stop `.`.
    const m = /^([^\n]+)\?\?([^\n]+)/.exec(decoded);
    if (m === null || !m[1]!.endsWith('/')) return { kind: 'page', status: 500, message: 'Base directory (before ??) must end in slash.' };
    // `s/\?.+//` (a cache-busting `?v=...` after the list), then Perl's split, which drops trailing empty fields.
    const files = m[2]!.replace(/\?[^\n]+/, '').split(',');
    while (files.length > 0 && files[files.length - 1] === '') files.pop();
    return { kind: 'concat', base: m[1]!, files };
  }
  // Perl's `s/\?.*//`: `.` stops at a newline.
  const uri = decoded.replace(/\?[^\n]*/, '');
  if (uri.includes('\0') || uri.split('/').includes('..')) return BOGUS;
  return { kind: 'path', uri };
}

/** Is `real` (a resolved path) the directory `root` (resolved too) or inside it? */
export function isInside(root: string, real: string): boolean {
  if (real === root) return true;
  return real.startsWith(root.endsWith('/') ? root : `${root}/`);
}

/**
 * Perlbal's checks of a `??` request once the service is known, in its order; null when it may be served.
 * tsbal also refuses a `..` file name or a NUL anywhere (Perlbal lets a bare `..` through to a failed stat).
 */
export function concatRefusal(t: { base: string; files: string[] }, docroot: string, enabled: boolean): { status: 403 | 500; message: string } | null {
  if (docroot === '') return { status: 500, message: 'Docroot unconfigured' };
  if (!enabled) return { status: 403, message: "Multiple file serving isn't enabled" };
  if (t.files.length > 100) return { status: 403, message: 'Too many files requested' };
  const bogus = (f: string): boolean => /(?:^|\/)\.\.\//.test(f) || f.split('/').includes('..') || f.includes('\0');
  if (t.files.some(bogus) || t.base.includes('\0') || t.base.split('/').includes('..')) return { status: 403, message: 'Bogus filenames' };
  return null;
}
