// Loads /etc/ha.d (ha.cf, authkeys, haresources) the way heartbeat does at startup: the I/O shell
// around the pure parsers, plus the checks that need the file system or more than one file.
import { accessSync, constants, fstatSync, openSync, closeSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { HaConfig, HaDirConfig, HaResources } from './model.ts';
import { createDiagnostics, throwIfErrors, warningsOf, type Diagnostics, type Parsed } from './diagnostics.ts';
import { readHaCf } from './hacf.ts';
import { authkeysModeIsSafe, badPermissionsMessage, readAuthKeys } from './authkeys.ts';
import { readHaResources } from './haresources.ts';

export interface HaDirOptions {
  /**
   * This node's name, which must be a `node` in ha.cf. Undefined: heartbeat's rule (first line of
   * `<dir>/nodeinfo`, else `uname -n`). Null: skip the check (validating another node's files).
   */
  localNode?: string | null;
}

/** heartbeat's local name: the first line of nodeinfo if that file exists, else uname -n; lowercased. */
export function detectLocalNode(dir: string): string {
  try {
    const first = readFileSync(join(dir, 'nodeinfo'), 'utf8').split(/\r?\n/)[0]!.trim();
    if (first !== '') return first.toLowerCase();
  } catch {
    // no nodeinfo: fall back to the host name, as heartbeat does
  }
  return hostname().toLowerCase();
}

function readText(path: string, d: Diagnostics, missing: string, hint: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    d.error({ file: path, line: 0 }, `${missing} (${code})`, hint);
    return null;
  }
}

/** Reads authkeys through one open file, checking the mode on that descriptor like heartbeat's fstat. */
function readAuthkeysFile(path: string, d: Diagnostics): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    d.error({ file: path, line: 0 }, `Cannot open keyfile [${path}] (${code})`, 'create it with: auth 1, then 1 sha1 SomeLongSecret; mode 600');
    return null;
  }
  try {
    const mode = fstatSync(fd).mode & 0o7777;
    if (!authkeysModeIsSafe(mode)) {
      d.error({ file: path, line: 0 }, badPermissionsMessage(path), `it is ${mode.toString(8).padStart(3, '0')}; run: chmod 600 ${path}`);
    }
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Checks between the files, and against the system, that heartbeat makes at startup. */
function crossCheck(hacf: HaConfig, haresources: HaResources, d: Diagnostics): void {
  const nodes = new Set(hacf.nodes);
  for (const g of haresources.groups) {
    if (!nodes.has(g.node)) {
      d.error(g.loc, `Bad nodename in haresources [${g.node}]`, hacf.nodes.length > 0 ? `ha.cf nodes: ${hacf.nodes.join(', ')}` : 'ha.cf lists no nodes');
    }
  }
  for (const r of hacf.respawn) {
    const path = r.command.split(/\s+/)[0]!;
    try {
      accessSync(path, constants.X_OK);
    } catch {
      d.error(r.loc, `Client child command [${path}] is not executable`);
    }
  }
}

/**
 * Loads and checks `<dir>/ha.cf`, `authkeys` and `haresources`. Throws one ConfigError listing every
 * error in all three files; warnings are returned in `warnings`.
 */
export function loadHaDir(dir: string, options: HaDirOptions = {}): HaDirConfig {
  const { value, diagnostics } = readHaDir(dir, options);
  throwIfErrors(diagnostics);
  return value;
}

/** As loadHaDir, without throwing: the model as far as it goes, and every error and warning. */
export function readHaDir(dir: string, options: HaDirOptions = {}): Parsed<HaDirConfig> {
  const d = createDiagnostics();
  const hacfPath = join(dir, 'ha.cf');
  const authPath = join(dir, 'authkeys');
  const resPath = join(dir, 'haresources');
  const localNode = options.localNode === undefined ? detectLocalNode(dir) : options.localNode;

  const hacfText = readText(hacfPath, d, `cannot read ${hacfPath}`, 'heartbeat needs ha.cf with node and media lines');
  const hacfParsed = readHaCf(hacfText ?? '', hacfPath, localNode === null ? {} : { localNode });
  if (hacfText !== null) d.list.push(...hacfParsed.diagnostics);

  const authText = readAuthkeysFile(authPath, d);
  const authParsed = readAuthKeys(authText ?? '', authPath);
  if (authText !== null) d.list.push(...authParsed.diagnostics);

  let resText: string | null = null;
  try {
    resText = readFileSync(resPath, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    d.warn({ file: resPath, line: 0 }, `no haresources (${code}): this node will hold no resources and no VIP`);
  }
  const resParsed = readHaResources(resText ?? '', resPath);
  d.list.push(...resParsed.diagnostics);

  if (hacfText !== null) crossCheck(hacfParsed.value, resParsed.value, d);
  const value: HaDirConfig = {
    dir,
    hacf: hacfParsed.value,
    authkeys: authParsed.value,
    haresources: resParsed.value,
    warnings: warningsOf(d.list),
  };
  return { value, diagnostics: d.list };
}
