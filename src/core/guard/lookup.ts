import { slotId as isoSlotId } from "../cron/index.js";
import type { ResolvedGuardOptions } from "../options.js";
import { decodeReply, runScript } from "../store.js";
import { assertJobName, assertSlotId, jobKeys } from "./keys.js";
import type { SlotState } from "./result.js";
import { LOOKUP_SCRIPT } from "./scripts.js";
import { slotScore } from "./slot-score.js";

/** One finished run of a slot, as the ledger holds it. */
export interface LedgerRun {
  /**
   * `done`; `failed` (kept failed); `released` (failed, free for a retry); `lost` (the run
   * finished but its lease had run out before it was recorded: it ran, exclusivity unproven).
   */
  outcome: "done" | "failed" | "released" | "lost";
  fence: number;
  /** ISO time the run was recorded. */
  finishedAt: string;
  /** 0 for the first run of the slot, 1 for the next (a retry after `released`, or a forced run). */
  attempt: number;
  /** True when it was started with `force`. */
  forced: boolean;
}

/** What the store knows about one slot of one job. */
export interface SlotLookup {
  job: string;
  slot: string;
  /**
   * `ran`: a run finished successfully (`done`, or `lost`: finished after its lease ran out).
   * `failed`: the last run failed and the slot stays failed (onFailure "keep").
   * `released`: the last run failed and a retry may claim it. `running`: claimed right now.
   * `never`: no run recorded, and the ledger vouches that none happened (within its bounds).
   * `unknown`: no run recorded, but the slot is older than the ledger remembers.
   */
  status: "ran" | "failed" | "released" | "running" | "never" | "unknown";
  /** Every run of the slot the ledger holds, oldest first. */
  runs: LedgerRun[];
  /** The live slot key, while it exists (running, or within its retention), without its token. */
  holder: SlotState | null;
}

interface LookupReply {
  state: SlotState | null;
  runs: unknown;
  vouched: boolean;
}

/** Did `(job, slot)` run, when, with which fence, after which attempts: one read-only round trip. */
export async function lookupSlot(
  config: ResolvedGuardOptions,
  job: string,
  slot: number | Date | string,
): Promise<SlotLookup> {
  assertJobName(job);
  const id =
    typeof slot === "string" ? slot : isoSlotId(slot instanceof Date ? slot.getTime() : slot);
  assertSlotId(id);
  const keys = jobKeys(config.prefix, job);
  const nowMs = config.clock();
  const reply = decodeReply<LookupReply>(
    await runScript(
      config.redis,
      LOOKUP_SCRIPT,
      [keys.slot(id), keys.ledger, keys.fence],
      [id, slotScore(slot, nowMs), nowMs, config.ledgerMaxAgeMs],
    ),
  );
  const runs = (Array.isArray(reply.runs) ? reply.runs : []).map(
    (
      run: { outcome: LedgerRun["outcome"]; fence: number; finishedAt: number; forced: boolean },
      attempt,
    ) => ({
      outcome: run.outcome,
      fence: Number(run.fence),
      finishedAt: new Date(Number(run.finishedAt)).toISOString(),
      attempt,
      forced: run.forced === true,
    }),
  );
  // The claim's token is its lease's secret and the score an internal order: neither is news.
  const {
    token: _token,
    score: _score,
    ...holder
  } = (reply.state ?? {}) as SlotState & {
    score?: number;
  };
  const live = reply.state ? (holder as SlotState) : null;
  return {
    job,
    slot: id,
    status: statusOf(live, runs, reply.vouched === true),
    runs,
    holder: live,
  };
}

function statusOf(
  holder: SlotState | null,
  runs: readonly LedgerRun[],
  vouched: boolean,
): SlotLookup["status"] {
  if (holder?.state === "running") return "running";
  const last = runs[runs.length - 1];
  if (last) return last.outcome === "done" || last.outcome === "lost" ? "ran" : last.outcome;
  if (holder?.state === "released") return "released";
  if (holder?.state === "done") return "ran";
  if (holder?.state === "failed") return "failed";
  return vouched ? "never" : "unknown";
}
