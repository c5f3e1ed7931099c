/*
 * Redundant clocks: which trigger sources delivered each slot of a job, and how each behaves.
 *
 * Recording. A delivery that names its source (`RunOptions.source`: `cloudflare`, `vercel`,
 * `qstash`, `http`, `manual`, `dispatch`, or a pinger's own `[a-z0-9-]{1,32}`) is counted inside
 * the claim's one round trip (CLAIM_SCRIPT, KEYS[7] `<prefix>:{job}:sources`), on wins and skips
 * alike: no extra command. Per slot the record keeps, per source, its deliveries and the lag of
 * its first delivery (the guard's clock at the claim minus the fire time). The last
 * SOURCE_MAX_SLOTS slots are kept (by fire time); the hash expires when idle for the ledger's age
 * bound plus a day.
 *
 * Single flight. Deliveries of one slot from one source inside one isolate share one claim, so
 * they count once per isolate (the shared ones are absorbed before Redis sees them). A delivery
 * from a source the isolate has not yet sent for that slot still goes to Redis, so every source
 * that delivered is recorded.
 *
 * The dispatch tick. Dynamic schedules have no record per schedule: the tick that runs them is
 * the delivery, so each tick records its own source (`recordSource`) under
 * `dispatchSourcesKey(prefix)`, one slot per fire of the dispatch cron (not per schedule's fire).
 *
 * What the record is not: proof of a run (the ledger is), nor replicated by the quorum's repair
 * (a database that lost it starts counting again), nor a count of deliveries that failed before
 * the claim (401, 400, a store outage).
 */
import { ConfigError } from "../errors.js";
import type { ResolvedGuardOptions } from "../options.js";
import { decodeReply, type GuardStore, runScript } from "../store.js";
import { assertJobName, assertPrefix, jobKeys } from "./keys.js";
import { luaScript, RECORD_SOURCE_SCRIPT } from "./scripts.js";

/** Slots the source record keeps per job, at most (the oldest fire times go first). */
export const SOURCE_MAX_SLOTS = 1_000;

const SOURCE_NAME = /^[a-z0-9-]{1,32}$/;

/** Whether `name` can name a trigger source: 1-32 characters of a-z 0-9 -. */
export function isValidSourceName(name: unknown): name is string {
  return typeof name === "string" && SOURCE_NAME.test(name);
}

/** The sources that are not clocks: never reported silent, nor sent to the store only to be recorded. */
const NOT_CLOCKS = new Set(["manual"]);

/** Whether `source` is a clock (anything but a manual backfill). */
export function isClock(source: string): boolean {
  return !NOT_CLOCKS.has(source);
}

/** KEYS: source record. Read-only: every slot's record, as a flat field/value list. */
export const SOURCES_SCRIPT = luaScript(
  "sources",
  `return cjson.encode(redis.call('HGETALL', KEYS[1]))`,
);

/** How one trigger source delivered a job over the recorded slots. */
export interface SourceReport {
  source: string;
  /** Deliveries that reached the store (shared ones in an isolate count once). */
  deliveries: number;
  /** Slots this source delivered at least once. */
  slots: number;
  /** Slots this source delivered before any other source. */
  first: number;
  /** Deliveries beyond the first of their slot (any source's), all absorbed by the claim. */
  duplicates: number;
  /** Median and largest lag of its first delivery of a slot after the fire time, ms. */
  lagMedianMs: number;
  lagMaxMs: number;
  /** The latest slot it delivered, and that slot's fire time (ms since the epoch). */
  lastSlot: string;
  lastSlotMs: number;
  /**
   * Recorded slots later than `lastSlot` that other sources delivered and this one did not: the
   * fires it has been silent for. Always 0 for `manual`, which is no clock.
   */
  silentFires: number;
  /** The first slot of that silence, when silentFires > 0. */
  silentSinceSlot?: string;
}

export interface JobSources {
  job: string;
  /** Slots the report covers (the latest recorded, up to the `slots` asked for). */
  slots: number;
  /** Every source seen in those slots, most deliveries first. */
  sources: SourceReport[];
}

interface SlotRecord {
  slot: string;
  score: number;
  /** In the order the sources first delivered it. */
  entries: { source: string; count: number; lagMs: number }[];
}

function parseRecord(slot: string, raw: string): SlotRecord | undefined {
  const [head, ...parts] = raw.split(";");
  const score = Number(head);
  if (!Number.isFinite(score)) return undefined;
  const entries: SlotRecord["entries"] = [];
  for (const part of parts) {
    const [source, count, lag] = part.split(",");
    if (source && Number.isFinite(Number(count)) && Number.isFinite(Number(lag))) {
      entries.push({ source, count: Number(count), lagMs: Number(lag) });
    }
  }
  return { slot, score, entries };
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : Math.round(((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2);
}

/** The report of `records` (any order): per source, over the slots they hold. */
export function summarizeSources(job: string, records: readonly SlotRecord[]): JobSources {
  const ordered = [...records].sort((a, b) => a.score - b.score);
  const bySource = new Map<string, SourceReport & { lags: number[] }>();
  ordered.forEach((record, index) => {
    record.entries.forEach((entry, position) => {
      let report = bySource.get(entry.source);
      if (!report) {
        report = {
          source: entry.source,
          deliveries: 0,
          slots: 0,
          first: 0,
          duplicates: 0,
          lagMedianMs: 0,
          lagMaxMs: 0,
          lastSlot: record.slot,
          lastSlotMs: record.score,
          silentFires: 0,
          lags: [],
        };
        bySource.set(entry.source, report);
      }
      report.deliveries += entry.count;
      report.slots += 1;
      if (position === 0) report.first += 1;
      report.duplicates += position === 0 ? entry.count - 1 : entry.count;
      report.lags.push(entry.lagMs);
      report.lastSlot = record.slot;
      report.lastSlotMs = record.score;
      report.silentFires = index; // the last index seen; turned into a count below
    });
  });
  const sources = [...bySource.values()].map(({ lags, ...report }) => {
    const lastIndex = report.silentFires;
    const after = ordered.slice(lastIndex + 1);
    const silent = NOT_CLOCKS.has(report.source) ? [] : after;
    return {
      ...report,
      lagMedianMs: median(lags),
      lagMaxMs: lags.length > 0 ? Math.max(...lags) : 0,
      silentFires: silent.length,
      ...(silent[0] ? { silentSinceSlot: silent[0].slot } : {}),
    };
  });
  sources.sort((a, b) => b.deliveries - a.deliveries || a.source.localeCompare(b.source));
  return { job, slots: ordered.length, sources };
}

/**
 * The dispatch tick's source record: `<prefix>:dispatch:sources`. A job's keys always carry its
 * `{job}` hash tag, so no job's record can be this key.
 */
export function dispatchSourcesKey(prefix: string): string {
  assertPrefix(prefix);
  return `${prefix}:dispatch:sources`;
}

export interface SourceDelivery {
  /** The slot delivered (its id, e.g. an ISO fire time). */
  slot: string;
  /** The slot's fire time, ms since the epoch: orders the slots and measures the lag. */
  scoreMs: number;
  /** Who delivered it: `[a-z0-9-]{1,32}`, as isValidSourceName. */
  source: string;
  /** When it was delivered, ms since the epoch (the caller's clock). */
  nowMs: number;
  /** The record forgets itself when idle this long plus a day, ms: the ledger's age bound fits. */
  maxAgeMs: number;
  /** Slots kept, the latest by fire time. Default SOURCE_MAX_SLOTS. */
  maxSlots?: number;
}

/**
 * Records one delivery in the source record at `key`, in one command (RECORD_SOURCE_SCRIPT): what
 * a claim records for a job, for a record no claim writes (the dispatch tick's). A bad source name
 * is a ConfigError before anything is sent; a store failure a StoreUnavailableError.
 */
export async function recordSource(
  store: GuardStore,
  key: string,
  delivery: SourceDelivery,
): Promise<void> {
  const { slot, scoreMs, source, nowMs, maxAgeMs, maxSlots = SOURCE_MAX_SLOTS } = delivery;
  if (!isValidSourceName(source)) {
    throw new ConfigError(
      "source",
      `must be 1-32 characters a-z 0-9 -, got ${JSON.stringify(source)}`,
    );
  }
  for (const [name, value] of Object.entries({ scoreMs, nowMs, maxAgeMs, maxSlots })) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new ConfigError(name, `must be an integer of at least 0, got ${String(value)}`);
    }
  }
  await runScript(
    store,
    RECORD_SOURCE_SCRIPT,
    [key],
    [slot, scoreMs, source, nowMs, maxSlots, maxAgeMs],
  );
}

/**
 * How each trigger source delivered `job` over its latest `slots` recorded slots (default all
 * kept, up to SOURCE_MAX_SLOTS), in one read-only round trip. Empty when no delivery named a
 * source.
 */
export async function readSources(
  config: Pick<ResolvedGuardOptions, "redis" | "prefix">,
  job: string,
  options: { slots?: number } = {},
): Promise<JobSources> {
  assertJobName(job);
  return readSourceRecord(config.redis, jobKeys(config.prefix, job).sources, job, options);
}

/**
 * readSources for any source record: `key` (a job's, or dispatchSourcesKey's), reported under
 * `name`.
 */
export async function readSourceRecord(
  store: GuardStore,
  key: string,
  name: string,
  options: { slots?: number } = {},
): Promise<JobSources> {
  const flat = decodeReply<string[]>(await runScript(store, SOURCES_SCRIPT, [key], []));
  const records: SlotRecord[] = [];
  for (let i = 0; i + 1 < (flat?.length ?? 0); i += 2) {
    const record = parseRecord(String(flat[i]), String(flat[i + 1]));
    if (record) records.push(record);
  }
  records.sort((a, b) => b.score - a.score);
  const limit = options.slots ?? SOURCE_MAX_SLOTS;
  return summarizeSources(name, records.slice(0, Math.max(0, limit)));
}
