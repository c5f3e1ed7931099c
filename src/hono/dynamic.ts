import { parseSchedule } from "../core/cron/index.js";
import { ConfigError } from "../core/errors.js";
import { isValidJobName } from "../core/guard/keys.js";
import { configErrorIn, type ResolvedGuardSettings } from "../core/options.js";
import {
  createDispatcher,
  type ScheduleHandler,
  type TickResult,
} from "../core/schedules/dispatch.js";
import { createScheduleRegistry, type ScheduleRegistry } from "../core/schedules/registry.js";
import type { GuardStore } from "../core/store.js";
import { scheduleSignature } from "./cron-signature.js";
import { type DispatchDelivery, dispatchRecorder } from "./dispatch-sources.js";
import type { Bindings, CronAppOptions } from "./types.js";

/** The app's dynamic schedules: registry and dispatcher over the deployment's store, per env. */
export interface DynamicSchedules<TRedis extends GuardStore> {
  /** Canonical form of `dispatchCron`, to match scheduled events by meaning. */
  readonly dispatchSignature: string | undefined;
  readonly dispatchCron: string;
  /** The registry, once the schedules declared in code are in it (upserted once per env). */
  registry(env: Bindings | undefined): Promise<ScheduleRegistry>;
  /**
   * One tick. `delivery`: who sent it, recorded beside the tick's first request in the dispatch
   * tick's source record (dispatch-sources.ts); a failed record is logged, the tick runs anyway.
   */
  tick(
    env: Bindings | undefined,
    waitUntil?: (promise: Promise<unknown>) => void,
    delivery?: DispatchDelivery,
  ): Promise<TickResult>;
  /** Only so the routes can type the store. */
  readonly store?: TRedis;
}

/** undefined when the app registers no handlers (no /schedules, no /dispatch). */
export function createDynamicSchedules<TRedis extends GuardStore>(
  options: CronAppOptions<TRedis>,
  redisFor: (env: Bindings | undefined) => TRedis,
  storeFor: (env: Bindings | undefined) => GuardStore,
  /** The app's guard settings, resolved once by the deployment. */
  settings: ResolvedGuardSettings,
  jobNames: ReadonlySet<string> = new Set(),
): DynamicSchedules<TRedis> | undefined {
  const { handlers, schedules = [], dispatchCron = "* * * * *", dispatch = {} } = options;
  if (handlers === undefined) {
    if (schedules.length > 0) {
      throw new ConfigError("schedules", "need `handlers`: every schedule names one of them");
    }
    return undefined;
  }
  if (typeof handlers !== "object" || handlers === null) {
    throw new ConfigError("handlers", "must be an object { name: function }");
  }
  for (const [name, handler] of Object.entries(handlers)) {
    if (typeof handler !== "function")
      throw new ConfigError("handlers", `${name} is not a function`);
  }
  configErrorIn("dispatchCron", () => parseSchedule(dispatchCron));
  for (const schedule of schedules) {
    if (!isValidJobName(schedule?.id)) {
      throw new ConfigError("schedules", `invalid schedule id ${JSON.stringify(schedule?.id)}`);
    }
    if (jobNames.has(schedule.id)) {
      throw new ConfigError("schedules", `schedule "${schedule.id}" has the name of a job`);
    }
    if (!Object.hasOwn(handlers, schedule.handler)) {
      throw new ConfigError("schedules", `schedule "${schedule.id}" names an unknown handler`);
    }
    configErrorIn(`schedule "${schedule.id}"`, () =>
      parseSchedule(schedule.cron, { timezone: schedule.timezone }),
    );
  }
  const prefix = settings.prefix;
  const names = Object.keys(handlers);

  const perEnv = new WeakMap<object, { registry: ScheduleRegistry; ready: Promise<void> }>();
  const noEnv = {};
  const registryFor = (env: Bindings | undefined) => {
    const key = env ?? noEnv;
    let entry = perEnv.get(key);
    if (!entry) {
      const registry = createScheduleRegistry({
        redis: storeFor(env),
        prefix,
        handlers: names,
        clock: settings.clock,
      });
      const ready = (async () => {
        for (const schedule of schedules) await registry.upsert(schedule);
      })();
      entry = { registry, ready };
      // A failed upsert (store down) is retried by the next request instead of being cached.
      ready.catch(() => perEnv.delete(key));
      perEnv.set(key, entry);
    }
    return entry;
  };

  return {
    dispatchCron,
    dispatchSignature: scheduleSignature(dispatchCron),
    async registry(env) {
      const { registry, ready } = registryFor(env);
      await ready;
      return registry;
    },
    async tick(env, waitUntil, delivery) {
      await registryFor(env).ready;
      const redis = redisFor(env);
      const wrapped: Record<string, ScheduleHandler> = {};
      for (const [name, handler] of Object.entries(handlers)) {
        wrapped[name] = (context) =>
          handler({ ...context, redis, env: env ?? {}, trigger: "dispatch" });
      }
      return createDispatcher({
        ...dispatch,
        redis: storeFor(env),
        prefix,
        handlers: wrapped,
        guardOptions: {
          clock: settings.clock,
          leaseMs: settings.leaseMs,
          region: settings.region,
          heartbeatMs: settings.heartbeatMs,
          skewToleranceMs: settings.skewToleranceMs,
          historyLength: settings.historyLength,
          ledgerMaxAgeMs: settings.ledgerMaxAgeMs,
          ledgerMaxSlots: settings.ledgerMaxSlots,
          ...(settings.retentionMs === undefined ? {} : { retentionMs: settings.retentionMs }),
        },
      }).tick({
        waitUntil,
        ...(delivery ? { alongside: dispatchRecorder(settings, dispatchCron, delivery) } : {}),
      });
    },
  };
}
