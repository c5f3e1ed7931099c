import { type JsonSchema, toJsonSchema } from "@valibot/to-json-schema";
import type * as v from "valibot";
import {
  ScheduleDeleteQuery,
  ScheduleIdParam,
  ScheduleListQuery,
  SchedulePatchFields,
  SchedulePutFields,
} from "./request-schemas.js";
import {
  CronJobsJson,
  CronRanJson,
  CronRefusedJson,
  CronSlotJson,
  CronStatusJson,
  DispatchSourcesJson,
  ErrorJson,
  ScheduleDeletedJson,
  ScheduleListJson,
  ScheduleOnlyJson,
  SchedulePatchJson,
  ScheduleSlotJson,
  ScheduleStatusJson,
  ScheduleWriteJson,
  TickJson,
} from "./response-schemas.js";

/**
 * The app's OpenAPI 3.1 document (`GET /openapi.json`), built from the valibot schemas that
 * validate the requests (request-schemas.ts, the schedule schema) and the response schemas
 * (response-schemas.ts) by `@valibot/to-json-schema`, which is plain JS and runs on workerd. Built
 * once per app: `/schedules` and `/dispatch` are listed only when the app serves them.
 */

type Schema = v.GenericSchema;
type Operation = Record<string, unknown>;

/** JSON Schema 2020-12 (OpenAPI 3.1's dialect) of a request's input: what the client sends. */
function jsonSchema(schema: Schema): JsonSchema {
  const { $schema: _dialect, ...converted } = toJsonSchema(schema, {
    target: "draft-2020-12",
    typeMode: "input",
    // `check` is code (the id rule, the cursor, the handler names); each such field carries its
    // rule as metadata (a pattern) or in its description instead.
    ignoreActions: ["check"],
    errorMode: "ignore",
  });
  return converted;
}

/** An object schema's properties as OpenAPI parameters `in` the path or the query. */
function parameters(schema: Schema, where: "path" | "query"): Record<string, unknown>[] {
  const converted = jsonSchema(schema);
  const required = new Set(converted.required ?? []);
  return Object.entries(converted.properties ?? {}).map(([name, property]) => {
    const { description, ...rest } = property as JsonSchema;
    return {
      name,
      in: where,
      required: where === "path" || required.has(name),
      ...(description ? { description } : {}),
      schema: rest,
    };
  });
}

const pathString = (name: string, description: string) => ({
  name,
  in: "path",
  required: true,
  description,
  schema: { type: "string" },
});

const json = (name: string) => ({
  content: { "application/json": { schema: { $ref: `#/components/schemas/${name}` } } },
});
const answer = (description: string, name: string) => ({ description, ...json(name) });
const error = (description: string) => answer(description, "Error");
const unauthorized = error("no or wrong `Authorization: Bearer <CRON_SECRET>`");
const unavailable = error("the store cannot be reached or refused: nothing changed");
const badInput = error("bad input, named by `field`; nothing changed");
const noSchedule = error("no such schedule");

const slotParam = pathString(
  "slot",
  "a fire time (ISO-8601, e.g. 2026-11-25T12:05:00Z), one of the cron's",
);

/** The response schemas, by the name the operations refer to them. */
const RESPONSES: Record<string, Schema> = {
  Error: ErrorJson,
  ScheduleList: ScheduleListJson,
  ScheduleStatus: ScheduleStatusJson,
  ScheduleWrite: ScheduleWriteJson,
  SchedulePatch: SchedulePatchJson,
  ScheduleOnly: ScheduleOnlyJson,
  ScheduleDeleted: ScheduleDeletedJson,
  ScheduleSlot: ScheduleSlotJson,
  Tick: TickJson,
  DispatchSources: DispatchSourcesJson,
  CronJobs: CronJobsJson,
  CronRan: CronRanJson,
  CronRefused: CronRefusedJson,
  CronStatus: CronStatusJson,
  CronSlot: CronSlotJson,
};

function cronPaths(): Record<string, Record<string, Operation>> {
  const jobParam = pathString("job", "the name of a job declared in code");
  const run: Operation = {
    summary: "Run the job once for its slot (exactly once across every instance)",
    parameters: [
      jobParam,
      {
        name: "slot",
        in: "query",
        required: false,
        description: "backfill this fire time (ISO-8601) instead of the current one",
        schema: { type: "string" },
      },
      {
        name: "force",
        in: "query",
        required: false,
        description: "with ?slot=: run it even though the slot ledger says it ran",
        schema: { enum: ["true", "1", "false", "0"] },
      },
    ],
    responses: {
      "200": answer("it ran here", "CronRan"),
      "204": { description: "skipped: the slot ran or runs elsewhere (see cron-guard-* headers)" },
      "400": error("a bad ?slot= or ?force="),
      "401": unauthorized,
      "404": error("no such job"),
      "409": answer("a backfill the slot ledger turned away", "CronRefused"),
      "500": error("the handler failed (recorded)"),
      "503": unavailable,
    },
  };
  return {
    "/cron": {
      get: {
        summary: "The jobs declared in code, with their next fire times",
        responses: { "200": answer("the jobs", "CronJobs"), "401": unauthorized },
      },
    },
    "/cron/{job}": { get: run, post: run },
    "/cron/{job}/status": {
      get: {
        summary: "A job's latest slots and runs, with its missed and late fires",
        parameters: [jobParam],
        responses: {
          "200": answer("its status (times in ms since the epoch)", "CronStatus"),
          "401": unauthorized,
          "404": error("no such job"),
          "503": unavailable,
        },
      },
    },
    "/cron/{job}/slots/{slot}": {
      get: {
        summary: "What the slot ledger knows of one slot of a job",
        parameters: [jobParam, slotParam],
        responses: {
          "200": answer("the slot", "CronSlot"),
          "400": error("not a fire time of the job"),
          "401": unauthorized,
          "404": error("no such job"),
          "503": unavailable,
        },
      },
    },
  };
}

function schedulePaths(): Record<string, Record<string, Operation>> {
  const id = parameters(ScheduleIdParam, "path");
  const body = (schema: Schema, description: string) => ({
    required: true,
    description,
    content: { "application/json": { schema: jsonSchema(schema) } },
  });
  const action = (what: string): Operation => ({
    summary: what,
    parameters: id,
    responses: {
      "200": answer("the schedule", "ScheduleOnly"),
      "400": badInput,
      "401": unauthorized,
      "404": noSchedule,
      "503": unavailable,
    },
  });
  const tick: Operation = {
    summary: "One dispatch tick: run the schedules that are due",
    description:
      "The tick records who sent it for the dispatch cron's fire time: vercel, qstash, or http, which may name itself with ?source= or a cron-guard-source header (1-32 characters a-z 0-9 -).",
    parameters: [
      {
        name: "source",
        in: "query",
        required: false,
        description: "the caller's source name (a-z 0-9 -, 1-32 characters)",
        schema: { type: "string", pattern: "^[a-z0-9-]{1,32}$" },
      },
    ],
    responses: {
      "200": answer("the tick's counts", "Tick"),
      "400": error("a bad source name; no tick ran"),
      "401": unauthorized,
      "503": unavailable,
    },
  };
  return {
    "/schedules": {
      get: {
        summary: "One page of schedules, in no particular order",
        parameters: parameters(ScheduleListQuery, "query"),
        responses: {
          "200": answer("a page and the next cursor", "ScheduleList"),
          "400": badInput,
          "401": unauthorized,
          "503": unavailable,
        },
      },
    },
    "/schedules/{id}": {
      get: {
        summary: "One schedule with its running claim, latest slots and runs, missed fires",
        parameters: id,
        responses: {
          "200": answer("the schedule and its status", "ScheduleStatus"),
          "400": badInput,
          "401": unauthorized,
          "404": noSchedule,
          "503": unavailable,
        },
      },
      put: {
        summary: "Create or replace the whole schedule (fields left out take their defaults)",
        parameters: id,
        requestBody: body(SchedulePutFields, "the schedule"),
        responses: {
          "200": answer("updated or unchanged", "ScheduleWrite"),
          "201": answer("created", "ScheduleWrite"),
          "400": badInput,
          "401": unauthorized,
          "503": unavailable,
        },
      },
      patch: {
        summary: "Change only the fields named; the others keep their stored values",
        parameters: id,
        requestBody: body(SchedulePatchFields, "the fields to change"),
        responses: {
          "200": answer("updated or unchanged", "SchedulePatch"),
          "400": badInput,
          "401": unauthorized,
          "404": noSchedule,
          "409": error("other writers kept changing it: try again"),
          "503": unavailable,
        },
      },
      delete: {
        summary: "Delete the schedule; its run history stays unless ?purge=true",
        parameters: [...id, ...parameters(ScheduleDeleteQuery, "query")],
        responses: {
          "200": answer("deleted", "ScheduleDeleted"),
          "400": badInput,
          "401": unauthorized,
          "404": noSchedule,
          "503": unavailable,
        },
      },
    },
    "/schedules/{id}/pause": { post: action("Pause: no fire runs until it is resumed") },
    "/schedules/{id}/resume": { post: action("Resume from the next fire after now") },
    "/schedules/{id}/slots/{slot}": {
      get: {
        summary: "Every attempt of one fire of the schedule",
        parameters: [...id, slotParam],
        responses: {
          "200": answer("the fire's attempts", "ScheduleSlot"),
          "400": error("a bad id, or not a fire time of the schedule"),
          "401": unauthorized,
          "404": noSchedule,
          "503": unavailable,
        },
      },
    },
    "/dispatch": { get: tick, post: tick },
    "/dispatch/sources": {
      get: {
        summary: "Which trigger sources delivered the dispatch tick, per fire of its cron",
        responses: {
          "200": answer("the dispatch cron and a report per source", "DispatchSources"),
          "401": unauthorized,
          "503": unavailable,
        },
      },
    },
  };
}

/** The routes of the dashboard (its own module), listed so that every route is described. */
function dashboardPaths(): Record<string, Record<string, Operation>> {
  return {
    "/dashboard": {
      get: {
        summary: "The dashboard page (HTML; its data needs the bearer)",
        security: [],
        responses: { "200": { description: "the page", content: { "text/html": {} } } },
      },
    },
    "/dashboard/data": {
      get: {
        summary: "What the dashboard shows: jobs, a page of schedules, recent events",
        parameters: parameters(ScheduleListQuery, "query"),
        responses: {
          "200": { description: "the data", content: { "application/json": {} } },
          "400": badInput,
          "401": unauthorized,
        },
      },
    },
    "/dashboard/schedules/{id}/run": {
      post: {
        summary: "Run one fire of a schedule now, from the dashboard",
        parameters: [pathString("id", "the schedule's id")],
        responses: {
          "200": { description: "what the run did", content: { "application/json": {} } },
          "400": badInput,
          "401": unauthorized,
          "404": noSchedule,
        },
      },
    },
  };
}

export interface OpenApiOptions {
  /** Whether the app serves `/schedules` and `/dispatch` (it registers schedule handlers). */
  schedules: boolean;
}

/** The OpenAPI 3.1 document of an app. */
export function openApiDocument({ schedules }: OpenApiOptions): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: {
      title: "cron-guard",
      version: "1",
      description:
        "Exactly-once cron jobs and dynamic schedules over Upstash Redis. Every route but `/` and `/dashboard` needs `Authorization: Bearer <CRON_SECRET>`.",
    },
    security: [{ bearer: [] }],
    paths: {
      "/": {
        get: {
          summary: "The app's name, nothing else",
          security: [],
          responses: { "200": { description: '`{ name: "cron-guard" }`' } },
        },
      },
      "/openapi.json": {
        get: {
          summary: "This document",
          responses: {
            "200": { description: "OpenAPI 3.1", content: { "application/json": {} } },
            "401": unauthorized,
          },
        },
      },
      ...cronPaths(),
      ...(schedules ? schedulePaths() : {}),
      ...dashboardPaths(),
    },
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "the deployment's CRON_SECRET" },
      },
      schemas: Object.fromEntries(
        Object.entries(RESPONSES).map(([name, schema]) => [name, jsonSchema(schema)]),
      ),
    },
  };
}
