/**
 * The old single module, now only re-exporting ./index.js for src/hono/routes/schedules.ts, whose
 * import still names it. Delete this file once that import points at ./index.js.
 */
export * from "./index.js";
