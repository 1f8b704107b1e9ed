// Shared assertions for config tests: errors are compared as the exact lines a user would see.
import { expect } from 'bun:test';
import { ConfigError, formatDiagnostic } from '../../src/config/errors.ts';

/** Runs `fn`, expects a ConfigError, and returns its diagnostics formatted as `file:line: message (hint)`. */
export function configErrorLines(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.diagnostics.map(formatDiagnostic);
    throw error;
  }
  throw new Error('expected a ConfigError, but the config was accepted');
}

export function expectConfigError(fn: () => unknown, expected: string[]): void {
  expect(configErrorLines(fn)).toEqual(expected);
}
