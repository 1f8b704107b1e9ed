// Flags every subcommand accepts. citty resolves subcommands before parsing flags,
// so global flags are spread into each command instead of living on the root.
import type { ArgsDef } from 'citty';
import { configureLogging } from '../log.ts';

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

/** A bad --log-level/--log-format (or TSBAL_LOG_LEVEL/TSBAL_LOG_FORMAT) is a usage error (exit 2), not a stack trace. */
export function applyLogArgs(args: { 'log-level'?: string; 'log-format'?: string }): void {
  try {
    configureLogging({ level: args['log-level'], format: args['log-format'] });
  } catch (error) {
    throw new UsageError(`${(error as Error).message} (from --log-level/--log-format or TSBAL_LOG_LEVEL/TSBAL_LOG_FORMAT)`, 2);
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
