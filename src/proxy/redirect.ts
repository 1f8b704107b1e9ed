// The Redirect plugin's decision (Perlbal::Plugin::Redirect): `REDIRECT HOST <from> <to>` answers a request whose
// Host maps to <to> with `301 Location: http://<to><path>`; a Host with no mapping goes on to the service.
// Matching is the vhosts walk (exact, `*.host`, then one label less at a time, then `*`) on the lowercased Host.
// Pure: Host and path in, Location or null out.

/** `from` → `to`, both lowercased, a later REDIRECT for the same host replacing the earlier one. */
export type RedirectMap = ReadonlyMap<string, string>;

export function compileRedirects(rules: ReadonlyArray<{ from: string; to: string }>): RedirectMap {
  return new Map(rules.map((r) => [r.from.toLowerCase(), r.to.toLowerCase()]));
}

/** The keys tried for a host, in Perlbal's order: `a.b.com`, `*.a.b.com`, `*.b.com`, `*.com`, `*`. */
export function hostCandidates(host: string | null): string[] {
  // Perlbal lowercases the Host and strips a trailing `:port` (digits only); an empty or missing Host tries `*`.
  const h = (host ?? '').toLowerCase().replace(/:\d+$/, '');
  if (h === '' && (host ?? '') === '') return ['*'];
  const out = [h];
  let wild = `*.${h}`;
  out.push(wild);
  // Peel one label (Perl's [\w-]+) at a time: `*.a.b.com` → `*.b.com` → `*.com` → `*`.
  for (;;) {
    const next = wild.replace(/^\*\.[A-Za-z0-9_-]+/, '*');
    if (next === wild) break;
    wild = next;
    out.push(wild);
  }
  if (out[out.length - 1] !== '*') out.push('*');
  return out;
}

/** The target host for `host`, or null when no REDIRECT rule covers it. */
export function redirectHost(map: RedirectMap, host: string | null): string | null {
  if (map.size === 0) return null;
  for (const key of hostCandidates(host)) {
    const to = map.get(key);
    if (to !== undefined) return to;
  }
  return null;
}

/** The `Location` for a request, or null. `path` is the request target (an absolute-form target reduced to its path). */
export function redirectLocation(map: RedirectMap, host: string | null, path: string): string | null {
  const to = redirectHost(map, host);
  return to === null ? null : `http://${to}${path}`;
}
