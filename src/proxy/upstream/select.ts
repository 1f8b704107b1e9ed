// The one registry of balancing methods (balance_method): config (perlbal options, the model's type), the proxy and
// the management port's SET all take the names from here. A new method is one file in policies/ and one row below.
import type { Selector, UpstreamView } from '../contracts.ts';
import { leastConnPolicy } from './policies/leastconn.ts';
import { randomPolicy } from './policies/random.ts';
import { roundRobinPolicy } from './policies/roundrobin.ts';
import { sourcePolicy } from './policies/source.ts';

type Candidate = Pick<UpstreamView, 'active' | 'weightNow' | 'lbScore'>;

interface PolicyEnv {
  random: () => number;
}

const POLICIES = {
  random: (env: PolicyEnv) => randomPolicy<Candidate>(env.random),
  roundrobin: () => roundRobinPolicy<Candidate>(),
  leastconn: () => leastConnPolicy<Candidate>(),
  source: () => sourcePolicy<Candidate>(),
} satisfies Record<string, (env: PolicyEnv) => Selector<Candidate>>;

export type BalanceMethod = keyof typeof POLICIES;

/** Every balance_method name, Perlbal's `random` first. */
export const BALANCE_METHODS = Object.keys(POLICIES) as readonly BalanceMethod[];

export function isBalanceMethod(name: string): name is BalanceMethod {
  return Object.hasOwn(POLICIES, name);
}

const DEFAULT_ENV: PolicyEnv = { random: Math.random };

/** A fresh policy (its own round-robin position) for one service. */
export function newSelector<U extends Candidate>(method: BalanceMethod, env: PolicyEnv = DEFAULT_ENV): Selector<U> {
  return POLICIES[method](env) as Selector<U>;
}

/**
 * Index-returning form of `select` for the policy tests (a non-empty `candidates`). `random` replaces the source
 * of randomness for this call (only `random` uses one).
 */
export function pick<U extends Candidate>(s: Selector<U>, candidates: readonly U[], random?: () => number): number {
  const policy = random === undefined ? s : newSelector<U>(s.method as BalanceMethod, { random });
  return candidates.indexOf(policy.select(candidates, null)!);
}

/** Compatibility name for tests written against balance.ts. */
export const newBalancer = newSelector;
