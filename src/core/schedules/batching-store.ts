/*
 * A GuardStore that sends the script calls made in the same turn as one HTTP request.
 *
 * A dispatch tick is budgeted in what the platform limits: subrequests (50 per invocation on
 * Workers Free), where every REST call and every `/pipeline` request is one, whatever it carries.
 * The dispatcher issues its claims (and lookups) of a wave together, then the completions, then the
 * advances; this store turns each group into one request:
 *
 * - Calls are queued and flushed on the next macrotask (`setTimeout(0)`), so every call issued
 *   while the current work and its microtasks run (the guard awaits a few promises before it sends
 *   its claim) lands in the same flush.
 * - A store with `pipeline()` in @upstash/redis's shape (`Redis` from `@upstash/redis`, any
 *   runtime) gets a flush of two or more calls as one `/pipeline` request, executed with
 *   `keepErrors: true`: each call gets its own answer or its own error, worded like @upstash/redis's
 *   automatic pipeline (`Command failed: NOSCRIPT ...`), so runScript's NOSCRIPT fallback and
 *   failureKind read it as they read any pipelined reply. A request that fails as a whole (network,
 *   5xx) fails every call in it, each of which the caller may retry.
 * - Any other store (a quorum, a hand-written adapter, a test wrapper) gets the calls one by one,
 *   as before: each is one request.
 *
 * `requests` counts what went over the wire (flushes, or calls passed through); `calls` the script
 * calls made. The dispatcher budgets a tick in `requests`.
 */

import type { GuardStore } from "../store.js";

/** The part of @upstash/redis's `Pipeline` this store uses. */
interface ScriptPipeline {
  eval(script: string, keys: string[], args: unknown[]): unknown;
  evalsha(sha1: string, keys: string[], args: unknown[]): unknown;
  exec(options: { keepErrors: true }): Promise<unknown>;
}

interface PipelineStore extends GuardStore {
  pipeline(): ScriptPipeline;
}

/** A GuardStore that batches; see the top of this file. */
export interface BatchingStore extends GuardStore {
  /** HTTP requests (or pass-through calls) sent so far. */
  readonly requests: number;
  /** Script calls made so far. */
  readonly calls: number;
  /** True when calls made in one turn share one request. */
  readonly batches: boolean;
}

/** One command of a pipelined request failed (the others may have succeeded). */
export class PipelinedCommandError extends Error {
  override readonly name = "PipelinedCommandError";
}

/** At most this many calls per request: @upstash/redis's own automatic pipeline stops there too. */
const MAX_CALLS_PER_REQUEST = 1_000;

interface Queued {
  method: "eval" | "evalsha";
  scriptOrSha: string;
  keys: string[];
  args: unknown[];
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

function canPipeline(store: GuardStore): store is PipelineStore {
  return typeof (store as Partial<PipelineStore>).pipeline === "function";
}

/** `store` with its calls batched per turn (when it can pipeline) and counted. */
export function batchingStore(store: GuardStore): BatchingStore {
  let requests = 0;
  let calls = 0;
  if (!canPipeline(store)) {
    return {
      batches: false,
      get requests() {
        return requests;
      },
      get calls() {
        return calls;
      },
      eval(script, keys, args) {
        calls += 1;
        requests += 1;
        return store.eval(script, keys, args);
      },
      evalsha(sha1, keys, args) {
        calls += 1;
        requests += 1;
        return store.evalsha(sha1, keys, args);
      },
    };
  }

  let queue: Queued[] = [];
  let scheduled = false;

  const send = async (batch: Queued[]) => {
    requests += 1;
    if (batch.length === 1) {
      const [only] = batch as [Queued];
      try {
        only.resolve(await store[only.method](only.scriptOrSha, only.keys, only.args));
      } catch (error) {
        only.reject(error);
      }
      return;
    }
    let replies: unknown;
    try {
      const pipeline = store.pipeline();
      for (const call of batch) pipeline[call.method](call.scriptOrSha, call.keys, call.args);
      replies = await pipeline.exec({ keepErrors: true });
    } catch (error) {
      for (const call of batch) call.reject(error);
      return;
    }
    batch.forEach((call, index) => {
      const entry = Array.isArray(replies) ? (replies[index] as unknown) : undefined;
      if (typeof entry !== "object" || entry === null) {
        call.reject(new PipelinedCommandError("Command failed: the pipeline answered no entry"));
      } else if ((entry as { error?: unknown }).error) {
        const message = String((entry as { error: unknown }).error);
        call.reject(new PipelinedCommandError(`Command failed: ${message}`));
      } else {
        call.resolve((entry as { result?: unknown }).result);
      }
    });
  };

  const flush = () => {
    scheduled = false;
    const batch = queue;
    queue = [];
    for (let start = 0; start < batch.length; start += MAX_CALLS_PER_REQUEST) {
      void send(batch.slice(start, start + MAX_CALLS_PER_REQUEST));
    }
  };

  const enqueue = (
    method: Queued["method"],
    scriptOrSha: string,
    keys: string[],
    args: unknown[],
  ) => {
    calls += 1;
    return new Promise<unknown>((resolve, reject) => {
      queue.push({ method, scriptOrSha, keys, args, resolve, reject });
      if (!scheduled) {
        scheduled = true;
        setTimeout(flush, 0);
      }
    });
  };

  return {
    batches: true,
    get requests() {
      return requests;
    },
    get calls() {
      return calls;
    },
    eval<TArgs extends unknown[], TData = unknown>(script: string, keys: string[], args: TArgs) {
      return enqueue("eval", script, keys, args) as Promise<TData>;
    },
    evalsha<TArgs extends unknown[], TData = unknown>(sha1: string, keys: string[], args: TArgs) {
      return enqueue("evalsha", sha1, keys, args) as Promise<TData>;
    },
  };
}
