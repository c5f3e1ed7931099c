import * as v from "valibot";
import { canonicalArguments, canonicalDigest } from "../canonical.js";
import { parseSchedule } from "../cron/index.js";
import { ConfigError } from "../errors.js";
import { isValidJobName } from "../guard/keys.js";

const CATCH_UP = ["skip", "latest", "all"] as const;
const ID_RULE = "must be 1-128 characters of A-Z a-z 0-9 . _ -";

/**
 * What the dispatcher does with fires a tick did not reach in time (an outage, a deploy, a paused
 * platform cron): `"skip"` runs none of them and goes on with the next fire, `"latest"` runs the
 * most recent one once, `"all"` runs each of them in order, at most `catchUpLimit`.
 */
export type CatchUpPolicy = (typeof CATCH_UP)[number];

const integerIn = (min: number, max: number) => {
  const message = (issue: { input: unknown }) =>
    `must be an integer from ${min} to ${max}, got ${String(issue.input)}`;
  return v.pipe(
    v.number(message),
    v.integer(message),
    v.minValue(min, message),
    v.maxValue(max, message),
  );
};

/**
 * The fields of a schedule as it is written, checked for their types and ranges. `handlers`, when
 * given, are the names registered in code the `handler` must be one of. The cron expression, its
 * time zone and the payload's JSON are checked by {@link validateSchedule}, which uses this.
 */
export function scheduleInputSchema(handlers?: ReadonlySet<string>) {
  const entries = scheduleEntries(handlers);
  // A field left out is checked as undefined, so it gets its field's own message.
  const missing = (issue: v.ObjectIssue) => {
    const key = issue.path?.[0]?.key as keyof typeof entries;
    return v.safeParse(entries[key], undefined).issues?.[0].message ?? "is required";
  };
  return v.object(entries, missing);
}

/** The schedule's fields, each with its own check and message. */
function scheduleEntries(handlers?: ReadonlySet<string>) {
  const registered = `registered: ${[...(handlers ?? [])].join(", ") || "none"}`;
  return {
    /** `[A-Za-z0-9._-]{1,128}`; also the job name its runs are guarded under. */
    id: v.pipe(
      v.string(ID_RULE),
      v.check(isValidJobName, ID_RULE),
      v.metadata({ pattern: "^[A-Za-z0-9._-]{1,128}$" }),
    ),
    /** 5-field cron expression. */
    cron: v.pipe(
      v.string((issue) => `must be a string, got ${typeof issue.input}`),
      v.description('5-field cron expression, e.g. "0 7 * * 1-5"'),
    ),
    /** IANA time zone of `cron`. Default `"UTC"`. */
    timezone: v.optional(
      v.pipe(
        v.string("must be an IANA time zone name such as Europe/Berlin"),
        v.description('IANA time zone of `cron`. Default "UTC"'),
      ),
    ),
    /** Name of a handler registered in code (`handlers: { name: fn }`). */
    handler: v.pipe(
      v.string((issue) =>
        issue.input === undefined
          ? `is required; ${registered}`
          : `must be the name of a registered handler, got ${JSON.stringify(issue.input)}; ${registered}`,
      ),
      v.check(
        (name) => handlers === undefined || handlers.has(name),
        (issue) => `${JSON.stringify(issue.input)} is not registered; ${registered}`,
      ),
      v.description("name of a handler registered in code"),
    ),
    /** JSON handed to the handler on every run. At most 16 KiB once encoded. Default `null`. */
    payload: v.optional(
      v.pipe(
        v.unknown(),
        v.description("JSON handed to the handler on every run; at most 16 KiB. Default null"),
      ),
    ),
    /** `false` pauses the schedule. Omitted on an update: the stored pause state is kept. */
    enabled: v.optional(v.boolean("must be true or false")),
    /** Default `"latest"`. */
    catchUp: v.nullish(v.picklist(CATCH_UP, `must be one of "skip", "latest", "all"`)),
    /** With `catchUp: "all"`, the most missed fires run after a gap. Default 10. */
    catchUpLimit: v.nullish(integerIn(1, 1_000)),
    /** Attempts per fire, the first included; after the last failure the fire is recorded `dead`. Default 3. */
    maxAttempts: v.nullish(integerIn(1, 100)),
  };
}

/**
 * The fields a `PATCH` may change: every field of the schedule but its `id`, each optional, no
 * other. Validated field by field by {@link validateSchedulePatch}; the merged schedule then goes
 * through {@link validateSchedule} like any other.
 */
export function schedulePatchSchema(handlers?: ReadonlySet<string>) {
  const { id: _id, ...entries } = scheduleEntries(handlers);
  return v.pipe(
    v.partial(v.strictObject(entries)),
    v.metadata({ minProperties: 1 }),
    v.description("the fields to change; the others keep their stored values"),
  );
}

/** The changes of a `PATCH`: some fields of a schedule, its id aside. */
export type SchedulePatch = v.InferInput<ReturnType<typeof schedulePatchSchema>>;

/**
 * Checks a `PATCH` body: an object naming at least one schedule field (not `id`), each with a
 * valid value. Every problem is a ConfigError naming the field. Cross-field checks (the cron in
 * its time zone) happen on the merged schedule.
 */
export function validateSchedulePatch(
  input: unknown,
  handlers: ReadonlySet<string>,
): SchedulePatch {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new ConfigError("body", "must be a JSON object");
  }
  const schema = schedulePatchSchema(handlers);
  const { id: _id, ...entries } = scheduleEntries(handlers);
  const fields = Object.keys(entries).join(", ");
  if (Object.keys(input).length === 0) {
    throw new ConfigError("body", `name at least one field to change (${fields})`);
  }
  for (const field of Object.keys(input)) {
    if (field === "id") {
      throw new ConfigError("id", "cannot be changed: PUT a schedule under the new id instead");
    }
    if (!Object.hasOwn(entries, field)) {
      throw new ConfigError(field, `is not a schedule field (use ${fields})`);
    }
  }
  const checked = v.safeParse(schema, input, { abortEarly: true });
  if (!checked.success) {
    const issue = checked.issues[0];
    throw new ConfigError(String(issue.path?.[0]?.key ?? "body"), issue.message);
  }
  return checked.output;
}

/** The type-level schedule schema, without the handler names of a deployment. */
export const ScheduleInputSchema = scheduleInputSchema();

/** A schedule as it is written: data, stored in Redis, changed at run time. */
export type ScheduleInput = v.InferInput<typeof ScheduleInputSchema>;

/** A validated schedule, as stored. */
export interface Schedule {
  id: string;
  cron: string;
  timezone: string;
  handler: string;
  payload: unknown;
  enabled: boolean;
  catchUp: CatchUpPolicy;
  catchUpLimit: number;
  maxAttempts: number;
  /** Digest of the definition (everything above but `enabled`): equal digests, nothing to update. */
  fingerprint: string;
  createdAt: number;
  updatedAt: number;
  version: number;
}

export const MAX_PAYLOAD_BYTES = 16 * 1024;

/** The validated definition without its bookkeeping, `enabled` only when the input set it. */
export type ScheduleDefinition = Omit<
  Schedule,
  "createdAt" | "updatedAt" | "version" | "enabled"
> & {
  enabled?: boolean;
};

/**
 * Validates a schedule from untrusted input (an HTTP body or code). Every problem is a ConfigError
 * naming the field. `handlers` are the names registered in code.
 */
export async function validateSchedule(
  input: unknown,
  handlers: ReadonlySet<string>,
): Promise<ScheduleDefinition> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new ConfigError("schedule", "must be a JSON object");
  }
  const schema = scheduleInputSchema(handlers);
  for (const field of Object.keys(input)) {
    if (!Object.hasOwn(schema.entries, field)) {
      const fields = Object.keys(schema.entries).join(", ");
      throw new ConfigError(field, `is not a schedule field (use ${fields})`);
    }
  }
  const checked = v.safeParse(schema, input, { abortEarly: true });
  if (!checked.success) {
    const issue = checked.issues[0];
    throw new ConfigError(String(issue.path?.[0]?.key ?? "schedule"), issue.message);
  }
  const raw = checked.output;
  const parsed = parseSchedule(raw.cron, { timezone: raw.timezone });
  const payload = raw.payload === undefined ? null : raw.payload;
  let encoded: string | undefined;
  try {
    encoded = JSON.stringify(payload);
  } catch (cause) {
    throw new ConfigError("payload", "must be JSON", { cause });
  }
  if (encoded === undefined || !sameValue(payload, JSON.parse(encoded))) {
    throw new ConfigError(
      "payload",
      "must be plain JSON (objects, arrays, strings, finite numbers, booleans, null): it would not survive a round trip",
    );
  }
  if (new TextEncoder().encode(encoded).length > MAX_PAYLOAD_BYTES) {
    throw new ConfigError("payload", `must be at most ${MAX_PAYLOAD_BYTES} bytes as JSON`);
  }
  const definition = {
    id: raw.id,
    cron: parsed.expression,
    timezone: parsed.timezone,
    handler: raw.handler,
    payload: JSON.parse(encoded) as unknown,
    catchUp: raw.catchUp ?? "latest",
    catchUpLimit: raw.catchUpLimit ?? 10,
    maxAttempts: raw.maxAttempts ?? 3,
  };
  return {
    ...definition,
    fingerprint: await canonicalDigest([definition], 12),
    ...(raw.enabled === undefined ? {} : { enabled: raw.enabled }),
  };
}

/** True when JSON kept the value as it was (no NaN turned null, no Date turned string, ...). */
function sameValue(original: unknown, roundTripped: unknown): boolean {
  try {
    return canonicalArguments([original]) === canonicalArguments([roundTripped]);
  } catch {
    return false;
  }
}
