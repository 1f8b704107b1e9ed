// The web_server options tsbal serves, from the config model (Perlbal's names), and the ones it refuses to start
// with rather than ignore.
import type { ServiceModel } from '../../config/model.ts';
import type { SourceLocation } from '../../config/errors.ts';

export interface WebServerOptions {
  /** As configured, trailing `/` stripped (the config loader does that, as Perlbal). */
  docroot: string;
  dirindexing: boolean;
  indexFiles: readonly string[];
  /** AutoRemoveLeadingDir: the docroot's last directory name, removed from the front of every target; else null. */
  leadingDir: string | null;
}

export function webServerOptions(s: ServiceModel): WebServerOptions {
  const o = s.options;
  const idx = o.index_files;
  return {
    docroot: typeof o.docroot === 'string' ? o.docroot : '',
    dirindexing: o.dirindexing === true,
    indexFiles: Array.isArray(idx) ? idx.map(String) : typeof idx === 'string' ? idx.split(/[\s,]+/).filter((x) => x !== '') : ['index.html'],
    // Perlbal's `($tail) = ($svc->{docroot} =~ m!/([\w-]+)/?$!)`: a last name of other characters disables it.
    leadingDir: s.plugins.includes('autoremoveleadingdir') && typeof o.docroot === 'string' ? (/\/([\w-]+)\/?$/.exec(o.docroot)?.[1] ?? null) : null,
  };
}

/** Writing to the docroot (PUT, DELETE) and `??` concatenation are not implemented: refused, never silently off. */
const REFUSED = ['enable_put', 'enable_delete', 'enable_concatenate_get'] as const;

export function webServerRefusals(s: ServiceModel): Array<{ loc: SourceLocation; message: string }> {
  if (s.role !== 'web_server') return [];
  return REFUSED.filter((k) => s.options[k] === true).map((k) => ({
    loc: s.loc,
    message: `service ${s.name}: ${k} is not supported by this version of tsbal run (web_server serves GET and HEAD only); remove it or run Perlbal`,
  }));
}
