// Upgrade (WebSocket): after a 101, bytes flow both ways unchanged until either side closes.
import { copyOut, enterPhase, logExchange, pinningSetCookie, writeToClient, type Exchange } from './exchange.ts';
import type { ResponseHead } from './http/response.ts';
import { writeClientResponseHead } from './http/response-head.ts';
import { takeWritten } from './http/writer.ts';
import { countResponse } from './management/stats.ts';
import { noteNodeSuccess, type BackendConn } from './upstream/conn.ts';

export function startTunnel(x: Exchange, be: BackendConn, res: ResponseHead, rest: Buffer, restStart: number): void {
  const c = x.client;
  noteNodeSuccess(be, 101);
  x.res = res;
  enterPhase(x, 'tunnel');
  be.phase = 'tunnel';
  be.uses = Number.MAX_SAFE_INTEGER;
  be.deadline = x.svc.engine.now + x.svc.opts.idleTimeoutMs;
  const w = x.svc.engine.writer;
  // A WebSocket pinned anew gets its affinity cookie on the 101 (browsers keep cookies from it).
  writeClientResponseHead(w, res, { suffix: x.svc.suffixes.upgrade, dechunk: false, upgrade: true, setCookie: pinningSetCookie(x), prefixCookie: null }, 0);
  writeToClient(x, takeWritten(w));
  if (restStart < rest.length) writeToClient(x, copyOut(rest, restStart, rest.length));
  countResponse(x.svc.stats, 101, 0);
  if (x.svc.accessLog !== null) logExchange(x, 101, be);
  const early = c.down.becomeTunnel(c);
  if (early !== null) tunnelFromClient(x, early);
  c.down.resume(c, 'stash');
}

export function tunnelFromClient(x: Exchange, chunk: Buffer): void {
  const be = x.be;
  if (be === null) return;
  be.deadline = x.svc.engine.now + x.svc.opts.idleTimeoutMs;
  if (!be.socket.write(chunk)) x.client.down.pause(x.client, 'backend');
}

export function tunnelClientEnded(x: Exchange): void {
  const be = x.be;
  if (be !== null && !be.socket.destroyed) be.socket.end();
}
