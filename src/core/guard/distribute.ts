import { InvalidKeyPartError } from "../errors.js";
import { sleep } from "../sleep.js";
import { assertJobName, isValidJobName } from "./keys.js";
import type { DistributeOptions, DistributeResult, Guard, JobContext, Task } from "./types.js";

/** The workload of a `distribute` call that names none. */
export const DEFAULT_WORKLOAD = "default";

/** Longest key prefix a guard accepts (`PREFIX` in keys.ts). */
const MAX_PREFIX_LENGTH = 64;

const idOf = (task: Task) => (typeof task === "string" ? task : task.id);

/**
 * The key prefix of a workload's tasks: `<prefix>:distribute:<workload>`, so a task's keys are
 * `<prefix>:distribute:<workload>:{<task>}:...`. A job's or schedule's keys are
 * `<prefix>:{<name>}:...` (the hash tag right after the prefix), and a workload cannot contain
 * `:`, `{` or `}`, so no task key is ever a job's key, nor another workload's.
 */
export function workloadPrefix(prefix: string, workload: unknown): string {
  if (typeof workload !== "string" || !isValidJobName(workload)) {
    throw new InvalidKeyPartError(
      "prefix",
      `invalid workload ${JSON.stringify(workload)}: use 1-128 characters of A-Z a-z 0-9 . _ - (like a job name)`,
    );
  }
  const base = `${prefix}:distribute:`;
  if (base.length + workload.length > MAX_PREFIX_LENGTH) {
    throw new InvalidKeyPartError(
      "prefix",
      `workload ${JSON.stringify(workload)} is too long: its tasks' key prefix "${base}<workload>" may have at most ${MAX_PREFIX_LENGTH} characters, so with prefix "${prefix}" a workload has at most ${Math.max(0, MAX_PREFIX_LENGTH - base.length)}`,
    );
  }
  return base + workload;
}

/**
 * Shares one slot's tasks among every caller: each call takes the tasks in its own random order
 * and claims them one at a time (each task id is guarded like a job, in the workload's own key
 * space, see `workloadPrefix`), so N callers share M tasks and none runs twice. Tasks another
 * caller holds are retried until they are done or their holder's lease runs out (then this call
 * runs them), for at most `waitMs`.
 */
export async function distribute<T extends Task>(
  jobGuard: Guard,
  /** Makes the guard the tasks run under (createGuard: passed in, so this module needs no guard.ts). */
  createGuard: (options: Guard["options"]) => Guard,
  slot: number | Date | string,
  tasks: readonly T[],
  fn: (task: T, context: JobContext) => unknown,
  options: DistributeOptions = {},
): Promise<DistributeResult> {
  for (const task of tasks) assertJobName(idOf(task));
  // The same settings and store, another key space: the guard's claim, ledger, heartbeat and
  // failure policy apply to tasks unchanged.
  const guard = createGuard({
    ...jobGuard.options,
    prefix: workloadPrefix(jobGuard.options.prefix, options.workload ?? DEFAULT_WORKLOAD),
  });
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
