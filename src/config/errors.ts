// Every problem found in a config file carries its location, so users get `file:line: message`.

export interface SourceLocation {
  file: string;
  /** 1-based; 0 when the problem is about the file as a whole (missing, bad permissions). */
  line: number;
}

export type Severity = 'error' | 'warning';

export interface ConfigDiagnostic extends SourceLocation {
  severity: Severity;
  message: string;
  /** A fix to try, e.g. "did you mean persist_backend?" or "run: chmod 600 /etc/ha.d/authkeys". */
  hint?: string;
}

export function formatDiagnostic(d: ConfigDiagnostic): string {
  const where = d.line > 0 ? `${d.file}:${d.line}` : d.file;
  const prefix = d.severity === 'warning' ? 'warning: ' : '';
  return `${where}: ${prefix}${d.message}${d.hint ? ` (${d.hint})` : ''}`;
}

/** Thrown when a config cannot be used; holds every error found, not just the first. */
export class ConfigError extends Error {
  readonly diagnostics: ConfigDiagnostic[];

  constructor(diagnostics: ConfigDiagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
    this.name = 'ConfigError';
    this.diagnostics = diagnostics;
  }

  get file(): string {
    return this.diagnostics[0]?.file ?? '';
  }

  get line(): number {
    return this.diagnostics[0]?.line ?? 0;
  }

  get hint(): string | undefined {
    return this.diagnostics[0]?.hint;
  }
}
