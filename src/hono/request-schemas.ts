import * as v from "valibot";
import { isValidJobName } from "../core/guard/keys.js";
import { isListCursor } from "../core/schedules/registry.js";
import { ScheduleInputSchema, schedulePatchSchema } from "../core/schedules/schedule.js";

/**
 * The HTTP input of the schedules API and the dashboard, one valibot schema per path, query and
 * body; each message is the text of the 400 `{ error: "<field>: <message>", field }` it gives. A
 * query parameter given twice is read by its first value, as `c.req.query()` reads it.
 */

/** `:id` of `/schedules/:id...`: a schedule id, which is also the job name its runs use. */
export const ScheduleIdParam = v.object({
  id: v.pipe(
    v.string(),
    v.check(
      isValidJobName,
      (issue) => `${JSON.stringify(issue.input)} is not a schedule id (1-128 of A-Z a-z 0-9 . _ -)`,
    ),
    v.metadata({ pattern: "^[A-Za-z0-9._-]{1,128}$" }),
  ),
});

/** A page size, `?limit=`: 1-500, `defaultLimit` when absent. */
const limit = (defaultLimit: number) => {
  const message = "a whole number from 1 to 500";
  return v.optional(
    v.pipe(
      v.string(message),
      v.regex(/^\d{1,4}$/, message),
      v.transform(Number),
      v.minValue(1, message),
      v.maxValue(500, message),
    ),
    String(defaultLimit),
  );
};

const cursor = (message: string) =>
  v.optional(
    v.pipe(
      v.string(message),
      v.check((text: string) => isListCursor(text), message),
      v.metadata({ pattern: "^\\d{1,20}$" }),
      v.description("the cursor a previous page returned; 0 or absent for the first"),
    ),
    "0",
  );

/** `GET /schedules?cursor=&limit=`. */
export const ScheduleListQuery = v.object({
  cursor: cursor("use the cursor a previous page returned"),
  limit: limit(100),
});

/**
 * `DELETE /schedules/:id?purge=`: `true` or `1` deletes the schedule's history too; anything else
 * but leaving it out is a 400 (a typo must not keep what was meant to go).
 */
export const ScheduleDeleteQuery = v.object({
  purge: v.optional(
    v.pipe(
      v.picklist(
        ["true", "1"],
        (issue) =>
          `${JSON.stringify(issue.input)}: use ?purge=true to delete the history too, or leave it out`,
      ),
      v.description("true or 1: delete its runs, slot ledger and slot keys too"),
    ),
  ),
});

/** `GET /dashboard/data?cursor=&limit=`: the page of schedules the dashboard shows. */
export const DashboardDataQuery = v.object({
  cursor: cursor("use the schedulesCursor a previous answer returned"),
  limit: limit(100),
});

/** Largest schedule body accepted, in bytes (the payload alone may be 16 KiB). */
export const MAX_SCHEDULE_BODY_BYTES = 64 * 1024;

/**
 * `PUT /schedules/:id`'s fields, for the API's description: the schedule's (`ScheduleInputSchema`,
 * which the registry's upsert checks them with, with the handler names it knows), the id optional
 * (the path gives it).
 */
export const SchedulePutFields = v.object({
  ...ScheduleInputSchema.entries,
  id: v.optional(ScheduleInputSchema.entries.id),
});

/** `PATCH /schedules/:id`'s fields, as the registry's patch checks them (with the handler names). */
export const SchedulePatchFields = schedulePatchSchema();

/**
 * `PUT` and `PATCH /schedules/:id`'s body as JSON: an object. Its fields are checked by the
 * registry (`SchedulePutFields`, `SchedulePatchFields`) with the handler names it knows.
 */
export const ScheduleBody = v.custom<Record<string, unknown>>(
  (body) => typeof body === "object" && body !== null && !Array.isArray(body),
  "must be a JSON object",
);
