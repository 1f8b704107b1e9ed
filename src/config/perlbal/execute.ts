// The command executor shared by config files and the management port: one line in, one result out.
import type { SourceLocation } from '../errors.ts';
import { didYouMean } from '../suggest.ts';
import { BUILTIN_COMMANDS, REPORT_COMMANDS } from './commands.ts';
import { makeIncludeHandler } from './include.ts';
import { prepareLine } from './line.ts';
import { PLUGIN_COMMAND_HANDLERS } from './plugincommands.ts';
import { PLUGIN_COMMANDS } from './plugins.ts';
import { err, OK, type CommandHandler, type CommandResult, type Exec, type ExecuteOptions } from './result.ts';
import type { CommandContext, CommandEnv, PerlbalState } from './state.ts';
import { own } from '../records.ts';

export type { ExecuteOptions };

/** INCLUDE runs the executor on other files, so it is built from it rather than importing it. */
const include: CommandHandler = makeIncludeHandler((...args) => executeCommand(...args));

const NOTHING: CommandResult = { kind: 'output', lines: [] };

function reportInConfigFile(x: Exec): CommandResult {
  x.warn(`${x.c.word} is a management-port report; ignored in a config file`);
  return OK;
}

/**
 * Runs one line (comment and whitespace rules, `$ENV` expansion, lowercasing, dispatch) against `state`.
 * Warnings go to `state.warnings`; the result says ok, output lines, or the error.
 */
export function executeCommand(state: PerlbalState, line: string, ctx: CommandContext, options: ExecuteOptions): CommandResult {
  const prepared = prepareLine(line, options.env);
  if (prepared.kind === 'empty') return NOTHING;
  if (prepared.kind === 'error') return prepared.hint === undefined ? err(prepared.message) : err(prepared.message, prepared.hint);
  const { loc } = options;
  const warn = (message: string, hint?: string) => {
    state.warnings.push(hint === undefined ? { ...loc, severity: 'warning', message } : { ...loc, severity: 'warning', message, hint });
  };
  for (const w of prepared.warnings) warn(w.message, w.hint);
  const x: Exec = { state, ctx, env: options.env, c: { word: prepared.word, cmd: prepared.cmd, orig: prepared.orig, loc }, warn };
  const word = prepared.word;

  const builtin = own(BUILTIN_COMMANDS, word);
  if (builtin) return builtin(x);

  const plugin = own(PLUGIN_COMMANDS, word);
  if (plugin !== undefined) {
    if (!state.loadedPlugins.includes(plugin)) return err(`unknown command: ${word}`, `LOAD ${plugin} first`);
    const extraHandler = options.extraCommands ? own(options.extraCommands, word) : undefined;
    const handler = extraHandler ?? (word === 'include' ? include : own(PLUGIN_COMMAND_HANDLERS, word));
    if (handler) return handler(x);
    return ctx.mode === 'config' ? reportInConfigFile(x) : err(`unknown command: ${word}`);
  }

  const extra = options.extraCommands ? own(options.extraCommands, word) : undefined;
  if (extra) return extra(x);
  if (REPORT_COMMANDS.includes(word)) return ctx.mode === 'config' ? reportInConfigFile(x) : err(`${word} is not available`);

  const words = [...Object.keys(BUILTIN_COMMANDS), ...REPORT_COMMANDS, ...Object.keys(PLUGIN_COMMANDS)];
  return err(`unknown command: ${word}`, didYouMean(word, words));
}
