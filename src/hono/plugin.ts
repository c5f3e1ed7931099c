import type { Hono, MiddlewareHandler } from "hono";
import type { ALERT_CLAIM_SCRIPT, createAlertSender } from "../core/monitoring/alerts.js";
import type { ResolvedGuardSettings } from "../core/options.js";
import type { GuardStore } from "../core/store.js";
import type { Deployment } from "./deployment.js";
import type { DynamicSchedules } from "./dynamic.js";
import type { Monitoring, ScheduleMonitoringFactory } from "./monitoring.js";
import type { Bindings, CronAppOptions } from "./types.js";

/** The features an app can be given, one plug-in each, each from its own subpath. */
export type CronAppFeature = "schedules" | "dashboard" | "openapi" | "alerts";

/** Where each feature's plug-in is imported from, for the errors that ask for one. */
export const PLUGIN_IMPORTS: Readonly<Record<CronAppFeature, string>> = {
  schedules:
    'import { dynamicSchedules } from "cron-guard/dynamic-schedules" and pass plugins: [dynamicSchedules()]',
  dashboard: 'import { dashboard } from "cron-guard/dashboard" and pass plugins: [dashboard()]',
  openapi: 'import { openApi } from "cron-guard/openapi" and pass plugins: [openApi()]',
  alerts: 'import { alerts } from "cron-guard/alerts" and pass plugins: [alerts()]',
};

/** What a plug-in's routes are mounted with. */
export interface PluginContext {
  readonly deployment: Deployment<GuardStore>;
  readonly options: CronAppOptions<GuardStore>;
  /** The bearer check every route but the dashboard page sits behind. */
  readonly requireSecret: MiddlewareHandler;
  /** The features the app was given (the OpenAPI document lists only their routes). */
  readonly features: ReadonlySet<CronAppFeature>;
}

/** Builds the app's dynamic schedules (the schedules plug-in's part of the deployment). */
export type DynamicSchedulesFactory = (
  options: CronAppOptions<GuardStore>,
  redisFor: (env: Bindings | undefined) => GuardStore,
  storeFor: (env: Bindings | undefined) => GuardStore,
  settings: ResolvedGuardSettings,
  jobNames: ReadonlySet<string>,
) => DynamicSchedules<GuardStore> | undefined;

/** What the alerts plug-in gives the app's monitoring: the webhook sender and its claim script. */
export interface AlertDelivery {
  readonly createSender: typeof createAlertSender;
  readonly claimScript: typeof ALERT_CLAIM_SCRIPT;
}

/**
 * A feature the app bundles only when it is given: `dynamicSchedules()`, `dashboard()`,
 * `openApi()`, `alerts()`, each imported from its own subpath, so a Worker without them does not carry their
 * code (a bundler cannot drop what the app's constructor references).
 */
export interface CronAppPlugin {
  readonly feature: CronAppFeature;
  /** The schedules plug-in only: the registry and dispatcher over the deployment's store. */
  readonly dynamic?: DynamicSchedulesFactory;
  /** The schedules plug-in only: their status, a tick's alerts and their periodic check. */
  readonly monitoring?: ScheduleMonitoringFactory;
  /** The schedules plug-in only: the handlers, each alerting its own failure. */
  readonly alertingHandlers?: (
    options: CronAppOptions<GuardStore>,
    monitoring: () => Monitoring,
  ) => CronAppOptions<GuardStore>;
  /** The alerts plug-in only: what sends the app's alerts. */
  readonly alerting?: AlertDelivery;
  /** Adds the feature's routes to the app, if it has any. */
  mount?(app: Hono<{ Bindings: Bindings }>, context: PluginContext): void;
}
