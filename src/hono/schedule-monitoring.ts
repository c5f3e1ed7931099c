import { type CronSchedule, nextFireTimes, parseSchedule, slotId } from "../core/cron/index.js";
import type { Guard } from "../core/index.js";
import type { AlertEvent } from "../core/monitoring/alerts.js";
import { monitorJob } from "../core/monitoring/monitor.js";
import type { StoreErrorPolicy } from "../core/options.js";
import type { RegistryEvent, ScheduleView } from "../core/schedules/registry.js";
import type { GuardStore } from "../core/store.js";
import { DISPATCH_RECORD_NAME, readDispatchSources } from "./dispatch-sources.js";
import type {
  MonitoredStatus,
  Monitoring,
  MonitoringCore,
  ScheduleMonitoring,
} from "./monitoring.js";
import type { AppScheduleHandler, Bindings, CronAppOptions } from "./types.js";

type WaitUntil = ((promise: Promise<unknown>) => void) | undefined;

/** Overdue schedules read per page by the periodic check, and status reads in flight at once. */
const OVERDUE_PAGE = 100;
/** Fires one `missed` event of the dispatcher is listed with in its alert, at most. */
const MAX_MISSED_SLOTS = 1_000;
const CHECK_CONCURRENCY = 8;

/** Calls `fn` for each item, at most `limit` at once. */
async function inParallel<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * The monitoring of an app's dynamic schedules (the schedules plug-in's part of monitoring.ts):
 * a schedule's status with its missed and late fires, the dead and missed fires a tick recorded,
 * and the periodic check of overdue schedules and of the dispatch tick's silent sources.
 */
export function scheduleMonitoring(core: MonitoringCore): ScheduleMonitoring {
  const { deployment, options, region, clock } = core;
  const parsed = new Map<string, CronSchedule>();
  const cronOf = (cron: string, timezone: string) => {
    const key = `${timezone} ${cron}`;
    let schedule = parsed.get(key);
    if (!schedule) {
      schedule = parseSchedule(cron, { timezone });
      parsed.set(key, schedule);
    }
    return schedule;
  };
  /** The fires a `missed` event covers (at most MAX_MISSED_SLOTS), from its cron; else its first. */
  const missedSlots = (event: RegistryEvent["event"]): string[] => {
    const firstMs = Date.parse(event.fire);
    const fires = Math.min(event.fires ?? 1, MAX_MISSED_SLOTS);
    if (!Number.isFinite(firstMs) || typeof event.cron !== "string" || fires <= 1) {
      return [event.fire];
    }
    try {
      const cron = cronOf(event.cron, event.timezone ?? "UTC");
      return [firstMs, ...nextFireTimes(cron, firstMs, fires - 1)].map(slotId);
    } catch {
      return [event.fire];
    }
  };

  async function scheduleStatus(
    env: Bindings | undefined,
    schedule: ScheduleView,
    waitUntil?: WaitUntil,
    given?: Guard,
  ): Promise<MonitoredStatus> {
    const guard = given ?? deployment.scheduleGuard(env, "default");
    const status = await monitorJob(guard, schedule.id, cronOf(schedule.cron, schedule.timezone), {
      ...options,
      sinceMs: Math.max(schedule.createdAt, schedule.updatedAt),
    });
    if (!schedule.enabled) status.monitor.missed = [];
    await core.alertMissed(env, "schedule", schedule.id, status.monitor, waitUntil);
    return status;
  }

  return Object.freeze({
    scheduleStatus,

    tickFinished(env, tick, waitUntil) {
      const sender = core.senderFor(env);
      const dynamic = deployment.dynamic;
      if (!sender.enabled || !dynamic || tick.dead + tick.missed === 0) return Promise.resolve();
      const work = (async () => {
        const registry = await dynamic.registry(env);
        const oldestMs = clock() - options.windowMs;
        const events: AlertEvent[] = [];
        // Newest first: enough to reach back past every event this tick recorded (each of its
        // dead fires and missed-fire events is one), and other ticks' on top.
        const recent = Math.min(1_000, 50 + tick.dead + tick.missed);
        for (const { schedule, event } of await registry.events(recent)) {
          const base = { job: schedule, source: "schedule" as const, slot: event.fire, region };
          if (event.kind === "dead") {
            if (!(Date.parse(event.fire) >= oldestMs)) continue;
            events.push({ ...base, kind: "dead", error: event.error, attempts: event.attempts });
            continue;
          }
          // Every missed fire within the window, not only the first: the periodic check does not
          // see them again once the tick moved the schedule on.
          const slots = missedSlots(event).filter((slot) => Date.parse(slot) >= oldestMs);
          if (slots.length > 0) {
            events.push({ ...base, kind: "missed", slot: slots[0] as string, slots });
          }
        }
        await sender.send(events);
      })();
      return core.deliverAlert(work, waitUntil);
    },

    async check(env, nowMs, waitUntil) {
      const { dynamic } = deployment;
      if (!dynamic) return;
      // The dispatch tick's own clocks: a source that stopped sending ticks (same rule as a job's).
      const dispatchSilent = async () => {
        const { sources } = await readDispatchSources(deployment, env);
        await core.alertSilent(env, "dispatch", DISPATCH_RECORD_NAME, sources, waitUntil);
      };
      // Only a schedule whose pending fire is older than the grace period can have missed
      // fires (a tick that settles a fire moves it on): read those, page by page, however
      // many schedules there are. O(overdue), not O(schedules).
      const overdue = async () => {
        const registry = await dynamic.registry(env);
        const beforeMs = nowMs - options.graceMs;
        let cursor: string | undefined;
        do {
          const page = await registry.overdue({ beforeMs, cursor, limit: OVERDUE_PAGE });
          await inParallel(page.schedules, CHECK_CONCURRENCY, (schedule) =>
            scheduleStatus(env, schedule, waitUntil),
          );
          cursor = page.cursor ?? undefined;
        } while (cursor !== undefined);
      };
      await Promise.all([dispatchSilent(), overdue()]);
    },
  } satisfies ScheduleMonitoring);
}

/**
 * The app's schedule handlers, each reporting its own failure (a throw, or a lease lost while it
 * ran) to the deployment's monitoring: the dispatcher's tick only counts failures, it does not
 * say whose.
 */
export function alertingHandlers<TRedis extends GuardStore>(
  options: CronAppOptions<TRedis>,
  monitoring: () => Monitoring,
): CronAppOptions<TRedis> {
  const { handlers } = options;
  if (typeof handlers !== "object" || handlers === null) return options;
  const wrapped: Record<string, AppScheduleHandler<Bindings, TRedis, StoreErrorPolicy>> = {};
  for (const [name, handler] of Object.entries(handlers)) {
    if (typeof handler !== "function") return options;
    wrapped[name] = async (context) => {
      // Never awaited: runFinished hands the alert to the tick's waitUntil (or detaches it), so a
      // slow webhook cannot hold the run, its lease or the tick's budget.
      const report = (error: unknown) =>
        void monitoring().runFinished(
          context.env,
          "schedule",
          {
            status: "failed",
            job: context.job,
            slot: context.slot,
            fence: context.fence,
            durationMs: 0,
            error,
            lockLost: context.signal.aborted,
            unguarded: context.lease === null,
          },
          context.waitUntil,
        );
      let value: unknown;
      try {
        value = await handler(context);
      } catch (error) {
        report(error);
        throw error;
      }
      if (context.signal.aborted) report(context.signal.reason);
      return value;
    };
  }
  return { ...options, handlers: wrapped };
}
