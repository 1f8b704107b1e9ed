// `tsbal run`'s EADDRINUSE explained for an IPv6 listen: /proc/net/tcp6's address form, and the program named.
import { expect, test } from 'bun:test';
import { explainBindError, procNet6Address } from '../../src/cli/pidfile.ts';
import { spawnProc, waitFor } from '../harness/proc.ts';

test('procNet6Address writes [host]:port as /proc/net/tcp6 does (four little-endian words)', () => {
  expect(procNet6Address('::1', 0xaf9f)).toBe('00000000000000000000000001000000:AF9F');
  expect(procNet6Address('::', 80)).toBe('00000000000000000000000000000000:0050');
  expect(procNet6Address('2001:db8::1', 80)).toBe('B80D0120000000000000000001000000:0050');
  expect(procNet6Address('fd00:18:2::1', 443)).toBe('180000FD000002000000000001000000:01BB');
  expect(procNet6Address('1:2:3:4:5:6:7:8', 1)).toBe('02000100040003000600050008000700:0001');
  expect(procNet6Address('1::2::3', 80)).toBeNull();
  expect(procNet6Address('10.0.0.1', 80)).toBeNull();
});

test('an EADDRINUSE on [::1]:P names the program that listens there', async () => {
  const holder = spawnProc([process.execPath, '-e', "const s = require('net').createServer().listen(0, '::1', () => console.log('port', s.address().port)); setTimeout(() => process.exit(0), 20000);"], { label: 'port holder' });
  try {
    const port = await waitFor('the holder to listen', () => /port (\d+)/.exec(holder.stdout())?.[1], { timeoutMs: 10_000, describe: () => holder.stderr() });
    const msg = `service web: cannot listen on [::1]:${port}: EADDRINUSE (address already in use)`;
    expect(explainBindError(msg)).toStartWith(`${msg}; pid ${holder.pid} (`);
  } finally {
    holder.kill('SIGKILL');
    await holder.exited;
  }
});

test('an EADDRINUSE on [::]:P while another program listens on [::1]:P names it (the wildcard covers every address)', async () => {
  const holder = spawnProc([process.execPath, '-e', "const s = require('net').createServer().listen(0, '::1', () => console.log('port', s.address().port)); setTimeout(() => process.exit(0), 20000);"], { label: 'port holder' });
  try {
    const port = await waitFor('the holder to listen', () => /port (\d+)/.exec(holder.stdout())?.[1], { timeoutMs: 10_000, describe: () => holder.stderr() });
    const msg = `service web: cannot listen on [::]:${port}: EADDRINUSE (address already in use)`;
    expect(explainBindError(msg)).toStartWith(`${msg}; pid ${holder.pid} (`);
    expect(explainBindError(msg)).toEndWith(`) listens on port ${port} of an address of this host`);
  } finally {
    holder.kill('SIGKILL');
    await holder.exited;
  }
});
