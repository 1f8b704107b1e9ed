// How Perlbal turns one raw line into a command (Perlbal.pm run_manage_command), step by step:
// strip `#...`, trim and squeeze whitespace, expand `${ip:iface}` then `$NAME`, lowercase up to the first `=`.
import type { CommandEnv } from './state.ts';
import { own } from '../records.ts';

export type PreparedLine =
  | { kind: 'empty' }
  /** `cmd` is what commands parse; `orig` keeps the case as written (LOAD uses it). */
  | { kind: 'command'; word: string; cmd: string; orig: string; warnings: LineWarning[] }
  | { kind: 'error'; message: string; hint?: string };

export interface LineWarning {
  message: string;
  hint?: string;
}

/** Perlbal's `${type:value}`; only `ip:<iface>` exists. Perlbal runs ifconfig; tsbal asks the OS. */
function expandConfigVar(inner: string, env: CommandEnv): { ok: true; value: string } | { ok: false; message: string; hint?: string } {
  const m = /^(\w+):(.+)$/.exec(inner);
  if (!m) return { ok: false, message: `Unknown config variable: ${inner}`, hint: 'the only form is ${ip:IFACE}' };
  const [, type, value] = m;
  if (type !== 'ip') return { ok: false, message: `Unknown config variable type: ${type}`, hint: 'the only form is ${ip:IFACE}' };
  if (!/^\w+$/.test(value!)) return { ok: false, message: `Bogus-looking iface name '${value}'` };
  const address = env.interfaceAddress(value!);
  if (address === null) return { ok: false, message: `Can't find IP of interface '${value}'`, hint: 'the interface must exist and have an IPv4 address' };
  return { ok: true, value: address };
}

export function prepareLine(raw: string, env: CommandEnv): PreparedLine {
  const hash = raw.indexOf('#');
  const orig = (hash >= 0 ? raw.slice(0, hash) : raw).trim().replace(/\s+/g, ' ');
  if (orig === '') return { kind: 'empty' };
  const warnings: LineWarning[] = [];

  let failure: { message: string; hint?: string } | null = null;
  let cmd = orig.replace(/\$\{(.+?)\}/g, (_all, inner: string) => {
    const r = expandConfigVar(inner, env);
    if (r.ok) return r.value;
    failure ??= r.hint === undefined ? { message: r.message } : { message: r.message, hint: r.hint };
    return '';
  });
  if (failure) return { kind: 'error', ...(failure as { message: string; hint?: string }) };

  cmd = cmd.replace(/\$(\w+)/g, (_all, name: string) => {
    const value = own(env.env, name);
    if (value === undefined) {
      warnings.push({ message: `environment variable ${name} is not set; $${name} expands to nothing` });
      return '';
    }
    return value;
  });

  const eq = cmd.indexOf('=');
  cmd = eq < 0 ? cmd.toLowerCase() : cmd.slice(0, eq).toLowerCase() + cmd.slice(eq);
  if (!/^\S/.test(cmd)) return { kind: 'empty' };
  const word = /^(\w+)/.exec(cmd)?.[1];
  if (word === undefined) return { kind: 'error', message: 'invalid command' };
  return { kind: 'command', word, cmd, orig, warnings };
}
