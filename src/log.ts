// One consola instance for the whole process; areas take a tagged child (`log.withTag('proxy')`).
import { formatWithOptions } from 'node:util';
import { createConsola, LogLevels, type ConsolaInstance, type LogObject, type ConsolaReporter } from 'consola';
import { openLogFile, type LogFile } from './log-file.ts';

export type LogFormat = 'pretty' | 'json';
export const LOG_LEVEL_NAMES = ['silent', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevelName = (typeof LOG_LEVEL_NAMES)[number];

const levelNumbers: Record<LogLevelName, number> = {
  silent: LogLevels.silent,
  error: LogLevels.error,
  warn: LogLevels.warn,
  info: LogLevels.info,
  debug: LogLevels.debug,
  trace: LogLevels.trace,
};

export function parseLogLevel(name: string): number {
  const level = levelNumbers[name.toLowerCase() as LogLevelName];
  if (level === undefined) {
    throw new Error(`unknown log level '${name}' (expected one of ${LOG_LEVEL_NAMES.join(', ')})`);
  }
  return level;
}

/** Where reporters write: a stream, or a log file. */
interface LineSink {
  write(text: string): unknown;
}

/** One JSON object per line, for journald or a log shipper. */
function jsonReporter(stream: LineSink): ConsolaReporter {
  return {
    log(entry: LogObject) {
      const [first, ...rest] = entry.args;
      const record: Record<string, unknown> = {
        time: entry.date.toISOString(),
        level: entry.type,
      };
      if (entry.tag) record.tag = entry.tag;
      record.msg = first instanceof Error ? first.message : String(first ?? '');
      if (rest.length > 0) record.args = rest.map((a) => (a instanceof Error ? a.message : a));
      if (first instanceof Error && first.stack) record.stack = first.stack;
      stream.write(JSON.stringify(record) + '\n');
    },
  };
}

// date: false. consola's reporter formats every entry's date with toLocaleTimeString (and shows it only on a
// terminal of 80+ columns): that loads ICU's locale and time zone data, 4 MiB of the executable's pages resident
// for the life of the daemon (bench/proxy/rss.ts). journald and the JSON format stamp lines themselves.
// fancy only on a terminal: off one (journald, a log file, --daemon) its blank lines around every warning and error
// become empty log entries, and its icons noise; the basic reporter writes one `[warn] [proxy] ...` line.
// (A variable, not a literal: TypeScript resolves consola's browser typings, which lack `fancy`; Node's build takes it.)
const consolaOptions = {
  level: LogLevels.info,
  fancy: process.stderr.isTTY === true,
  formatOptions: { date: false, colors: false, compact: true },
};
export const log: ConsolaInstance = createConsola(consolaOptions);

/**
 * The plain format of a non-terminal (`[warn] [proxy] message`), stamped with the time: unlike journald, a file
 * does not stamp lines itself. ISO time in UTC, so no locale data is loaded (see consolaOptions).
 */
export function plainLine(entry: Pick<LogObject, 'date' | 'type' | 'tag' | 'args'>): string {
  const text = formatWithOptions({ colors: false, breakLength: Infinity }, ...entry.args).replace(/\n/g, '\n    ');
  return `${entry.date.toISOString()} [${entry.type}] ${entry.tag ? `[${entry.tag}] ` : ''}${text}\n`;
}

function plainReporter(sink: LineSink): ConsolaReporter {
  return { log: (entry: LogObject) => void sink.write(plainLine(entry)) };
}

/**
 * Applies --log-level/--log-format (or their environment variables) and --log-file. Returns the log file, which the
 * caller reopens on SIGHUP, or null when logging goes to stderr. Throws on a bad level or format, or a file that
 * cannot be opened.
 */
export function configureLogging(options: { level?: string; format?: string; file?: string }): LogFile | null {
  const level = options.level ?? process.env.TSBAL_LOG_LEVEL;
  if (level) log.level = parseLogLevel(level);
  const format = (options.format ?? process.env.TSBAL_LOG_FORMAT ?? 'pretty') as LogFormat;
  if (format !== 'json' && format !== 'pretty') throw new Error(`unknown log format '${format}' (expected pretty or json)`);
  if (options.file !== undefined) {
    const file = openLogFile(options.file);
    log.setReporters([format === 'json' ? jsonReporter(file) : plainReporter(file)]);
    return file;
  }
  if (format === 'json') log.setReporters([jsonReporter(process.stderr)]);
  return null;
}
