/*
 * Redundant clocks for the dispatch tick: every delivery of a tick (Cloudflare's scheduled event,
 * a GET/POST /dispatch from Vercel, QStash or a pinger) records which source sent it for the
 * dispatch cron's fire time, in `<prefix>:dispatch:sources` (core/guard/sources.ts). One slot per
 * tick minute, not per schedule's fire: the schedules themselves record no source. Imported only
 * by the schedules' (and the dashboard's) code, so a Worker without them does not bundle it.
 */
import { type CronSchedule, parseSchedule, slotFromCron, slotId } from "../core/cron/index.js";
import { messageOf } from "../core/errors.js";
import {
  dispatchSourcesKey,
  type JobSources,
  readSourceRecord,
  recordSource,
} from "../core/guard/sources.js";
import type { ResolvedGuardSettings } from "../core/options.js";
import type { GuardStore } from "../core/store.js";
import type { Deployment } from "./deployment.js";
import type { Bindings } from "./types.js";

/** The name the dispatch tick's record is reported (and alerted) under. */
export const DISPATCH_RECORD_NAME = "dispatch";

const schedules = new Map<string, CronSchedule>();

function dispatchScheduleOf(cron: string): CronSchedule {
  let schedule = schedules.get(cron);
  if (!schedule) {
    schedule = parseSchedule(cron);
    schedules.set(cron, schedule);
  }
  return schedule;
}

/** Who delivered one tick, and for which fire time. */
export interface DispatchDelivery {
  /** `cloudflare`, `vercel`, `qstash`, `http` or a caller's own name (`[a-z0-9-]{1,32}`). */
  source: string;
  /** The scheduled event's time, ms since the epoch; default the app's clock at the tick. */
  firedAtMs?: number;
}

/**
 * The `alongside` of one tick: records its delivery for the dispatch cron's fire time at
 * `firedAtMs` (default now), snapped to the cron with the app's skew tolerance. It rides the
 * tick's store (so its first request when the store pipelines). Never rejects: a failed record is
 * logged, the tick goes on.
 */
export function dispatchRecorder(
  settings: Pick<ResolvedGuardSettings, "clock" | "prefix" | "skewToleranceMs" | "ledgerMaxAgeMs">,
  dispatchCron: string,
  { source, firedAtMs }: DispatchDelivery,
): (store: GuardStore) => Promise<void> {
  return async (store) => {
    try {
      const nowMs = settings.clock();
      const scoreMs = slotFromCron(dispatchScheduleOf(dispatchCron), firedAtMs ?? nowMs, {
        skewToleranceMs: settings.skewToleranceMs,
      });
      await recordSource(store, dispatchSourcesKey(settings.prefix), {
        slot: slotId(scoreMs),
        scoreMs,
        source,
        nowMs,
        maxAgeMs: settings.ledgerMaxAgeMs,
      });
    } catch (error) {
      console.error(
        `cron-guard: dispatch: the tick ran, but its source ${source} was not recorded: ${messageOf(error)}`,
      );
    }
  };
}

/** How each source delivered the dispatch tick, with the dispatch cron; one read-only call. */
export async function readDispatchSources<TRedis extends GuardStore>(
  deployment: Deployment<TRedis>,
  env: Bindings | undefined,
): Promise<{ cron: string; sources: JobSources["sources"] }> {
  const { dynamic, settings } = deployment;
  if (!dynamic) return { cron: "", sources: [] };
  const report = await readSourceRecord(
    deployment.store(env),
    dispatchSourcesKey(settings.prefix),
    DISPATCH_RECORD_NAME,
  );
  return { cron: dynamic.dispatchCron, sources: report.sources };
}
