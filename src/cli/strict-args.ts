// citty ignores flags it does not know, so `tsbal check --confg new.conf` used to check /etc/perlbal/perlbal.conf
// and say "configuration OK". Every command runs through strictCommand, which refuses unknown flags and extra
// positional arguments before the command does anything.
import type { ArgsDef, CommandDef, Resolvable } from 'citty';
import { nearest } from '../config/suggest.ts';

/** Accepted by every command (the README promises them everywhere), even where a command does not list them. */
const GLOBAL_FLAGS: readonly string[] = ['log-level', 'log-format'];

/**
 * The problems with `rawArgs` for a command taking `argsDef`, as messages (empty: fine). Follows citty's parser:
 * `--name`, `--name=value`, `--no-name` for a boolean, `-a` for an alias, a string flag takes the next word as its
 * value unless that starts with `-`, and `--` ends the flags.
 */
export function argProblems(rawArgs: readonly string[], argsDef: ArgsDef): string[] {
  const names = new Map<string, { type: string }>();
  for (const [name, def] of Object.entries(argsDef)) {
    if (def.type === 'positional') continue;
    names.set(name, { type: def.type ?? 'string' });
    const aliases = 'alias' in def ? def.alias : undefined;
    for (const alias of typeof aliases === 'string' ? [aliases] : aliases ?? []) names.set(alias, { type: def.type ?? 'string' });
  }
  for (const g of GLOBAL_FLAGS) if (!names.has(g)) names.set(g, { type: 'string' });
  const positionals = Object.values(argsDef).filter((d) => d.type === 'positional').length;

  const problems: string[] = [];
  const extra: string[] = [];
  let seenPositionals = 0;
  for (let i = 0; i < rawArgs.length; i++) {
    const token = rawArgs[i]!;
    if (token === '--') {
      for (const rest of rawArgs.slice(i + 1)) if (++seenPositionals > positionals) extra.push(rest);
      break;
    }
    if (token.startsWith('-') && token !== '-') {
      const body = token.replace(/^--?/, '');
      const eq = body.indexOf('=');
      const name = eq >= 0 ? body.slice(0, eq) : body;
      const known = names.get(name) ?? (name.startsWith('no-') && names.get(name.slice(3))?.type === 'boolean' ? { type: 'boolean' } : undefined);
      if (known === undefined) {
        const hint = nearest(name, names.keys());
        problems.push(`unknown option ${token.slice(0, eq >= 0 ? token.indexOf('=') : undefined)}${hint === undefined ? '' : ` (did you mean --${hint}?)`}`);
        // Its value, most likely (`--confg FILE`): one message for the typo, not a second for the file.
        if (eq < 0 && rawArgs[i + 1] !== undefined && !rawArgs[i + 1]!.startsWith('-')) i++;
        continue;
      }
      const next = rawArgs[i + 1];
      if (known.type !== 'boolean' && eq < 0 && next !== undefined && !next.startsWith('-')) i++;
      continue;
    }
    if (++seenPositionals > positionals) extra.push(token);
  }
  if (extra.length > 0) problems.push(`unexpected argument${extra.length > 1 ? 's' : ''} ${extra.map((e) => `'${e}'`).join(' ')}`);
  return problems;
}

async function resolve<T>(value: Resolvable<T>): Promise<T> {
  return typeof value === 'function' ? await (value as () => T | Promise<T>)() : value;
}

/** `cmd` with its leaf commands checking their arguments first: a problem exits 2 with `<path>: ...` lines. */
export function strictCommand<T extends ArgsDef>(cmd: CommandDef<T>, path: string): CommandDef<T> {
  if (cmd.subCommands !== undefined) {
    const subs = cmd.subCommands;
    return {
      ...cmd,
      subCommands: async () =>
        Object.fromEntries(
          Object.entries(await resolve(subs)).map(([name, sub]) => [name, async () => strictCommand(await resolve(sub), `${path} ${name}`)]),
        ),
    };
  }
  return {
    ...cmd,
    setup: async (context) => {
      const problems = argProblems(context.rawArgs, await resolve(cmd.args ?? ({} as T)));
      if (problems.length > 0) {
        console.error(`${problems.map((p) => `${path}: ${p}`).join('\n')}\n(see ${path} --help)`);
        process.exit(2);
      }
      await cmd.setup?.(context);
    },
  };
}
