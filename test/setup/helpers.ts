// Flags of a valid two-node setup, for the setup tests.
import { parseSetupArgs, type RawSetupArgs, type SetupOptions } from '../../src/setup/options.ts';

export const BASE: RawSetupArgs = { node: 'lb1', peer: 'lb2', vip: '198.18.0.99/24', iface: 'eth0', backend: '198.18.0.11:8080' };

export function options(extra: RawSetupArgs = {}): SetupOptions {
  const r = parseSetupArgs({ ...BASE, ...extra }, { liveInit: 'rc.local' });
  if (!r.ok) throw new Error(`expected valid flags, got: ${r.errors.join('; ')}`);
  return r.value;
}
