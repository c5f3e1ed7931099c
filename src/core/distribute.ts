import type { Guard, JobContext } from "./guard.js";
import { assertJobName } from "./keys.js";
import { sleep } from "./sleep.js";

export type Task = string | { readonly id: string };

export interface DistributeOptions {
  /** Tasks this call runs at once. Default 4. */
  concurrency?: number;
  /** Stop taking tasks when it aborts; tasks already started finish. */
  signal?: AbortSignal;
  /**
   * How long to keep waiting for tasks other callers hold, in ms, so that a crashed caller's tasks
   * are taken over when their lease ends. Default: the lease plus 5 s.
   */
  waitMs?: number;
}

export interface DistributeResult {
  /** Tasks this call ran (successfully). */
  ran: number;
  /** Tasks another call had already finished (or kept failed). */
  skipped: number;
  /** Tasks this call ran and that threw. */
  failed: number;
  /** Tasks still held by another call when this one stopped waiting, or not reached (aborted). */
  unfinished: number;
  /** Tasks whose claim could not reach the store. */
  errors: number;
}

const idOf = (task: Task) => (typeof task === "string" ? task : task.id);

/**
 * Shares one slot's tasks among every caller: each call takes the tasks in its own random order
 * and claims them one at a time through the guard (the task id is the job name), so N callers share
 * M tasks and none runs twice. Tasks another caller holds are retried until they are done or their
 * holder's lease runs out (then this call runs them), for at most `waitMs`.
 */
export async function distribute<T extends Task>(
  guard: Guard,
  slot: number | Date | string,
  tasks: readonly T[],
  fn: (task: T, context: JobContext) => unknown,
  options: DistributeOptions = {},
): Promise<DistributeResult> {
  for (const task of tasks) assertJobName(idOf(task));
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${String(concurrency)}`);
  }
  const waitMs = options.waitMs ?? guard.options.leaseMs + 5_000;
  const giveUpAt = Date.now() + waitMs;
  const pollMs = Math.max(50, Math.min(1_000, Math.floor(guard.options.leaseMs / 4)));
  const result: DistributeResult = { ran: 0, skipped: 0, failed: 0, unfinished: 0, errors: 0 };

  let pending = shuffle([...tasks]);
  while (pending.length > 0) {
    const heldElsewhere: T[] = [];
    const queue = [...pending];
    const worker = async () => {
      for (let task = queue.shift(); task !== undefined; task = queue.shift()) {
        if (options.signal?.aborted) {
          heldElsewhere.push(task);
          continue;
        }
        try {
          const outcome = await guard.run(idOf(task), slot, (context) => fn(task, context));
          if (outcome.status === "ran") result.ran += 1;
          else if (outcome.status === "failed") result.failed += 1;
          else if (outcome.reason === "running" || outcome.reason === "overlap") {
            heldElsewhere.push(task);
          } else result.skipped += 1;
        } catch {
          result.errors += 1;
          heldElsewhere.push(task);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
    pending = heldElsewhere;
    if (pending.length === 0 || options.signal?.aborted || Date.now() + pollMs > giveUpAt) break;
    await sleep(pollMs);
  }
  result.unfinished = pending.length;
  return result;
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
