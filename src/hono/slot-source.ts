import { type CronSchedule, parseExplicitSlot, slotFromCron } from "../core/cron/index.js";
import { SlotError } from "../core/errors.js";
import { scheduleSignature } from "./cron-signature.js";

/** How the invocation was triggered, from what the request carries. */
export type Trigger = "scheduled" | "vercel" | "manual" | "http";

/**
 * Which clock delivered the invocation, recorded per slot (core/guard/sources.ts): `cloudflare`
 * (a scheduled event), `vercel` (Vercel's cron GET: `x-vercel-cron-schedule` or the user agent
 * `vercel-cron/...`), `qstash` (a request with an `Upstash-Signature`, checked by the app's auth),
 * `manual` (a backfill, `?slot=`), `dispatch` (a schedule's fire), or `http`: any other caller
 * with the bearer, which may name itself with `?source=<name>` or a `cron-guard-source` header
 * (`[a-z0-9-]{1,32}`; a bad name is a 400).
 */
export type TriggerSource =
  | "cloudflare"
  | "vercel"
  | "qstash"
  | "manual"
  | "dispatch"
  | "http"
  | (string & {});

export interface ResolvedSlot {
  slotMs: number;
  trigger: Trigger;
  source: TriggerSource;
}

const SOURCE_NAME = /^[a-z0-9-]{1,32}$/;

/** The clock that sent an HTTP request that is not a backfill; see TriggerSource. */
export function sourceOfRequest(request: Request): TriggerSource {
  if (request.headers.has("upstash-signature")) return "qstash";
  if (
    request.headers.has("x-vercel-cron-schedule") ||
    /^vercel-cron\//i.test(request.headers.get("user-agent") ?? "")
  ) {
    return "vercel";
  }
  const named = [
    ...new URL(request.url).searchParams.getAll("source"),
    ...(request.headers.has("cron-guard-source")
      ? [request.headers.get("cron-guard-source") as string]
      : []),
  ];
  if (named.length === 0) return "http";
  const [name] = named;
  if (named.some((other) => other !== name) || !SOURCE_NAME.test(name as string)) {
    throw new SlotError(
      `the source (?source= or cron-guard-source) must be one name of 1-32 characters a-z 0-9 -, got ${JSON.stringify(named.join(", ").slice(0, 80))}`,
    );
  }
  return name as string;
}

export interface SlotSourceOptions {
  schedule: CronSchedule;
  cron: string;
  nowMs: number;
  skewToleranceMs: number;
}

/**
 * The slot of an HTTP invocation: `?slot=<ISO>` for a manual backfill (must be a fire time, and
 * not later than now + tolerance: a future slot would run now and swallow the real delivery),
 * otherwise the latest fire time of the job's cron at now + tolerance. A Vercel call says which
 * schedule fired (`x-vercel-cron-schedule`); it must mean the job's schedule (spelling aside, see
 * `sameSchedule` in core/slot.ts), or the deployment disagrees with itself and we refuse rather than guess.
 */
export function slotForRequest(request: Request, options: SlotSourceOptions): ResolvedSlot {
  const url = new URL(request.url);
  const explicit = url.searchParams.getAll("slot");
  if (explicit.length > 1) {
    throw new SlotError(`give one ?slot=, not ${explicit.length}`);
  }
  if (explicit[0] !== undefined) {
    const slotMs = parseExplicitSlot(explicit[0], options.schedule, {
      nowMs: options.nowMs,
      skewToleranceMs: options.skewToleranceMs,
    });
    return { slotMs, trigger: "manual", source: "manual" };
  }
  const source = sourceOfRequest(request);
  const vercelSchedule = request.headers.get("x-vercel-cron-schedule");
  if (vercelSchedule !== null && !sameCron(vercelSchedule, options.cron)) {
    throw new SlotError(
      `x-vercel-cron-schedule "${vercelSchedule.slice(0, 100)}" is not this job's schedule "${options.cron}": align vercel.json with the job`,
    );
  }
  return {
    slotMs: slotFromCron(options.schedule, options.nowMs, {
      skewToleranceMs: options.skewToleranceMs,
    }),
    trigger: vercelSchedule !== null ? "vercel" : "http",
    source,
  };
}

const MAX_REMEMBERED = 64;
const signatures = new Map<string, string | undefined>();

/** `sameSchedule` of core/slot.ts, remembering the canonical form of the last few expressions seen. */
export function sameCron(a: string, b: string): boolean {
  const first = signatureOf(a);
  return first !== undefined && first === signatureOf(b);
}

function signatureOf(expression: string): string | undefined {
  if (expression.length > 256) return scheduleSignature(expression);
  if (signatures.has(expression)) return signatures.get(expression);
  const signature = scheduleSignature(expression);
  if (signatures.size >= MAX_REMEMBERED) signatures.clear();
  signatures.set(expression, signature);
  return signature;
}
