// `--help` output. citty colours its usage whenever NO_COLOR is not exactly "1", even into a pipe or a file, so
// `tsbal --help | less` and `tsbal run --help > notes.txt` showed escape codes. Colour only on a terminal, never
// with NO_COLOR set to anything (no-color.org) or TERM=dumb.
import { renderUsage, type ArgsDef, type CommandDef } from 'citty';

// eslint-disable-next-line no-control-regex
const ANSI = /\u001B\[[0-9;]*m/g;

export function wantsColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

/** Flags every command takes, and --version, which citty's usage of the top-level command does not list. */
export const TOP_LEVEL_FOOTER = [
  'GLOBAL OPTIONS (accepted by every command)',
  '',
  '  --log-level LEVEL    silent, error, warn, info, debug or trace (env TSBAL_LOG_LEVEL; default info)',
  '  --log-format FORMAT  pretty or json, one JSON object per line (env TSBAL_LOG_FORMAT; default pretty)',
  '  --version, -v        print the version and exit',
  '  --help, -h           show help (tsbal <command> --help for a command)',
].join('\n');

/** citty's `showUsage`, with colour only where wanted and the global options under the top-level usage. */
export async function showUsage<T extends ArgsDef = ArgsDef>(cmd: CommandDef<T>, parent?: CommandDef<T>): Promise<void> {
  let text = await renderUsage(cmd, parent);
  if (parent === undefined) text += `\n\n${TOP_LEVEL_FOOTER}`;
  console.log(`${wantsColour(process.stdout, process.env) ? text : stripAnsi(text)}\n`);
}
