// A collector that parsers report into, so one pass finds every problem and the caller
// decides whether to throw (files) or answer `ERROR:` (management port).
import { ConfigError, type ConfigDiagnostic, type SourceLocation } from './errors.ts';

export interface Diagnostics {
  readonly list: ConfigDiagnostic[];
  error(loc: SourceLocation, message: string, hint?: string): void;
  warn(loc: SourceLocation, message: string, hint?: string): void;
}

export function createDiagnostics(list: ConfigDiagnostic[] = []): Diagnostics {
  const add = (severity: 'error' | 'warning', loc: SourceLocation, message: string, hint?: string) => {
    const d: ConfigDiagnostic = { file: loc.file, line: loc.line, severity, message };
    if (hint !== undefined) d.hint = hint;
    list.push(d);
  };
  return {
    list,
    error: (loc, message, hint) => add('error', loc, message, hint),
    warn: (loc, message, hint) => add('warning', loc, message, hint),
  };
}

/** A parse outcome that has not been judged yet: the model as far as it could be built, and what was found. */
export interface Parsed<T> {
  value: T;
  diagnostics: ConfigDiagnostic[];
}

export function errorsOf(list: readonly ConfigDiagnostic[]): ConfigDiagnostic[] {
  return list.filter((d) => d.severity === 'error');
}

export function warningsOf(list: readonly ConfigDiagnostic[]): ConfigDiagnostic[] {
  return list.filter((d) => d.severity === 'warning');
}

/** Throws one ConfigError holding every error (warnings are not thrown; the model keeps them). */
export function throwIfErrors(list: readonly ConfigDiagnostic[]): void {
  const errors = errorsOf(list);
  if (errors.length > 0) throw new ConfigError(errors);
}

/** Splits text into lines the way every format here reads them: LF, CRLF or lone CR. */
export function splitLines(text: string): string[] {
  return text.split(/\r\n|\n|\r/);
}
