// What one command returns: the management port prints these, the file loader turns errors into diagnostics.
import type { ConfigDiagnostic, SourceLocation } from '../errors.ts';
import type { CommandContext, CommandEnv, PerlbalState } from './state.ts';

export type CommandResult =
  | { kind: 'ok' }
  /** Report commands: lines to print (the management port adds the closing `.`). */
  | { kind: 'output'; lines: string[] }
  | {
      kind: 'error';
      message: string;
      hint?: string;
      /** Errors located in other files (an INCLUDE), reported as they are. */
      diagnostics?: ConfigDiagnostic[];
      /** Only a consequence of an earlier error (e.g. SETs after a failed SET role); file loaders omit it. */
      consequence?: boolean;
    };

export const OK: CommandResult = { kind: 'ok' };

export function err(message: string, hint?: string): CommandResult {
  return hint === undefined ? { kind: 'error', message } : { kind: 'error', message, hint };
}

/** An error caused by an earlier one; kept for the management port, left out of file reports. */
export function consequence(message: string): CommandResult {
  return { kind: 'error', message, consequence: true };
}

/** One prepared command line and where it came from. */
export interface Command {
  /** First word, lowercased: `set`, `vhost`, ... */
  word: string;
  /** After comment stripping, expansion and lowercasing up to the first `=`. */
  cmd: string;
  /** As written (case kept), after comment stripping and whitespace squeezing. */
  orig: string;
  loc: SourceLocation;
}

/** Everything a command handler may use. */
export interface Exec {
  state: PerlbalState;
  ctx: CommandContext;
  env: CommandEnv;
  c: Command;
  warn(message: string, hint?: string): void;
}

export type CommandHandler = (x: Exec) => CommandResult;

/** Runs `re` against the command; null means a syntax error with the command's usage text. */
export function parseArgs(x: Exec, re: RegExp): Array<string | undefined> | null {
  const m = re.exec(x.c.cmd);
  return m ? m.slice(1) : null;
}

/** How a line is executed (execute.ts executeCommand; INCLUDE passes it on to the included files). */
export interface ExecuteOptions {
  env: CommandEnv;
  /** Where the line came from (a file and line, or e.g. `{ file: 'management', line: n }`). */
  loc: SourceLocation;
  /** Report commands (show, nodes, ...) the management port implements; they win over the config-file defaults. */
  extraCommands?: Readonly<Record<string, CommandHandler>>;
}
