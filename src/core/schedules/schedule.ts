import { canonicalArguments, canonicalDigest } from "../canonical.js";
import { parseSchedule } from "../cron/slot.js";
import { ConfigError } from "../errors.js";
import { isValidJobName } from "../guard/keys.js";

/**
 * What the dispatcher does with fires a tick did not reach in time (an outage, a deploy, a paused
 * platform cron): `"skip"` runs none of them and goes on with the next fire, `"latest"` runs the
 * most recent one once, `"all"` runs each of them in order, at most `catchUpLimit`.
 */
export type CatchUpPolicy = "skip" | "latest" | "all";

/** A schedule as it is written: data, stored in Redis, changed at run time. */
export interface ScheduleInput {
  /** `[A-Za-z0-9._-]{1,128}`; also the job name its runs are guarded under. */
  id: string;
  /** 5-field cron expression. */
  cron: string;
  /** IANA time zone of `cron`. Default `"UTC"`. */
  timezone?: string;
  /** Name of a handler registered in code (`handlers: { name: fn }`). */
  handler: string;
  /** JSON handed to the handler on every run. At most 16 KiB once encoded. Default `null`. */
  payload?: unknown;
  /** `false` pauses the schedule. Omitted on an update: the stored pause state is kept. */
  enabled?: boolean;
  /** Default `"latest"`. */
  catchUp?: CatchUpPolicy;
  /** With `catchUp: "all"`, the most missed fires run after a gap. Default 10. */
  catchUpLimit?: number;
  /** Attempts per fire, the first included; after the last failure the fire is recorded `dead`. Default 3. */
  maxAttempts?: number;
}

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
const FIELDS = new Set([
  "id",
  "cron",
  "timezone",
  "handler",
  "payload",
  "enabled",
  "catchUp",
  "catchUpLimit",
  "maxAttempts",
]);
const CATCH_UP: readonly CatchUpPolicy[] = ["skip", "latest", "all"];

/** The validated definition without its bookkeeping, `enabled` only when the input set it. */
export type ScheduleDefinition = Omit<
  Schedule,
  "createdAt" | "updatedAt" | "version" | "enabled"
> & {
  enabled?: boolean;
};

function integerIn(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(field, `must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

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
  const raw = input as Record<string, unknown>;
  for (const field of Object.keys(raw)) {
    if (!FIELDS.has(field)) {
      throw new ConfigError(field, `is not a schedule field (use ${[...FIELDS].join(", ")})`);
    }
  }
  if (typeof raw.id !== "string" || !isValidJobName(raw.id)) {
    throw new ConfigError("id", "must be 1-128 characters of A-Z a-z 0-9 . _ -");
  }
  if (raw.timezone !== undefined && typeof raw.timezone !== "string") {
    throw new ConfigError("timezone", "must be an IANA time zone name such as Europe/Berlin");
  }
  const parsed = parseSchedule(raw.cron as string, {
    timezone: raw.timezone as string | undefined,
  });
  if (typeof raw.handler !== "string" || !handlers.has(raw.handler)) {
    const known = [...handlers].map((name) => JSON.stringify(name)).join(", ") || "none";
    throw new ConfigError(
      "handler",
      `${JSON.stringify(raw.handler)} is not a registered handler (registered: ${known})`,
    );
  }
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
  if (raw.enabled !== undefined && typeof raw.enabled !== "boolean") {
    throw new ConfigError("enabled", "must be true or false");
  }
  const catchUp = raw.catchUp ?? "latest";
  if (!CATCH_UP.includes(catchUp as CatchUpPolicy)) {
    throw new ConfigError("catchUp", `must be one of "skip", "latest", "all"`);
  }
  const definition = {
    id: raw.id,
    cron: parsed.expression,
    timezone: parsed.timezone,
    handler: raw.handler,
    payload: JSON.parse(encoded) as unknown,
    catchUp: catchUp as CatchUpPolicy,
    catchUpLimit: integerIn("catchUpLimit", raw.catchUpLimit ?? 10, 1, 1_000),
    maxAttempts: integerIn("maxAttempts", raw.maxAttempts ?? 3, 1, 100),
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
