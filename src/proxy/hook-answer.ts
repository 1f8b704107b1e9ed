// The I/O-free half of running a service's plugin hooks on a parsed request: the facts the hooks read, taken from
// the request head, and the bytes of the answer a hook gives (Perlbal's, apart from the HTTP/1.1 status line and
// `Server: tsbal`).
import { cannedResponse, simplePage, type GeneratedResponseOptions } from './errors.ts';
import { F, fieldValue, findField, getField } from './http/fields.ts';
import { requestTarget, type RequestHead } from './http/request.ts';
import { runRequestHooks, type HookVerdict, type RequestHook } from './hooks.ts';

export function requestVerdict(hooks: readonly RequestHook[], peerIp: string, trusted: boolean, req: RequestHead): HookVerdict {
  const f = req.fields;
  return runRequestHooks(hooks, {
    peerIp,
    trusted,
    method: req.method,
    host: req.hostFromTarget ? req.host : req.hostIndex === -1 ? null : fieldValue(f, req.hostIndex),
    path: requestTarget(req),
    ifModifiedSince() {
      return getField(f, 'if-modified-since');
    },
    contentLength: req.framing.kind === 'length' ? req.framing.length : -1,
    xForwardedFor() {
      // Perlbal joins repeated fields with ", " before taking the first entry: the first field's first entry.
      const i = findField(f, F.X_FORWARDED_FOR);
      return i === -1 ? undefined : fieldValue(f, i);
    },
  });
}

export type HookAnswer = Exclude<HookVerdict, { kind: 'continue' }>;

export function hookAnswerStatus(v: HookAnswer): number {
  return v.kind === 'deny' ? 403 : v.kind === 'page' || v.kind === 'https' ? v.status : 301;
}

export function hookAnswerWhy(v: HookAnswer): string {
  if (v.kind === 'https') return v.location === null ? 'redirect_https without a Host (400)' : `redirect to ${v.location}`;
  return v.kind === 'deny' ? `access denied (${v.clientIp})` : v.kind === 'page' ? v.why : `redirect to ${v.location}`;
}

export function hookAnswerBytes(v: HookAnswer, o: GeneratedResponseOptions): Buffer {
  if (v.kind === 'deny') return simplePage(403, 'Access denied.', o);
  // Perlbal's _simple_response gives a 204 or 304 no body, no Content-Type and no Content-Length.
  if (v.kind === 'page') return v.status === 304 || v.status === 204 ? cannedResponse(v.status, [], '', o) : simplePage(v.status, v.message, o, v.status === 413 ? '' : undefined);
  if (v.kind === 'https') {
    if (v.location === null) return simplePage(400, 'This service answers over HTTPS only; the request has no Host to redirect to.', o);
    return cannedResponse(v.status, [['Location', v.location], ['Content-Length', '0']], '', o);
  }
  return cannedResponse(301, [['Location', v.location], ['Content-Length', '0']], '', o);
}
