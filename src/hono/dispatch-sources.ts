/*
 * Redundant clocks for the dispatch tick: every delivery of a tick (Cloudflare's scheduled event,
 * a GET/POST /dispatch from Vercel, QStash or a pinger) records which source sent it for the
 * dispatch cron's fire time, in `<prefix>:dispatch:sources` (core/guard/sources.ts). One slot per
 * tick minute, not per schedule's fire: the schedules themselves record no source.
 */
import { type CronSchedule, parseSchedule, slotFromCron, slotId } from "../core/cron/index.js";
import { messageOf } from "../core/errors.js";
import {
  dispatchSourcesKey,
  type JobSources,
  readSourceRecord,
  recordSource,
} from "../core/guard/sources.js";
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

/**
 * The `alongside` of one tick: records its delivery by `source` for the dispatch cron's fire
 * time at `firedAtMs` (the scheduled event's time; default the app's clock), snapped to the cron
 * with the deployment's skew tolerance. It rides the tick's store (so its first request when the
 * store pipelines). Never rejects: a failed record is logged, the tick goes on.
 */
export function dispatchRecorder<TRedis extends GuardStore>(
  deployment: Deployment<TRedis>,
  source: string,
  firedAtMs?: number,
): (store: GuardStore) => Promise<void> {
  const { settings, dynamic } = deployment;
  return async (store) => {
    try {
      if (!dynamic) return;
      const nowMs = settings.clock();
      const scoreMs = slotFromCron(dispatchScheduleOf(dynamic.dispatchCron), firedAtMs ?? nowMs, {
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
