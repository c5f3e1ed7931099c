import { StoreUnavailableError } from "./errors.js";
import type { LuaScript } from "./scripts.js";

/**
 * The few Redis methods cron-guard calls. `Redis` from `@upstash/redis` satisfies it; so does any
 * adapter that forwards EVAL and EVALSHA.
 */
export interface GuardStore {
  eval<TArgs extends unknown[], TData = unknown>(
    script: string,
    keys: string[],
    args: TArgs,
  ): Promise<TData>;
  evalsha<TArgs extends unknown[], TData = unknown>(
    sha1: string,
    keys: string[],
    args: TArgs,
  ): Promise<TData>;
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.toLowerCase().includes("noscript");
}

/**
 * Runs a script in one round trip: EVALSHA, and EVAL only when Redis does not know the script yet
 * (first use after a restart or SCRIPT FLUSH). Any store failure becomes a StoreUnavailableError.
 */
export async function runScript(
  store: GuardStore,
  script: LuaScript,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  const sha1 = await script.sha1();
  try {
    return await store.evalsha(sha1, keys, args);
  } catch (error) {
    if (!isNoScript(error)) {
      throw new StoreUnavailableError(`${script.name} failed: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }
  try {
    return await store.eval(script.source, keys, args);
  } catch (error) {
    throw new StoreUnavailableError(`${script.name} failed: ${messageOf(error)}`, { cause: error });
  }
}

/**
 * Scripts answer with one JSON document. `@upstash/redis` parses JSON replies by default, other
 * clients (or `automaticDeserialization: false`) hand back the string.
 */
export function decodeReply<T>(reply: unknown): T {
  if (typeof reply === "string") {
    return JSON.parse(reply) as T;
  }
  return reply as T;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
