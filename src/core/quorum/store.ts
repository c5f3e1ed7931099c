/**
 * The quorum store: a GuardStore over N databases that recognises each script by its SHA1 (or
 * source) in the catalogue of declared scripts (guard/scripts.ts) and merges the databases'
 * answers the way the script declared (`quorum: { merge }`). The catalogue is read at each call,
 * so a module whose scripts are loaded after the store was made is known from then on.
 *
 * A script that declares no merge (one we do not know, e.g. the alert claim): runs on every store;
 * the answer a majority gave identically wins; if a majority answered but they disagree, the answer
 * of the first store (in configuration order) that answered. Fewer answers than a majority is a
 * store error.
 */
import {
  declaredScriptBySha1,
  declaredScriptBySource,
  type LuaScript,
  luaScript,
  type QuorumMerge,
} from "../guard/scripts.js";
import type { GuardStore } from "../store.js";
import { type Answer, ask, gather, isOk } from "./answers.js";
import { claim } from "./claim.js";
import { complete, extend, status, withdraw } from "./complete.js";
import { createQuorum, type Quorum, type QuorumOptions } from "./context.js";
import { events, list } from "./list.js";
import { registryCall } from "./registry.js";

type Merge = (
  q: Quorum,
  script: LuaScript,
  keys: string[],
  args: (string | number)[],
) => Promise<unknown>;

/** Each declared merge's implementation. */
const MERGES: Readonly<Record<QuorumMerge, Merge>> = {
  claim,
  complete,
  extend,
  withdraw,
  status,
  "registry-write": registryCall,
  "registry-read": registryCall,
  "registry-items": registryCall,
  "registry-list": list,
  "registry-events": events,
};

/** A script we do not know: the answer a majority gave identically; else the first store's among a majority. */
async function byMajority(q: Quorum, what: string, calls: Promise<Answer>[]): Promise<unknown> {
  const { majority, quorumError } = q;
  const agreeing = (so: readonly (Answer | undefined)[]) => {
    const groups = new Map<string, { value: unknown; count: number }>();
    for (const answer of so) {
      if (!isOk(answer)) continue;
      const key = JSON.stringify(answer.value) ?? "undefined";
      const group = groups.get(key) ?? { value: answer.value, count: 0 };
      group.count += 1;
      groups.set(key, group);
    }
    return [...groups.values()].find((group) => group.count >= majority);
  };
  const answers = await gather(calls, (so) => agreeing(so) !== undefined);
  const agreed = agreeing(answers);
  if (agreed) return agreed.value;
  if (answers.filter(isOk).length >= majority) {
    return (answers.find(isOk) as { value: unknown }).value;
  }
  if (answers.some((a) => a && !a.ok && a.noScript) && !answers.some(isOk)) {
    // Lets runScript fall back to EVAL with the source, which we then recognise.
    throw new Error(`NOSCRIPT ${what}: no database knows this script`);
  }
  throw quorumError(what, answers);
}

/**
 * A GuardStore over `stores` (odd, >= 3) that needs a majority for every decision. Pass it as the
 * guard's `redis` option. See quorum.ts for how each script is merged.
 */
export function createQuorumStore(stores: GuardStore[], options: QuorumOptions = {}): GuardStore {
  const q = createQuorum(stores, options);
  const { members, onAll, timeoutMs } = q;
  const customBySource = new Map<string, LuaScript>();
  const customBySha = new Map<string, LuaScript>();

  async function dispatch(
    script: LuaScript,
    keys: string[],
    args: (string | number)[],
  ): Promise<unknown> {
    const merge = script.quorum ? MERGES[script.quorum.merge] : undefined;
    if (merge) return merge(q, script, keys, args);
    return byMajority(q, script.name, onAll(script, keys, args));
  }

  const asArgs = (args: unknown[]) =>
    args.map((arg) => (typeof arg === "number" ? arg : String(arg)));

  const store: GuardStore = {
    async eval<TArgs extends unknown[], TData = unknown>(
      source: string,
      keys: string[],
      args: TArgs,
    ): Promise<TData> {
      let script = declaredScriptBySource(source) ?? customBySource.get(source);
      if (!script) {
        const custom = luaScript("script", source);
        customBySource.set(source, custom);
        customBySha.set(await custom.sha1(), custom);
        script = custom;
      }
      return (await dispatch(script, keys, asArgs(args))) as TData;
    },
    async evalsha<TArgs extends unknown[], TData = unknown>(
      sha1: string,
      keys: string[],
      args: TArgs,
    ): Promise<TData> {
      const script = (await declaredScriptBySha1(sha1)) ?? customBySha.get(sha1);
      if (script) return (await dispatch(script, keys, asArgs(args))) as TData;
      const calls = members.map((member, i) =>
        ask(() => member.evalsha(sha1, keys, args), `evalsha on store #${i + 1}`, timeoutMs, true),
      );
      return (await byMajority(q, `script ${sha1}`, calls)) as TData;
    },
  };
  return Object.freeze(store);
}
