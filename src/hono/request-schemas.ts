import * as v from "valibot";
import { isValidJobName } from "../core/guard/keys.js";
import { isListCursor } from "../core/schedules/registry.js";

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
    ),
    "0",
  );

/** `GET /schedules?cursor=&limit=`. */
export const ScheduleListQuery = v.object({
  cursor: cursor("use the cursor a previous page returned"),
  limit: limit(100),
});

/** `GET /dashboard/data?cursor=&limit=`: the page of schedules the dashboard shows. */
export const DashboardDataQuery = v.object({
  cursor: cursor("use the schedulesCursor a previous answer returned"),
  limit: limit(100),
});

/** Largest schedule body accepted, in bytes (the payload alone may be 16 KiB). */
export const MAX_SCHEDULE_BODY_BYTES = 64 * 1024;

/**
 * `PUT /schedules/:id`'s body as JSON: an object. Its fields are the schedule's
 * (`ScheduleInputSchema`), checked by the registry's upsert with the handler names it knows.
 */
export const ScheduleBody = v.custom<Record<string, unknown>>(
  (body) => typeof body === "object" && body !== null && !Array.isArray(body),
  "must be a JSON object",
);
