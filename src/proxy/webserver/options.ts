// The web_server options tsbal serves, from the config model (Perlbal's names).
import type { ServiceModel } from '../../config/model.ts';
import type { SourceLocation } from '../../config/errors.ts';

export interface WebServerOptions {
  /** As configured, trailing `/` stripped (the config loader does that, as Perlbal); '' when unset. */
  docroot: string;
  dirindexing: boolean;
  indexFiles: readonly string[];
  enablePut: boolean;
  enableDelete: boolean;
  /** Check Content-MD5 on PUT when the client sends one. */
  enableMd5: boolean;
  /** Bytes; 0 is unlimited. */
  maxPutSize: number;
  /** Bytes of a chunked PUT before the connection is cut; 0 is unlimited. */
  maxChunkedRequestSize: number;
  /** Leading directories of a PUT path that must exist already; deeper ones are made. */
  minPutDirectory: number;
  enableConcatenateGet: boolean;
  /** AutoRemoveLeadingDir: the docroot's last directory name, removed from the front of every target; else null. */
  leadingDir: string | null;
}

function num(v: unknown, fallback: number): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : Number.NaN;
  return Number.isFinite(n) ? n : fallback;
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
    enablePut: o.enable_put === true,
    enableDelete: o.enable_delete === true,
    enableMd5: o.enable_md5 !== false,
    maxPutSize: num(o.max_put_size, 0),
    maxChunkedRequestSize: num(o.max_chunked_request_size, 209_715_200),
    minPutDirectory: num(o.min_put_directory, 0),
    enableConcatenateGet: o.enable_concatenate_get === true,
  };
}

/** Nothing is refused any more: kept as the place a future unsupported web_server option would be named. */
export function webServerRefusals(_s: ServiceModel): Array<{ loc: SourceLocation; message: string }> {
  return [];
}
