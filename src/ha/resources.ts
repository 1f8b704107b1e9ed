// Starting and stopping haresources groups like ResourceManager: resources left to right on start, right to left on
// stop. IP resources are handled natively (vip.ts); anything else is a script from <ha-dir>/resource.d or
// /etc/init.d, run as `SCRIPT ARGS... start|stop|status`.
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import type { Resource, ResourceGroup } from '../config/model.ts';
import { exec, resolveVip, type VipManager } from './vip.ts';

type ScriptResource = Extract<Resource, { kind: 'script' }>;

/** What the HA engine needs from the proxy (the handle `startProxy` returns). */
export interface ProxyGate {
  listeners(): ReadonlyArray<{ host: string; port: number }>;
  isListening(host: string, port: number): boolean;
  /** Binds what could not be bound yet; resolves to the binds that still fail. */
  retryBind(): Promise<ReadonlyArray<{ host: string; port: number; code?: string }>>;
}

export interface GroupRunner {
  /** Starts a group; throws (after undoing what it started) if any resource fails. */
  start(group: ResourceGroup): Promise<void>;
  /** Stops a group, every resource even if one fails; throws with all failures. */
  stop(group: ResourceGroup): Promise<void>;
  /** Sends the gratuitous ARPs again for the group's VIPs that we hold; returns the VIPs announced. */
  announce(group: ResourceGroup): string[];
}

export interface GroupRunnerOptions {
  haDir: string;
  vips: VipManager;
  proxy: ProxyGate | null;
  scriptTimeoutMs: number;
  /** Where scripts are looked up after <ha-dir>/resource.d. */
  initDir?: string;
}

export function findScript(name: string, haDir: string, initDir = '/etc/init.d'): string {
  const candidates = [join(haDir, 'resource.d', name), join(initDir, name)];
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // next
    }
  }
  throw new Error(`resource script '${name}' not found (or not executable) in ${candidates.join(' or ')}`);
}

/** ResourceManager's rule: "running" or "OK" in the status output, unless it says "not running". */
export function statusSaysRunning(output: string): boolean {
  if (/not\s+running/i.test(output)) return false;
  return /running|\bOK\b/.test(output);
}

export function createGroupRunner(o: GroupRunnerOptions): GroupRunner {
  const script = async (r: ScriptResource, op: 'start' | 'stop' | 'status'): Promise<{ ok: boolean; out: string }> => {
    const path = findScript(r.name, o.haDir, o.initDir);
    const res = await exec(path, [...r.args, op], o.scriptTimeoutMs);
    return { ok: res.code === 0, out: `${res.stdout}${res.stderr}`.trim() };
  };

  const startOne = async (r: Resource): Promise<void> => {
    if (r.kind === 'script') {
      if (statusSaysRunning((await script(r, 'status')).out)) return;
      const res = await script(r, 'start');
      if (!res.ok) throw new Error(`${r.raw} start failed: ${res.out || 'non-zero exit'}`);
      return;
    }
    const vip = resolveVip(r);
    await o.vips.add(vip);
    if (o.proxy) {
      // With ip_nonlocal_bind off the proxy could not bind the VIP before it existed: let it try now.
      let failing: Array<{ host: string; port: number; code?: string }>;
      try {
        failing = (await o.proxy.retryBind()).filter((f) => f.host === vip.ip);
      } catch (error) {
        await o.vips.remove(vip);
        throw new Error(`refusing to hold ${vip.ip}: the proxy cannot listen on it: ${(error as Error).message}`);
      }
      const deaf = o.proxy.listeners().filter((l) => l.host === vip.ip && !o.proxy!.isListening(l.host, l.port));
      if (failing.length > 0 || deaf.length > 0) {
        await o.vips.remove(vip);
        const where = [...failing.map((f) => `${f.host}:${f.port}${f.code ? ` (${f.code})` : ''}`), ...deaf.map((l) => `${l.host}:${l.port}`)].join(', ');
        throw new Error(`refusing to hold ${vip.ip}: the proxy cannot listen on ${where} (set net.ipv4.ip_nonlocal_bind=1, or check the port)`);
      }
    }
  };

  const stopOne = async (r: Resource): Promise<void> => {
    if (r.kind === 'script') {
      const res = await script(r, 'stop');
      if (!res.ok && statusSaysRunning((await script(r, 'status')).out)) throw new Error(`${r.raw} stop failed: ${res.out || 'non-zero exit'}`);
      return;
    }
    await o.vips.remove(resolveVip(r));
  };

  return {
    async start(group) {
      const started: Resource[] = [];
      for (const r of group.resources) {
        try {
          await startOne(r);
          started.push(r);
        } catch (error) {
          for (const s of started.reverse()) await stopOne(s).catch(() => undefined);
          throw error;
        }
      }
    },
    announce(group) {
      const done: string[] = [];
      for (const r of group.resources) {
        if (r.kind !== 'ip') continue;
        const vip = resolveVip(r);
        if (o.vips.reannounce(vip)) done.push(vip.ip);
      }
      return done;
    },
    async stop(group) {
      const errors: string[] = [];
      for (const r of [...group.resources].reverse()) {
        try {
          await stopOne(r);
        } catch (error) {
          errors.push((error as Error).message);
        }
      }
      if (errors.length > 0) throw new Error(errors.join('; '));
    },
  };
}
