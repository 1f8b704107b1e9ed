// How to start this program again: the executable and the arguments that come before tsbal's own arguments.
// `--daemon` re-executes itself with it, and `tsbal setup` writes it into the systemd unit. It depends on the runtime
// (Node, Bun, Deno) and on the form tsbal was shipped in (a script, a Node SEA binary, a Bun-compiled binary).

export type RuntimeName = 'node' | 'bun' | 'deno';

export type ProgramForm =
  | 'node-script' // node dist/tsbal.cjs
  | 'node-sea' // dist/tsbal: a Node single executable application (pkg --sea)
  | 'bun-script' // bun src/cli/main.ts, bun dist/tsbal.cjs
  | 'bun-binary' // dist/tsbal-bun: bun build --compile
  | 'deno-script'; // deno run -A src/cli/main.ts, deno run -A dist/tsbal.cjs

/** What the current process reveals about how it was started. */
export interface ProcessFacts {
  execPath: string;
  argv: readonly string[];
  execArgv: readonly string[];
  versions: Readonly<Record<string, string | undefined>>;
  /** node:sea's isSea(); false where node:sea does not exist. */
  isSea: boolean;
}

export interface SelfInvocation {
  runtime: RuntimeName;
  runtimeVersion: string;
  form: ProgramForm;
  /** Executable to spawn. */
  command: string;
  /** Arguments before tsbal's own (empty for the binaries). */
  args: readonly string[];
}

// A Bun-compiled binary runs its embedded entry from Bun's virtual filesystem.
const BUN_EMBEDDED_PREFIXES = ['/$bunfs/', 'B:/~BUN/', 'B:\\~BUN\\'];

// A re-executed child must not fight its parent for the inspector port.
const INHERITABLE_EXEC_ARG = (arg: string): boolean => !/^--(inspect|debug)/.test(arg);

function scriptOf(facts: ProcessFacts): string {
  const script = facts.argv[1];
  if (!script) throw new Error('cannot tell how to start tsbal again: process.argv has no script path');
  return script;
}

/** Pure: how to start this program again, from the facts of the running process. */
export function describeSelf(facts: ProcessFacts): SelfInvocation {
  const { versions } = facts;
  if (versions.deno !== undefined) {
    // Deno does not expose the permission flags it was started with; tsbal needs net, read, write, env and run.
    return {
      runtime: 'deno',
      runtimeVersion: versions.deno,
      form: 'deno-script',
      command: facts.execPath,
      args: ['run', '-A', scriptOf(facts)],
    };
  }
  if (versions.bun !== undefined) {
    const script = scriptOf(facts);
    if (BUN_EMBEDDED_PREFIXES.some((prefix) => script.startsWith(prefix))) {
      return { runtime: 'bun', runtimeVersion: versions.bun, form: 'bun-binary', command: facts.execPath, args: [] };
    }
    return {
      runtime: 'bun',
      runtimeVersion: versions.bun,
      form: 'bun-script',
      command: facts.execPath,
      args: [...facts.execArgv.filter(INHERITABLE_EXEC_ARG), script],
    };
  }
  const nodeVersion = versions.node ?? 'unknown';
  if (facts.isSea) {
    return { runtime: 'node', runtimeVersion: nodeVersion, form: 'node-sea', command: facts.execPath, args: [] };
  }
  return {
    runtime: 'node',
    runtimeVersion: nodeVersion,
    form: 'node-script',
    command: facts.execPath,
    args: [...facts.execArgv.filter(INHERITABLE_EXEC_ARG), scriptOf(facts)],
  };
}

function runningAsNodeSea(): boolean {
  if (process.versions.bun !== undefined || process.versions.deno !== undefined) return false;
  // getBuiltinModule exists from Node 20.16 and 22.3; the SEA binaries are Node 22, so older Nodes run scripts.
  const getBuiltinModule = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  const sea = getBuiltinModule?.('node:sea') as { isSea?: () => boolean } | undefined;
  return sea?.isSea?.() ?? false;
}

export function currentProcessFacts(): ProcessFacts {
  return {
    execPath: process.execPath,
    argv: process.argv,
    execArgv: process.execArgv,
    versions: process.versions,
    isSea: runningAsNodeSea(),
  };
}

/** How to start the running tsbal again: spawn(command, [...args, ...tsbalArgs]). */
export function selfInvocation(): SelfInvocation {
  return describeSelf(currentProcessFacts());
}
