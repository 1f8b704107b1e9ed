// Running a config file line by line, and INCLUDE (Include plugin), which runs other files the same way.
import type { ConfigDiagnostic } from '../errors.ts';
import { splitLines } from '../diagnostics.ts';
import { globPattern, MAX_BRACE_EXPANSIONS, tryReadFile } from './fs.ts';
import { err, OK, parseArgs, type CommandHandler, type CommandResult, type ExecuteOptions } from './result.ts';
import { createCommandContext, type CommandContext, type CommandEnv, type PerlbalState } from './state.ts';

export type Execute = (state: PerlbalState, line: string, ctx: CommandContext, options: ExecuteOptions) => CommandResult;

const MAX_INCLUDE_DEPTH = 16;

/**
 * Runs every line of a file in a fresh context (as Perlbal's load_config does) and returns the errors,
 * located. Unlike Perlbal, it does not stop at the first bad line: the line is skipped and reading goes on,
 * so one run reports every problem.
 */
export function runConfigText(execute: Execute, state: PerlbalState, text: string, file: string, env: CommandEnv): ConfigDiagnostic[] {
  state.files.push(file);
  const errors: ConfigDiagnostic[] = [];
  const ctx = createCommandContext('config');
  const inner: CommandEnv = { ...env, includeStack: [...env.includeStack, file] };
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const loc = { file, line: i + 1 };
    const r = execute(state, lines[i]!, ctx, { env: inner, loc });
    if (r.kind !== 'error') continue;
    if (!r.consequence) errors.push(r.hint === undefined ? { ...loc, severity: 'error', message: r.message } : { ...loc, severity: 'error', message: r.message, hint: r.hint });
    if (r.diagnostics) errors.push(...r.diagnostics);
  }
  return errors;
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
};

/** `INCLUDE = <glob> [<glob>...]`: each match is run as its own config file, in order. */
export function makeIncludeHandler(execute: Execute): CommandHandler {
  return (x) => {
    const a = parseArgs(x, /^include\s+=\s+(.+?)\s*$/);
    if (!a) return err('usage: INCLUDE = <config files>', /^include\s*=/.test(x.c.cmd) ? 'put a space on both sides of =' : undefined);
    const errors: ConfigDiagnostic[] = [];
    const home = x.env.env.HOME ?? '/root';
    for (const pattern of a[0]!.split(' ')) {
      const expanded = pattern.replace(/^~(?=\/|$)/, home);
      const paths = globPattern(x.env.fs, expanded, x.env.cwd);
      if (paths === null) return err(`INCLUDE ${pattern} has too many {a,b} alternatives`, `at most ${MAX_BRACE_EXPANSIONS}`);
      if (paths.length === 0) x.warn(`INCLUDE ${pattern} matches no files`);
      if (!pattern.startsWith('/') && !pattern.startsWith('~')) {
        x.warn(`INCLUDE ${pattern} is relative: it is read from ${x.env.cwd} (the working directory)`, 'use an absolute path');
      }
      for (const path of paths) {
        if (x.env.includeStack.includes(path)) {
          return err(`INCLUDE cycle: ${path} is already being read (${[...x.env.includeStack, path].join(' -> ')})`);
        }
        if (x.env.includeStack.length >= MAX_INCLUDE_DEPTH) return err(`INCLUDE nested more than ${MAX_INCLUDE_DEPTH} deep at ${path}`);
        const read = tryReadFile(x.env.fs, path);
        if ('code' in read) return err(`Error opening config file (${path}): ${ERRNO_TEXT[read.code] ?? read.code}`);
        errors.push(...runConfigText(execute, x.state, read.text, path, x.env));
      }
    }
    if (errors.length === 0) return OK;
    return { kind: 'error', message: `errors in included files (${errors.length})`, diagnostics: errors, consequence: true };
  };
}
