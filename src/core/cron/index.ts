/** Cron for the rest of the package: parsing, fire times, slots and their ids. */
export {
  latestFireAtOrBefore,
  nextFireTimes,
  periodMsOf,
  validateSkewTolerance,
} from "./fire-times.js";
export { type CronSchedule, parseSchedule } from "./schedule.js";
export {
  attemptSlotId,
  fireTimeOfSlot,
  parseExplicitSlot,
  RETRY_SUFFIX,
  slotFromCron,
  slotFromScheduledTime,
  slotId,
} from "./slot-id.js";
