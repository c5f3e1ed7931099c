import { ConfigError, type InvalidKeyPartError } from "./errors.js";
import { assertPrefix } from "./guard/keys.js";
import type { GuardStore } from "./store.js";

export type FailurePolicy = "release" | "keep";
export type StoreErrorPolicy = "closed" | "open";
export type OverlapPolicy = "allow" | "skip";

export interface GuardOptions {
  /** The store: `new Redis({ url, token })` from `@upstash/redis`, or anything with `eval`/`evalsha`. */
  redis: GuardStore;
  /**
   * Namespace of every key, like ShedLock's environment. Default `"cron-guard"`. Give staging and
   * production different prefixes when they share a database.
   */
  prefix?: string;
  /**
   * Lease (ShedLock's lockAtMostFor), in ms: how long a holder that crashed keeps the slot before
   * another instance may run it. Default 60 000. Jobs longer than this stay covered by the heartbeat.
   */
  leaseMs?: number;
  /**
   * How long a finished slot stays recorded, in ms (ShedLock's lockAtLeastFor): duplicates that
   * arrive within it are skipped as `done`. Default: max(leaseMs, the schedule's period, 60 000).
   */
  retentionMs?: number;
  /**
   * Interval of lease extensions while the job runs, in ms; 0 turns the heartbeat off.
   * Default leaseMs / 3, so two extensions can fail before the lease runs out.
   */
  heartbeatMs?: number;
  /**
   * How far an instance's clock may be off when a slot is derived from a cron expression, in ms.
   * Default 5 000. Must stay under half the schedule's period.
   */
  skewToleranceMs?: number;
  /**
   * What a thrown job leaves behind. `"release"` (default): the slot is freed so a retry may run it
   * (at-least-once). `"keep"`: the slot stays `failed` for the retention (at-most-once).
   */
  onFailure?: FailurePolicy;
  /**
   * What happens when the store cannot be reached. `"closed"` (default): do not run, throw
   * StoreUnavailableError (HTTP 503). `"open"`: run unguarded and say so in the result.
   */
  onStoreError?: StoreErrorPolicy;
  /**
   * `"skip"`: a slot is skipped while an earlier slot of the same job still runs (Laravel's
   * withoutOverlapping). Default `"allow"`.
   */
  overlap?: OverlapPolicy;
  /** Current time in ms since the epoch. Default `Date.now`. Inject it in tests. */
  clock?: () => number;
  /** Label of this instance recorded with each claim (e.g. `"fra1"`, `"cf:ams"`). Default `""`. */
  region?: string;
  /** Runs kept in the job's history stream (XADD MAXLEN ~). Default 100. */
  historyLength?: number;
  /**
   * How long the slot ledger remembers a finished slot, in ms, counted from the slot's fire time.
   * Within it a slot that ran is `done` however late a delivery, catch-up or backfill comes;
   * a slot older than this cannot be vouched for, so it runs only with `force`. Default
   * 604 800 000 (7 days): catch-up windows and everyday backfills of daily jobs.
   */
  ledgerMaxAgeMs?: number;
  /**
   * How many finished slots the ledger keeps per job, at most (the oldest go first; slots at or
   * before an evicted one cannot be vouched for). About 100 bytes of Redis memory each, so the
   * default 1 000 (16 hours of an every-minute job, all 7 days of an hourly one) is at most
   * 100 KB per job: a thousand every-minute schedules take 100 MB.
   */
  ledgerMaxSlots?: number;
}

export interface ResolvedGuardOptions {
  readonly redis: GuardStore;
  readonly prefix: string;
  readonly leaseMs: number;
  readonly retentionMs: number | undefined;
  readonly heartbeatMs: number;
  readonly skewToleranceMs: number;
  readonly onFailure: FailurePolicy;
  readonly onStoreError: StoreErrorPolicy;
  readonly overlap: OverlapPolicy;
  readonly clock: () => number;
  readonly region: string;
  readonly historyLength: number;
  readonly ledgerMaxAgeMs: number;
  readonly ledgerMaxSlots: number;
}

const DAY_MS = 86_400_000;
/** The namespace of every key unless `prefix` says otherwise. */
export const DEFAULT_PREFIX = "cron-guard";
export const DEFAULT_LEASE_MS = 60_000;
export const MIN_RETENTION_MS = 60_000;
export const DEFAULT_LEDGER_MAX_AGE_MS = 7 * DAY_MS;
export const DEFAULT_LEDGER_MAX_SLOTS = 1_000;

function integerIn(option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(
      option,
      `must be an integer from ${min} to ${max} (milliseconds where the name says Ms), got ${String(value)}`,
    );
  }
  return value;
}

function oneOf<T extends string>(option: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new ConfigError(
      option,
      `must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}, got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

function hasStoreMethods(redis: unknown): redis is GuardStore {
  const candidate = redis as Partial<GuardStore> | null;
  return (
    typeof candidate === "object" &&
    candidate !== null &&
    typeof candidate.eval === "function" &&
    typeof candidate.evalsha === "function"
  );
}

/** Every option but the store. */
export type GuardSettings = Omit<GuardOptions, "redis">;
export type ResolvedGuardSettings = Omit<ResolvedGuardOptions, "redis">;

/** Validates once and freezes. Every problem is a ConfigError naming the option. */
export function resolveGuardOptions(options: GuardOptions): ResolvedGuardOptions {
  assertOptionsObject(options);
  if (!hasStoreMethods(options.redis)) {
    throw new ConfigError(
      "redis",
      "must be a Redis client with eval() and evalsha(), e.g. new Redis({ url, token }) from @upstash/redis",
    );
  }
  return Object.freeze({ redis: options.redis, ...resolveGuardSettings(options) });
}

/**
 * Validates every option but `redis` and freezes them, for callers that build the store later
 * (from a platform's environment) but must reject bad options at once.
 */
export function resolveGuardSettings(options: GuardSettings): ResolvedGuardSettings {
  assertOptionsObject(options);
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  try {
    assertPrefix(prefix);
  } catch (error) {
    throw new ConfigError("prefix", (error as InvalidKeyPartError).message, { cause: error });
  }
  const leaseMs = integerIn("leaseMs", options.leaseMs ?? DEFAULT_LEASE_MS, 100, DAY_MS);
  const retentionMs =
    options.retentionMs === undefined
      ? undefined
      : integerIn("retentionMs", options.retentionMs, 1, 366 * DAY_MS);
  const heartbeatMs = integerIn(
    "heartbeatMs",
    options.heartbeatMs ?? Math.floor(leaseMs / 3),
    0,
    leaseMs - 1,
  );
  if (heartbeatMs !== 0 && heartbeatMs < 10) {
    throw new ConfigError("heartbeatMs", `must be 0 (off) or at least 10, got ${heartbeatMs}`);
  }
  const skewToleranceMs = integerIn("skewToleranceMs", options.skewToleranceMs ?? 5_000, 0, DAY_MS);
  const clock = options.clock ?? Date.now;
  if (typeof clock !== "function") {
    throw new ConfigError("clock", "must be a function returning ms since the epoch");
  }
  const region = options.region ?? "";
  if (typeof region !== "string" || region.length > 64) {
    throw new ConfigError("region", "must be a string of at most 64 characters");
  }
  return Object.freeze({
    prefix,
    leaseMs,
    retentionMs,
    heartbeatMs,
    skewToleranceMs,
    onFailure: oneOf("onFailure", options.onFailure ?? "release", ["release", "keep"] as const),
    onStoreError: oneOf("onStoreError", options.onStoreError ?? "closed", [
      "closed",
      "open",
    ] as const),
    overlap: oneOf("overlap", options.overlap ?? "allow", ["allow", "skip"] as const),
    clock,
    region,
    historyLength: integerIn("historyLength", options.historyLength ?? 100, 1, 100_000),
    ledgerMaxAgeMs: integerIn(
      "ledgerMaxAgeMs",
      options.ledgerMaxAgeMs ?? DEFAULT_LEDGER_MAX_AGE_MS,
      60_000,
      366 * DAY_MS,
    ),
    ledgerMaxSlots: integerIn(
      "ledgerMaxSlots",
      options.ledgerMaxSlots ?? DEFAULT_LEDGER_MAX_SLOTS,
      1,
      1_000_000,
    ),
  });
}

function assertOptionsObject(options: unknown): void {
  if (typeof options !== "object" || options === null) {
    throw new ConfigError("options", "createGuard needs an options object with at least `redis`");
  }
}

/** ShedLock's lockAtLeastFor: max(lease, period, 1 min) unless the caller chose a retention. */
export function effectiveRetentionMs(options: ResolvedGuardOptions, periodMs?: number): number {
  return options.retentionMs ?? Math.max(options.leaseMs, periodMs ?? 0, MIN_RETENTION_MS);
}

/**
 * Runs `validate`; a ConfigError it throws comes back with `where` (e.g. `job "nightly"`) in its
 * message, still naming the same option.
 */
export function configErrorIn<T>(where: string, validate: () => T): T {
  try {
    return validate();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const head = `${error.option}: `;
    const detail = error.message.startsWith(head)
      ? error.message.slice(head.length)
      : error.message;
    throw new ConfigError(error.option, `${where}: ${detail}`, { cause: error });
  }
}
