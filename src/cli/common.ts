// Flags every subcommand accepts. citty resolves subcommands before parsing flags,
// so global flags are spread into each command instead of living on the root.
import type { ArgsDef } from 'citty';
import type { LogFile } from '../log-file.ts';
import { configureLogging, log } from '../log.ts';

export const logArgs = {
  'log-level': {
    type: 'string',
    description: 'silent, error, warn, info, debug or trace (env TSBAL_LOG_LEVEL)',
  },
  'log-format': {
    type: 'string',
    description: 'pretty or json (env TSBAL_LOG_FORMAT)',
  },
} as const satisfies ArgsDef;

/** For the long-running commands (run, ha run): log to a file instead of stderr. */
export const logFileArgs = {
  'log-file': {
    type: 'string',
    description: 'append log lines to this file (created 0640; reopened on SIGHUP for logrotate)',
  },
} as const satisfies ArgsDef;

/**
 * A bad --log-level/--log-format (or TSBAL_LOG_LEVEL/TSBAL_LOG_FORMAT) is a usage error (exit 2), not a stack trace;
 * so is a --log-file that cannot be opened (exit 1). Returns the open log file, if any.
 */
export function applyLogArgs(args: { 'log-level'?: string; 'log-format'?: string; 'log-file'?: string }): LogFile | null {
  try {
    configureLogging({ level: args['log-level'], format: args['log-format'] });
  } catch (error) {
    throw new UsageError(`${(error as Error).message} (from --log-level/--log-format or TSBAL_LOG_LEVEL/TSBAL_LOG_FORMAT)`, 2);
  }
  if (args['log-file'] === undefined) return null;
  try {
    return configureLogging({ level: args['log-level'], format: args['log-format'], file: args['log-file'] });
  } catch (error) {
    throw new UsageError(`--log-file: cannot open ${args['log-file']}: ${(error as Error).message}`);
  }
}

/** On SIGHUP, for logrotate. A failed reopen leaves lines going to the old file, and says so there. */
export function reopenLogFile(logFile: LogFile | null): void {
  if (logFile === null) return;
  try {
    logFile.reopen();
  } catch (error) {
    log.error(`SIGHUP: cannot reopen ${logFile.path} (${(error as Error).message}); still logging to the old file`);
  }
}

/** Thrown by commands for errors the user must fix; main prints the message without a stack. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/**
 * Runs a command body; a UsageError becomes `tsbal: <message>` on stderr and its exit code,
 * instead of citty's stack dump. Anything else is a bug and keeps its stack.
 */
export async function guarded(body: () => unknown): Promise<void> {
  try {
    await body();
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`tsbal: ${error.message}`);
      process.exit(error.exitCode);
    }
    throw error;
  }
}
