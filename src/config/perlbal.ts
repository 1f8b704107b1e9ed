// perlbal.conf: Perlbal 1.80's command language, read into the model the proxy runs.
// The executor (state + executeCommand) is the same one the management port uses; this file adds
// the file loader on top: pure `parsePerlbalConfig` (file access injected) and `loadPerlbalConfig` (disk).
import { networkInterfaces } from 'node:os';
import { posix } from 'node:path';
import type { PerlbalConfig } from './model.ts';
import type { ConfigDiagnostic } from './errors.ts';
import { createDiagnostics, throwIfErrors, type Parsed } from './diagnostics.ts';
import { executeCommand } from './perlbal/execute.ts';
import { checkConfig, snapshot } from './perlbal/finish.ts';
import { memoryConfigFs, nodeConfigFs, tryReadFile, type ConfigFs } from './perlbal/fs.ts';
import { runConfigText } from './perlbal/include.ts';
import { createPerlbalState, type CommandEnv, type PerlbalState } from './perlbal/state.ts';

export { executeCommand, type ExecuteOptions } from './perlbal/execute.ts';
export { createCommandContext, createPerlbalState, type CommandContext, type CommandEnv, type PerlbalState } from './perlbal/state.ts';
export type { CommandHandler, CommandResult, Exec } from './perlbal/result.ts';
export { memoryConfigFs, nodeConfigFs, type ConfigFs } from './perlbal/fs.ts';
export { snapshot as perlbalSnapshot } from './perlbal/finish.ts';
export { stateFromConfig } from './perlbal/resume.ts';

export interface PerlbalParseOptions {
  /** The file name used in messages and as `config.file`. */
  file: string;
  /** For `$NAME` expansion; default: none set. */
  env?: Readonly<Record<string, string | undefined>>;
  /** INCLUDE, nodefile, docroot and other paths; default: an empty tree (nothing exists). */
  fs?: ConfigFs;
  /** Directory relative paths resolve against; default: the directory of `file`. */
  cwd?: string;
  /** `${ip:IFACE}` lookups; default: no interfaces. */
  interfaceAddress?: (iface: string) => string | null;
}

/** The first IPv4 address of an interface, for `${ip:eth0}` (Perlbal parsed ifconfig output, which no longer works). */
export function systemInterfaceAddress(iface: string): string | null {
  const addrs = networkInterfaces()[iface] ?? [];
  return addrs.find((a) => a.family === 'IPv4')?.address ?? null;
}

function commandEnv(options: PerlbalParseOptions): CommandEnv {
  return {
    env: options.env ?? {},
    fs: options.fs ?? memoryConfigFs({}),
    cwd: options.cwd ?? posix.dirname(posix.resolve('/', options.file)),
    interfaceAddress: options.interfaceAddress ?? (() => null),
    includeStack: [],
  };
}

/** A config file run into a live executor state: what `tsbal run` keeps so the management port can change it. */
export interface PerlbalRun extends Parsed<PerlbalConfig> {
  state: PerlbalState;
  env: CommandEnv;
}

/** Runs the file into a fresh state, without throwing: the state, its model, and every error and warning. */
export function runPerlbalConfig(text: string, options: PerlbalParseOptions): PerlbalRun {
  const env = commandEnv(options);
  const state = createPerlbalState();
  const d = createDiagnostics();
  d.list.push(...runConfigText(executeCommand, state, text, options.file, env));
  checkConfig(state, env, d);
  const warnings = [...state.warnings, ...d.list.filter((x) => x.severity === 'warning')];
  const config = snapshot(state, env, options.file, warnings);
  const errors = d.list.filter((x) => x.severity === 'error');
  return { state, env, value: config, diagnostics: [...errors, ...warnings] };
}

/** Parses without throwing: the model as far as it goes, plus every error and warning, in order. */
export function readPerlbalConfig(text: string, options: PerlbalParseOptions): Parsed<PerlbalConfig> {
  const { value, diagnostics } = runPerlbalConfig(text, options);
  return { value, diagnostics };
}

/** Parses perlbal.conf text; throws a ConfigError listing every error. Pure: file access goes through `options.fs`. */
export function parsePerlbalConfig(text: string, options: PerlbalParseOptions): PerlbalConfig {
  const { value, diagnostics } = readPerlbalConfig(text, options);
  throwIfErrors(diagnostics);
  return value;
}

export interface PerlbalLoadOptions {
  env?: Readonly<Record<string, string | undefined>>;
  /** Default: the process's working directory, as Perlbal resolves relative paths. */
  cwd?: string;
}

function readTop(path: string, fs: ConfigFs): string | ConfigDiagnostic {
  const read = tryReadFile(fs, path);
  if ('text' in read) return read.text;
  return { file: path, line: 0, severity: 'error', message: `cannot read config file (${read.code})`, hint: 'give the path with -c' };
}

/** Reads and parses a perlbal.conf from disk (INCLUDEs, nodefiles and docroots too). Throws ConfigError. */
export function loadPerlbalConfig(path: string, options: PerlbalLoadOptions = {}): PerlbalConfig {
  const cwd = options.cwd ?? process.cwd();
  const { value, diagnostics } = readPerlbalConfigFile(path, options);
  throwIfErrors(diagnostics);
  return value;
}

/** As loadPerlbalConfig, without throwing: for `tsbal check`, which prints warnings and errors together. */
export function readPerlbalConfigFile(path: string, options: PerlbalLoadOptions = {}): Parsed<PerlbalConfig> {
  const cwd = options.cwd ?? process.cwd();
  const file = posix.resolve(cwd, path);
  const text = readTop(file, nodeConfigFs);
  if (typeof text !== 'string') return { value: snapshot(createPerlbalState(), commandEnv({ file }), file, []), diagnostics: [text] };
  return readPerlbalConfig(text, { file, env: options.env ?? process.env, fs: nodeConfigFs, cwd, interfaceAddress: systemInterfaceAddress });
}
