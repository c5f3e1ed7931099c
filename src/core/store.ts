import { messageOf, StoreUnavailableError } from "./errors.js";
import type { LuaScript } from "./guard/scripts.js";

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

/** Per store and script: the EVAL that is loading the script into Redis's cache right now. */
const loadingByStore = new WeakMap<GuardStore, Map<string, Promise<unknown>>>();

/**
 * Runs a script in one round trip: EVALSHA, and EVAL only when Redis does not know the script yet
 * (first use after a restart or SCRIPT FLUSH). Concurrent callers that meet NOSCRIPT together send
 * the script's source once: one EVAL loads it, the others wait for it and repeat their EVALSHA, so an
 * auto-pipelining client never batches hundreds of copies of the source into one oversized request.
 * Any store failure becomes a StoreUnavailableError.
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
    if (!isNoScript(error)) throw storeError(script, error);
  }
  let loading = loadingByStore.get(store);
  if (!loading) {
    loading = new Map();
    loadingByStore.set(store, loading);
  }
  const inFlight = loading.get(sha1);
  if (inFlight) {
    await inFlight.catch(() => undefined);
    try {
      return await store.evalsha(sha1, keys, args);
    } catch (error) {
      if (!isNoScript(error)) throw storeError(script, error);
    }
  }
  const evaluation = store.eval(script.source, keys, args);
  if (!inFlight) {
    const settled = evaluation.catch(() => undefined);
    loading.set(sha1, settled);
    settled.finally(() => {
      if (loading.get(sha1) === settled) loading.delete(sha1);
    });
  }
  try {
    return await evaluation;
  } catch (error) {
    throw storeError(script, error);
  }
}

function storeError(script: LuaScript, error: unknown): StoreUnavailableError {
  return new StoreUnavailableError(`${script.name} failed: ${messageOf(error)}`, {
    cause: error,
    kind: failureKind(error),
  });
}

/** `error` as a StoreUnavailableError (unchanged if it is one), its message prefixed with `what`. */
export function asStoreError(error: unknown, what: string): StoreUnavailableError {
  if (error instanceof StoreUnavailableError) return error;
  return new StoreUnavailableError(`${what} failed: ${messageOf(error)}`, {
    cause: error,
    kind: failureKind(error),
  });
}

/** Redis error replies that mean "not now" rather than "no": the store is busy, loading or failing over. */
const TRANSIENT_REPLY = /^(BUSY|LOADING|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|NOREPLICAS)\b/;
/** A Redis error reply (`ERR ...`, `OOM ...`, `WRONGTYPE ...`) or a refusal of our credentials. */
const REJECTION = /^([A-Z][A-Z_]+ |ERR\b)|^(Unauthorized|WRONGPASS|NOAUTH|NOPERM)/;

/** How @upstash/redis words a failed command of a (possibly automatic) pipeline. */
const PIPELINE_PREFIX = /^Command (\d+ \[ \S+ \] )?failed: /;

/**
 * `rejected` when the store answered with an error reply (it is reachable and said no: out of
 * memory, wrong type, quota, credentials), else `unreachable` (network errors, timeouts, 5xx
 * answers such as the bridge's "Redis unavailable"). The open store policy only covers the latter.
 */
export function failureKind(error: unknown): "unreachable" | "rejected" {
  const message = (error instanceof Error ? error.message : String(error)).replace(
    PIPELINE_PREFIX,
    "",
  );
  if (TRANSIENT_REPLY.test(message)) return "unreachable";
  return REJECTION.test(message) ? "rejected" : "unreachable";
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

export { messageOf } from "./errors.js";
