/*
 * The guard's shared types: what a job receives and returns, the run options, the Guard itself and
 * distribute's options. Their own module, so the parts of a run (claim, claimed run, unclaimed
 * runs, distribute) import types without importing the orchestrator that imports them.
 */
import type { ResolvedGuardOptions, StoreErrorPolicy } from "../options.js";
import type { Lease } from "./lease.js";
import type { SlotLookup } from "./lookup.js";
import type { GuardResult } from "./result.js";
import type { JobStatus } from "./status.js";

/**
 * The fencing token's type under a store error policy: a job only ever runs without a claim (and
 * so without a fence) under `onStoreError: "open"`; under `"closed"`, the default, it is a number.
 */
export type FenceOf<TPolicy extends StoreErrorPolicy> = TPolicy extends "closed"
  ? number
  : number | null;

/**
 * What the job receives. `TFence` is `number` for a guard created with `onStoreError: "closed"`
 * (the default), `number | null` when it may run unguarded.
 */
export interface JobContext<TFence extends number | null = number | null> {
  /** Aborted with a LockLostError when the lease is lost; pass it to fetch() and friends. */
  signal: AbortSignal;
  job: string;
  slot: string;
  /** Fencing token of the claim: strictly increases across a job's claims. */
  fence: TFence;
  /** The claim; null only when the job runs unguarded (store down, `onStoreError: "open"`). */
  lease: TFence extends number ? Lease : Lease | null;
}

/** The work a guard runs once per slot. */
export type JobFunction<T, TFence extends number | null = number | null> = (
  context: JobContext<TFence>,
) => T | Promise<T>;

export interface RunOptions {
  /** Platform hook that keeps the isolate alive until the run is recorded (ctx.waitUntil). */
  waitUntil?: (promise: Promise<unknown>) => void;
  /** The enclosing run's lease: guarding the same job and slot again re-enters instead of skipping. */
  lease?: Lease | null;
  /** The schedule's period in ms, used for the default retention. */
  periodMs?: number;
  /**
   * Runs the slot even though it already ran (or failed, or is older than the ledger can vouch
   * for), recorded as forced; never while another claim runs it. For deliberate re-runs only.
   */
  force?: boolean;
  /**
   * Which trigger source delivered this run (`[a-z0-9-]{1,32}`, e.g. `cloudflare`, `vercel`,
   * `qstash`): recorded per slot inside the claim's round trip (see sources.ts). Default none:
   * nothing is recorded.
   */
  source?: string;
}

/**
 * A guard. `TPolicy` is its `onStoreError` policy as the compiler knows it: `createGuard` infers it
 * from the options, so a guard created with the default (`"closed"`) hands its jobs a `number`
 * fence. `Guard` alone accepts any guard.
 */
export interface Guard<TPolicy extends StoreErrorPolicy = StoreErrorPolicy> {
  readonly options: ResolvedGuardOptions & { readonly onStoreError: TPolicy };
  /**
   * Runs `fn` once for `(job, slot)` across every instance. `slot` is a fire time (ms or Date) or a
   * slot id string. Resolves to ran / skipped / failed; throws only on invalid input
   * (InvalidKeyPartError) and, with `onStoreError: "closed"`, StoreUnavailableError.
   */
  run<T>(
    job: string,
    slot: number | Date | string,
    fn: JobFunction<T, FenceOf<TPolicy>>,
    options?: RunOptions,
  ): Promise<GuardResult<T, FenceOf<TPolicy>>>;
  /** The latest slots and runs of a job, in one round trip. */
  status(job: string, options?: { slots?: number; runs?: number }): Promise<JobStatus>;
  /** Whether one slot ran, when, with which fence, after which attempts (the slot ledger). */
  lookup(job: string, slot: number | Date | string): Promise<SlotLookup>;
  /**
   * Shares a slot's tasks among every instance that calls this with the same workload and list:
   * each task runs once, the work spreads over the callers, and tasks of a caller that crashed are
   * taken over when their lease ends. Tasks are claimed under `<prefix>:distribute:<workload>`
   * (option `workload`, default "default"), apart from jobs, schedules and other workloads. See
   * DistributeResult and docs/distribute.md.
   */
  distribute<T extends Task>(
    slot: number | Date | string,
    tasks: readonly T[],
    fn: (task: T, context: JobContext<FenceOf<TPolicy>>) => unknown,
    options?: DistributeOptions,
  ): Promise<DistributeResult>;
}

export type Task = string | { readonly id: string };

export interface DistributeOptions {
  /**
   * Which list of tasks this is, e.g. `"daily-digest"`: callers with the same workload share its
   * tasks, other workloads over the same task ids and slot are independent, and no workload
   * touches a job or schedule of the same name as a task. `[A-Za-z0-9._-]`, and at most
   * 64 - (prefix length + 12) characters, as its tasks' keys live under
   * `<prefix>:distribute:<workload>` (42 with the default prefix). Default `"default"`: give one
   * whenever a deployment distributes more than one list.
   */
  workload?: string;
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
