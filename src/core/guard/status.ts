import type { ResolvedGuardOptions } from "../options.js";
import { decodeReply, runScript } from "../store.js";
import { assertJobName, jobKeys } from "./keys.js";
import type { SlotState } from "./result.js";
import { STATUS_SCRIPT } from "./scripts.js";

export interface JobStatus {
  job: string;
  /** The last fencing token handed out (0 if never claimed). */
  fence: number;
  /** The running claim when `overlap: "skip"` is on. */
  running: SlotState | null;
  /** Latest slots first. */
  slots: { slot: string; state: SlotState | null; ttlMs: number | null }[];
  /** Latest runs first, from the capped history stream. */
  runs: RunRecord[];
  /** When the job first claimed a slot (ms since the epoch), as far as its ledger remembers; null if never. */
  sinceMs: number | null;
}

export interface RunRecord {
  id: string;
  slot: string;
  status: "done" | "failed" | "lost";
  /** True for a run started with `force`. */
  forced: boolean;
  fence: number;
  region: string;
  finishedAt: number;
  durationMs: number;
  summary: string;
}

function asArray<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}

/** The latest slots and runs of a job, in one read-only round trip (STATUS_SCRIPT). */
export async function readStatus(
  config: ResolvedGuardOptions,
  job: string,
  statusOptions: { slots?: number; runs?: number } = {},
): Promise<JobStatus> {
  assertJobName(job);
  const keys = jobKeys(config.prefix, job);
  const reply = decodeReply<{
    slots: unknown;
    runs: unknown;
    running: SlotState | null;
    fence: number;
    since?: number;
  }>(
    await runScript(
      config.redis,
      STATUS_SCRIPT,
      [keys.slotIndex, keys.runs, keys.running, keys.fence, keys.ledger],
      [keys.slotPrefix, statusOptions.slots ?? 5, statusOptions.runs ?? 20],
    ),
  );
  return {
    job,
    fence: Number(reply.fence ?? 0),
    sinceMs: typeof reply.since === "number" ? reply.since : null,
    running: reply.running ?? null,
    slots: asArray<{ slot: string; state?: SlotState; pttl: number }>(reply.slots).map((entry) => ({
      slot: String(entry.slot),
      state: entry.state ?? null,
      ttlMs: entry.pttl >= 0 ? entry.pttl : null,
    })),
    runs: asArray<Record<string, unknown>>(reply.runs).map((entry) => ({
      id: String(entry.id),
      slot: String(entry.slot),
      status: String(entry.status) as RunRecord["status"],
      fence: Number(entry.fence),
      region: String(entry.region ?? ""),
      finishedAt: Number(entry.finishedAt),
      durationMs: Number(entry.durationMs),
      summary: String(entry.summary ?? ""),
      forced: entry.forced === "1",
    })),
  };
}
