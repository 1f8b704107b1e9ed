// The I/O-free half of running a service's plugin hooks on a parsed request: the facts the hooks read, taken from
// the request head, and the bytes of the answer a hook gives (Perlbal's, apart from the HTTP/1.1 status line and
// `Server: tsbal`).
import { cannedResponse, simplePage, type GeneratedResponseOptions } from './errors.ts';
import { F, fieldValue, findField } from './http/fields.ts';
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
    xForwardedFor() {
      // Perlbal joins repeated fields with ", " before taking the first entry: the first field's first entry.
      const i = findField(f, F.X_FORWARDED_FOR);
      return i === -1 ? undefined : fieldValue(f, i);
    },
  });
}

export type HookAnswer = Exclude<HookVerdict, { kind: 'continue' }>;

export function hookAnswerStatus(v: HookAnswer): number {
  return v.kind === 'deny' ? 403 : v.kind === 'https' ? v.status : 301;
}

export function hookAnswerBytes(v: HookAnswer, o: GeneratedResponseOptions): Buffer {
  if (v.kind === 'deny') return simplePage(403, 'Access denied.', o);
  if (v.kind === 'https' && v.location === null) return simplePage(400, 'This service answers over HTTPS only; the request has no Host to redirect to.', o);
  return cannedResponse(v.kind === 'https' ? v.status : 301, [['Location', v.location!], ['Content-Length', '0']], '', o);
}
