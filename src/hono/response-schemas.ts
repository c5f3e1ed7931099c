import * as v from "valibot";

/**
 * The answers of the app's HTTP API, one valibot schema each: the OpenAPI document's response
 * schemas (see openapi.ts) and, by inference, the types of the schedules serializer
 * (schedule-json.ts) and of the typed client (`cron-guard/client`). Written once, here.
 */

const iso = (description: string) =>
  v.pipe(v.string(), v.isoTimestamp(), v.description(`${description} (ISO-8601, UTC)`));
const integer = (description?: string) =>
  description
    ? v.pipe(v.number(), v.integer(), v.description(description))
    : v.pipe(v.number(), v.integer());

/** Every error answer: `{ error }`, with `field` on a 400 that names the bad input. */
export const ErrorJson = v.object({
  error: v.string(),
  field: v.optional(v.pipe(v.string(), v.description("the input field at fault, on a 400"))),
});

/** A schedule as the /schedules routes answer it, its fields always in this order. */
export const ScheduleJson = v.object({
  id: v.string(),
  handler: v.string(),
  cron: v.string(),
  timezone: v.string(),
  enabled: v.boolean(),
  next: v.nullable(iso("the pending fire time; null while paused")),
  attempt: integer("failed attempts of the pending fire so far"),
  payload: v.pipe(v.unknown(), v.description("JSON handed to the handler")),
  catchUp: v.picklist(["skip", "latest", "all"]),
  catchUpLimit: integer(),
  maxAttempts: integer(),
  version: integer("1 when created, +1 on every change"),
  fingerprint: v.pipe(v.string(), v.description("digest of the definition")),
  createdAt: iso("when it was created"),
  updatedAt: iso("when it last changed"),
});

/** A slot key's state as the /schedules routes show it: times in ISO, never the claim's token. */
export const SlotStateJson = v.object({
  state: v.picklist(["running", "done", "failed", "released", "lost", "unvouched", "foreign"]),
  slot: v.optional(v.string()),
  fence: v.optional(integer()),
  region: v.optional(v.string()),
  startedAt: v.optional(iso("when the run started")),
  finishedAt: v.optional(iso("when the run finished")),
  durationMs: v.optional(integer()),
  attempt: v.optional(integer()),
  attempts: v.optional(integer()),
  forced: v.optional(v.boolean()),
  ledger: v.optional(v.boolean()),
  summary: v.optional(
    v.pipe(v.unknown(), v.description("what the handler returned (JSON), or the error's text")),
  ),
  raw: v.optional(v.pipe(v.string(), v.description("a value cron-guard did not write"))),
});

/** One run from the job's history stream. */
export const RunJson = v.object({
  id: v.string(),
  slot: v.string(),
  status: v.picklist(["done", "failed", "lost"]),
  forced: v.boolean(),
  fence: integer(),
  region: v.string(),
  finishedAt: v.nullable(iso("when the run was recorded")),
  durationMs: integer(),
  summary: v.pipe(
    v.unknown(),
    v.description(
      "what the handler returned, as JSON (null for nothing); the error's text for a failed run; the text as cut when the value was too long to keep",
    ),
  ),
});

export const LateRunJson = v.object({
  slot: v.string(),
  startedAt: iso("when the late claim started"),
  lateMs: integer(),
});

export const MonitorJson = v.object({
  graceMs: integer(),
  windowMs: integer(),
  from: v.nullable(iso("first checked fire time")),
  to: v.nullable(iso("last checked fire time")),
  checked: integer(),
  missed: v.array(v.string()),
  late: v.array(LateRunJson),
});

/** `GET /schedules/:id`. */
export const ScheduleStatusJson = v.object({
  schedule: ScheduleJson,
  running: v.nullable(SlotStateJson),
  slots: v.array(
    v.object({
      slot: v.string(),
      state: v.nullable(SlotStateJson),
      ttlMs: v.nullable(integer()),
    }),
  ),
  runs: v.array(RunJson),
  monitor: MonitorJson,
});

/** `GET /schedules`. */
export const ScheduleListJson = v.object({
  schedules: v.array(ScheduleJson),
  cursor: v.nullable(v.pipe(v.string(), v.description("pass as ?cursor= for the next page"))),
});

/** `PUT /schedules/:id` (201 created, 200 updated or unchanged). */
export const ScheduleWriteJson = v.object({
  outcome: v.picklist(["created", "updated", "unchanged"]),
  schedule: ScheduleJson,
});

/** `PATCH /schedules/:id`. */
export const SchedulePatchJson = v.object({
  outcome: v.picklist(["updated", "unchanged"]),
  schedule: ScheduleJson,
});

/** `POST /schedules/:id/pause` and `/resume`. */
export const ScheduleOnlyJson = v.object({ schedule: ScheduleJson });

/** `DELETE /schedules/:id`. */
export const ScheduleDeletedJson = v.object({
  deleted: v.string(),
  purged: v.pipe(v.boolean(), v.description("true when its history went too (?purge=true)")),
});

export const LedgerRunJson = v.object({
  outcome: v.picklist(["done", "failed", "released", "lost"]),
  fence: integer(),
  finishedAt: iso("when the run was recorded"),
  attempt: integer(),
  forced: v.boolean(),
});

const LOOKUP_STATUS = ["ran", "failed", "released", "running", "never", "unknown"] as const;

/** What the store knows of one attempt of a schedule's fire. */
export const SlotLookupJson = v.object({
  job: v.string(),
  slot: v.string(),
  status: v.picklist(LOOKUP_STATUS),
  runs: v.array(LedgerRunJson),
  holder: v.nullable(SlotStateJson),
});

/** `GET /schedules/:id/slots/:slot`: every attempt of one fire. */
export const ScheduleSlotJson = v.object({
  schedule: v.string(),
  slot: v.string(),
  status: v.picklist(LOOKUP_STATUS),
  attempts: v.array(SlotLookupJson),
});

/** `GET|POST /dispatch`: one tick's counts. */
export const TickJson = v.looseObject({
  ran: integer(),
  skipped: integer(),
  failed: integer(),
  dead: integer(),
  missed: integer(),
  remaining: integer(),
  calls: integer("store calls this tick made"),
  requests: v.optional(integer("HTTP requests to the store this tick made")),
  errors: integer(),
  elapsedMs: integer(),
});

/** How one trigger source delivered (core/guard/sources.ts SourceReport). */
export const SourceReportJson = v.object({
  source: v.string(),
  deliveries: integer("deliveries that reached the store"),
  slots: integer("slots it delivered at least once"),
  first: integer("slots it delivered before any other source"),
  duplicates: integer("deliveries beyond the first of their slot"),
  lagMedianMs: integer("median lag of its first delivery of a slot after the fire time, ms"),
  lagMaxMs: integer("largest such lag, ms"),
  lastSlot: v.string(),
  lastSlotMs: integer("ms since the epoch"),
  silentFires: integer("recorded slots after lastSlot it did not deliver"),
  silentSinceSlot: v.optional(v.string()),
});

/** `GET /dispatch/sources`: who delivered the dispatch tick, one slot per fire of its cron. */
export const DispatchSourcesJson = v.object({
  cron: v.pipe(v.string(), v.description("the app's dispatchCron")),
  sources: v.array(SourceReportJson),
});

/**
 * A slot key's state as the /cron routes show it (the guard's own record: times in ms since the
 * epoch).
 */
const CronSlotState = v.looseObject({
  state: v.string(),
  fence: v.optional(integer()),
  startedAt: v.optional(integer("ms since the epoch")),
  finishedAt: v.optional(integer("ms since the epoch")),
});

/** `GET /cron`. */
export const CronJobsJson = v.object({
  jobs: v.array(
    v.object({
      name: v.string(),
      cron: v.string(),
      timezone: v.string(),
      next: v.array(v.string()),
    }),
  ),
});

/** `GET|POST /cron/:job` that ran the job. */
export const CronRanJson = v.object({
  status: v.literal("ran"),
  job: v.string(),
  slot: v.string(),
  fence: v.nullable(integer()),
  value: v.pipe(v.unknown(), v.description("what the handler returned")),
});

/** `GET|POST /cron/:job?slot=` that the slot ledger turned away (409). */
export const CronRefusedJson = v.looseObject({
  error: v.string(),
  job: v.string(),
  slot: v.string(),
  reason: v.picklist(["done", "failed", "unvouched"]),
  status: v.picklist(["ran", "failed", "unknown"]),
});

/** `GET /cron/:job/status`. */
export const CronStatusJson = v.looseObject({
  job: v.string(),
  fence: integer(),
  running: v.nullable(CronSlotState),
  slots: v.array(
    v.object({ slot: v.string(), state: v.nullable(CronSlotState), ttlMs: v.nullable(integer()) }),
  ),
  runs: v.array(v.looseObject({ slot: v.string(), status: v.string() })),
  monitor: MonitorJson,
});

/** `GET /cron/:job/slots/:slot`. */
export const CronSlotJson = v.object({
  job: v.string(),
  slot: v.string(),
  status: v.picklist(LOOKUP_STATUS),
  runs: v.array(LedgerRunJson),
  holder: v.nullable(CronSlotState),
});

export type ScheduleJson = v.InferOutput<typeof ScheduleJson>;
export type SlotStateJson = v.InferOutput<typeof SlotStateJson>;
export type RunJson = v.InferOutput<typeof RunJson>;
export type ScheduleStatusJson = v.InferOutput<typeof ScheduleStatusJson>;
export type ScheduleListJson = v.InferOutput<typeof ScheduleListJson>;
export type ScheduleWriteJson = v.InferOutput<typeof ScheduleWriteJson>;
export type SchedulePatchJson = v.InferOutput<typeof SchedulePatchJson>;
export type ScheduleOnlyJson = v.InferOutput<typeof ScheduleOnlyJson>;
export type ScheduleDeletedJson = v.InferOutput<typeof ScheduleDeletedJson>;
export type SlotLookupJson = v.InferOutput<typeof SlotLookupJson>;
export type ScheduleSlotJson = v.InferOutput<typeof ScheduleSlotJson>;
export type TickJson = v.InferOutput<typeof TickJson>;
export type SourceReportJson = v.InferOutput<typeof SourceReportJson>;
export type DispatchSourcesJson = v.InferOutput<typeof DispatchSourcesJson>;
export type ErrorJson = v.InferOutput<typeof ErrorJson>;
