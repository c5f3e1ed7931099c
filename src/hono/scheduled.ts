import { periodMsOf, slotFromCron, slotFromScheduledTime, slotId } from "../core/cron/index.js";
import type { GuardStore } from "../core/store.js";
import { scheduleSignature } from "./cron-signature.js";
import type { Deployment } from "./deployment.js";
import { monitoringOf } from "./monitoring.js";
import type { Bindings, ScheduledEvent, ScheduledRun } from "./types.js";

/**
 * Cloudflare's scheduled() event: runs every job whose cron means `event.cron` for the slot
 * `event.scheduledTime`, and a dispatch tick when it means the app's `dispatchCron` (recorded as
 * delivered by `cloudflare`, see dispatch-sources.ts). A cron that
 * means neither runs nothing and is reported loudly.
 */
export async function runScheduled<TRedis extends GuardStore>(
  deployment: Deployment<TRedis>,
  event: ScheduledEvent,
  env: Bindings,
  waitUntil?: (promise: Promise<unknown>) => void,
): Promise<ScheduledRun[]> {
  const fired = scheduleSignature(event.cron);
  const entries = [...deployment.jobs.values()];
  const due = entries.filter(({ signature }) => fired !== undefined && signature === fired);
  const scheduledMs = slotFromScheduledTime(event.scheduledTime);
  const { dynamic } = deployment;
  const dispatches =
    dynamic !== undefined && fired !== undefined && fired === dynamic.dispatchSignature;
  if (due.length === 0 && !dispatches) {
    const known = entries.map(({ job }) => ({ name: job.name, cron: job.cron }));
    const error = `scheduled cron ${JSON.stringify(event.cron)} matches no job${fired === undefined ? " (it is not a valid 5-field cron expression)" : ""}; nothing ran. Jobs: ${known.map(({ name, cron }) => `${name}: ${cron}`).join(", ") || "none"}. Align the platform's crons (wrangler.toml) with the jobs.`;
    console.error(`cron-guard: ${error}`);
    return [
      {
        job: null,
        slot: slotId(scheduledMs),
        result: { status: "unmatched", cron: event.cron, jobs: known, error },
      },
    ];
  }
  const tick = async (): Promise<ScheduledRun> => {
    const slot = slotId(scheduledMs);
    try {
      const result = await (dynamic as NonNullable<typeof dynamic>).tick(env, waitUntil, {
        source: "cloudflare",
        firedAtMs: scheduledMs,
      });
      return { job: null, slot, result: { status: "dispatched", tick: result } };
    } catch (error) {
      return { job: null, slot, result: { status: "error", error } };
    }
  };
  const jobRuns = Promise.all(
    due.map(async (entry): Promise<ScheduledRun> => {
      let slot = slotId(scheduledMs);
      try {
        const guard = deployment.guard(env, entry);
        // Cloudflare's scheduledTime is the planned fire time, so this keeps it as it is; only an
        // unaligned time (wrangler dev's /__scheduled uses "now") is snapped to the schedule, so a
        // manual trigger of the same minute still finds the slot taken.
        const slotMs = slotFromCron(entry.schedule, scheduledMs, {
          skewToleranceMs: guard.options.skewToleranceMs,
        });
        slot = slotId(slotMs);
        const result = await guard.run(
          entry.job.name,
          slotMs,
          (context) =>
            entry.job.handler({
              ...context,
              redis: deployment.redis(env),
              env,
              trigger: "scheduled",
            }),
          { waitUntil, periodMs: periodMsOf(entry.schedule, slotMs), source: "cloudflare" },
        );
        return { job: entry.job.name, slot, result };
      } catch (error) {
        return { job: entry.job.name, slot, result: { status: "error", error } };
      }
    }),
  );
  const [runs, dispatched] = await Promise.all([jobRuns, dispatches ? tick() : undefined]);
  const monitoring = monitoringOf(deployment);
  await Promise.all([
    ...runs.map(({ result }) =>
      result.status === "failed"
        ? monitoring.runFinished(env, "job", result, waitUntil)
        : undefined,
    ),
    dispatched?.result.status === "dispatched"
      ? monitoring.tickFinished(env, dispatched.result.tick, waitUntil)
      : undefined,
    monitoring.check(env, waitUntil),
  ]);
  return dispatched ? [...runs, dispatched] : runs;
}
