// buffer_uploads when the disk fails: `tsbal run` in its own mount namespace (unshare -m) with a 64 KiB tmpfs, or a
// read-only one, as buffer_uploads_path. The client gets a 503 and the log one line; no byte reaches a backend.
import { describe, expect, test } from 'bun:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startWithConf } from '../harness/perlbal.ts';
import { launchTsbal } from '../harness/tsbal.ts';
import { rawBackend, rawRequest, statusCodes } from './helpers.ts';

function confText(listen: number, backend: number, spoolDir: string): string {
  return [
    'CREATE POOL p',
    `  POOL p ADD 127.0.0.1:${backend}`,
    'CREATE SERVICE s',
    '  SET role = reverse_proxy',
    `  SET listen = 127.0.0.1:${listen}`,
    '  SET pool = p',
    '  SET buffer_uploads = on',
    `  SET buffer_uploads_path = ${spoolDir}`,
    'ENABLE s',
    '',
  ].join('\n');
}

/** `tsbal run` with a fresh tmpfs (mount options `opts`) over spoolDir, visible to it alone. */
function launchWithTmpfs(spoolDir: string, opts: string) {
  const inner = launchTsbal({ kind: 'source' });
  return (confPath: string) => {
    const { command, args, env } = inner(confPath);
    return {
      command: '/usr/bin/unshare',
      args: ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o ${opts} tmpfs "$0" && exec "$@"`, spoolDir, command, ...args],
      env,
    };
  };
}

async function uploadAgainstBrokenDisk(mountOpts: string, expectedCause: string): Promise<void> {
  const spoolDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbal-spool-disk-'));
  const b = await rawBackend('b', (socket) => socket.destroy());
  let proxy: Awaited<ReturnType<typeof startWithConf>> | null = null;
  try {
    proxy = await startWithConf('tsbal', 1, (ports) => ({ text: confText(ports[0]!, b.port, spoolDir), ready: [ports[0]!] }), launchWithTmpfs(spoolDir, mountOpts));
    const size = 300 * 1024;
    const r = await rawRequest(proxy.port, [`POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`, Buffer.alloc(size, 0x61)], { timeoutMs: 5000 });
    expect(statusCodes(r.data)).toEqual([503]);
    expect(r.data).toContain('the upload could not be buffered');
    expect(r.closed).toBe(true);
    expect(b.conns).toEqual([]);
    // With worker processes the line reaches the owner's log over IPC, a moment after the answer.
    const logged = (): string[] => proxy!.output().split('\n').filter((l) => l.includes('cannot buffer upload'));
    for (let i = 0; i < 40 && logged().length === 0; i++) await Bun.sleep(50);
    await Bun.sleep(100);
    const lines = logged();
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain(`service s: cannot buffer upload to ${spoolDir}`);
    expect(lines[0]).toContain(expectedCause);
    // The tmpfs as tsbal sees it (its mount namespace, through /proc): no partial file left behind.
    expect(fs.readdirSync(`/proc/${proxy.pid}/root${spoolDir}`)).toEqual([]);
  } finally {
    await proxy?.stop();
    await b.close();
    fs.rmSync(spoolDir, { recursive: true, force: true });
  }
}

describe('buffered uploads on a failing disk', () => {
  test('a full disk (ENOSPC) answers 503 with one log line and sends nothing to the backend', async () => {
    await uploadAgainstBrokenDisk('size=64k', 'ENOSPC (no space left on device)');
  }, 30_000);

  test('a read-only buffer_uploads_path answers 503 with one log line and sends nothing to the backend', async () => {
    await uploadAgainstBrokenDisk('ro,size=64k', 'EROFS (not writable)');
  }, 30_000);
});
