/** `cron-guard/client`: a typed client of a deployed app's `/schedules` API, over `fetch`. */

export type { ScheduleInput, SchedulePatch } from "../core/schedules/schedule.js";
export type {
  ScheduleDeletedJson,
  ScheduleJson,
  ScheduleListJson,
  ScheduleOnlyJson,
  SchedulePatchJson,
  ScheduleSlotJson,
  ScheduleStatusJson,
  ScheduleWriteJson,
  SlotLookupJson,
  TickJson,
} from "../hono/response-schemas.js";
export {
  createScheduleClient,
  ScheduleApiError,
  type ScheduleBody,
  type ScheduleClient,
  type ScheduleClientOptions,
} from "./schedules.js";
