import { messageOf } from "../errors.js";
import { assertJobName, assertPrefix } from "../guard/keys.js";
import { luaScript } from "../guard/scripts.js";
import { DEFAULT_PREFIX } from "../options.js";
import { type GuardStore, runScript } from "../store.js";
import { ALERT_SIGNATURE_HEADER, createAlertSigner, normalizeAlertSecret } from "./signature.js";

/**
 * What went wrong: a run failed, lost its lease, a schedule's fire died after its last attempt, a
 * fire never ran, or a trigger source that used to deliver a job has been silent for several of
 * its fires (redundant clocks: the job still ran, from another source).
 */
export type AlertKind = "failed" | "lost" | "dead" | "missed" | "silent";

/**
 * The JSON body POSTed to the alert webhook. One URL serves Slack, Discord and generic receivers:
 * `text` (Slack's field) and `content` (Discord's) carry the same human-readable line, and
 * `allowed_mentions` keeps Discord from pinging anyone an error message happens to mention. Each
 * receiver ignores the fields it does not know. When the app has an alert secret, the POST carries
 * a `cron-guard-signature` header over the raw body (see verifyAlertSignature).
 */
export interface AlertBody {
  kind: AlertKind;
  /** The job's name, or the schedule's id (`dispatch` for the dispatch tick). */
  job: string;
  /** `dispatch`: the dispatch tick itself (a `silent` source of its ticks). */
  source: "job" | "schedule" | "dispatch";
  /** The fire time (slot id) the alert is about; for `missed`, the first of `slots`. */
  slot: string;
  /** `missed`: every fire time this alert reports (newly seen as missed). Otherwise `[slot]`. */
  slots: string[];
  /** The run's fencing token, when a run was claimed. */
  fence?: number | null;
  /** The region label of the instance that saw it. */
  region?: string;
  /** What the job threw, or why the lease was lost, or the dead fire's last error. */
  error?: string;
  /** `dead`: attempts made. */
  attempts?: number;
  /** `silent`: the trigger source that stopped delivering (`vercel`, `qstash`, ...). */
  trigger?: string;
  /** `silent`: the fires it has not delivered since its last one (`slot` is the first of them). */
  fires?: number;
  /** `silent`: the last slot it delivered. */
  lastSlot?: string;
  /** When the alert was sent, ISO-8601. */
  at: string;
  /** The key prefix of the deployment (ShedLock's env): tells deployments apart. */
  prefix: string;
  /** One line for people (Slack's `text`), whole. */
  text: string;
  /** The same line for Discord, cut to Discord's 2 000 characters (ending in "…" when cut). */
  content: string;
  /** Discord: mention nobody (an `@everyone` in a job's error must not ping the server). */
  allowed_mentions: { parse: [] };
}

/** An event before it is claimed and sent: the body without its bookkeeping fields. */
export type AlertEvent = Omit<
  AlertBody,
  "at" | "prefix" | "text" | "content" | "allowed_mentions" | "slots"
> & { slots?: string[] };

export interface AlertSenderOptions {
  redis: GuardStore;
  /** The webhook; undefined turns alerts off. */
  url: string | undefined;
  /** Key namespace, as for the guard. Default `"cron-guard"`. */
  prefix?: string;
  /**
   * Signs each POST (`cron-guard-signature: t=<unix s>,v1=<hex HMAC-SHA256 of "<t>.<body>">`).
   * Trimmed; undefined or blank: sent unsigned.
   */
  secret?: string;
  /** Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Give up on the webhook after this long, in ms. Default 5 000. */
  timeoutMs?: number;
  /** How long an alert claim is kept (one alert per event within it), in ms. Default one day. */
  claimTtlMs?: number;
  clock?: () => number;
}

const DAY_MS = 86_400_000;
/** Discord refuses a message whose `content` is longer. */
export const DISCORD_CONTENT_MAX = 2_000;

/** `text` within `max` UTF-16 units, cut with "…" (never between the halves of a surrogate pair). */
function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}

/**
 * KEYS: one alert key per event (all under the job's hash tag). ARGV: token, ttlMs.
 * SET NX PX per key, like a slot claim: 1-based indexes of the keys this caller won.
 */
export const ALERT_CLAIM_SCRIPT = luaScript(
  "alert-claim",
  `local won = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then won[#won + 1] = i end
end
return cjson.encode(won)`,
);

/** KEYS: alert keys. ARGV: token. Deletes the keys this token holds (the webhook failed: let another try). */
export const ALERT_RELEASE_SCRIPT = luaScript(
  "alert-release",
  `local released = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    released = released + 1
  end
end
return released`,
);

/** `<prefix>:{<job>}:alert:<kind>:<slot>`: beside the job's own keys, under its hash tag. */
export function alertKey(prefix: string, job: string, kind: AlertKind, slot: string): string {
  assertPrefix(prefix);
  assertJobName(job);
  return `${prefix}:{${job}}:alert:${kind}:${slot}`;
}

/**
 * What one alert is claimed under, beside its kind: the slot; for `silent`, the source and the
 * first slot of its silence (one alert per source per silence, however long it lasts).
 */
function claimIdOf(event: AlertEvent, slot: string): string {
  if (event.kind !== "silent") return slot;
  // The dispatch tick's alerts share the key space of a job named `dispatch`: told apart here.
  return `${event.source === "dispatch" ? "dispatch:" : ""}${event.trigger ?? ""}:${slot}`;
}

function describe(event: AlertEvent, slots: string[]): string {
  const what =
    event.source === "dispatch"
      ? "the dispatch tick"
      : event.source === "schedule"
        ? `schedule ${event.job}`
        : `job ${event.job}`;
  switch (event.kind) {
    case "failed":
      return `cron-guard: ${what} failed at ${event.slot}: ${event.error ?? "error"}`;
    case "lost":
      return `cron-guard: ${what} lost its lease at ${event.slot}; another instance may have run it: ${event.error ?? ""}`.trim();
    case "dead":
      return `cron-guard: ${what} gave up on ${event.slot} after ${event.attempts ?? "all"} attempts: ${event.error ?? "failed"}`;
    case "silent":
      return `cron-guard: source ${event.trigger ?? "?"} has not delivered ${what} for ${event.fires ?? slots.length} fires (last ${event.lastSlot ?? "?"}); another source delivered them`;
    case "missed":
      return `cron-guard: ${what} missed ${slots.length === 1 ? slots[0] : `${slots.length} fires (${slots[0]} … ${slots[slots.length - 1]})`}: no run started within the grace period`;
  }
}

export interface AlertSender {
  readonly enabled: boolean;
  /** Whether each POST carries a `cron-guard-signature` header (a non-blank secret was given). */
  readonly signed: boolean;
  /**
   * Claims each event (one key per job, kind and fire time: SET NX, like a slot) and POSTs one
   * body per job and kind with the fires this caller won. Never rejects: a webhook that fails
   * is logged and its claims are released, so another instance that sees the event may send it.
   * Resolves to the bodies sent.
   */
  send(events: readonly AlertEvent[]): Promise<AlertBody[]>;
}

export function createAlertSender(options: AlertSenderOptions): AlertSender {
  const { redis, url } = options;
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const claimTtlMs = options.claimTtlMs ?? DAY_MS;
  const clock = options.clock ?? Date.now;
  const secret = normalizeAlertSecret(options.secret);
  const sign = secret === undefined ? undefined : createAlertSigner(secret);

  async function sendOne(event: AlertEvent): Promise<AlertBody | undefined> {
    const slots = event.slots && event.slots.length > 0 ? event.slots : [event.slot];
    const keys = slots.map((slot) =>
      alertKey(prefix, event.job, event.kind, claimIdOf(event, slot)),
    );
    const token = crypto.randomUUID();
    const reply = await runScript(redis, ALERT_CLAIM_SCRIPT, keys, [token, claimTtlMs]);
    const raw = typeof reply === "string" ? (JSON.parse(reply) as unknown) : reply;
    const won = (Array.isArray(raw) ? raw : []).map((index) => slots[Number(index) - 1] as string);
    if (won.length === 0) return undefined;
    const nowMs = clock();
    const text = describe({ ...event, slot: won[0] as string }, won);
    const body: AlertBody = {
      ...event,
      slot: won[0] as string,
      slots: won,
      at: new Date(nowMs).toISOString(),
      prefix,
      text,
      content: clip(text, DISCORD_CONTENT_MAX),
      allowed_mentions: { parse: [] },
    };
    try {
      const raw = JSON.stringify(body);
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "user-agent": "cron-guard-alert/1",
      };
      if (sign) headers[ALERT_SIGNATURE_HEADER] = await sign(raw, nowMs);
      const response = await (options.fetch ?? fetch)(url as string, {
        method: "POST",
        headers,
        body: raw,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.body?.cancel();
      if (!response.ok) throw new Error(`webhook answered HTTP ${response.status}`);
      return body;
    } catch (error) {
      console.error(
        `cron-guard: alert ${event.kind} ${event.job} not delivered: ${messageOf(error)}`,
      );
      const held = won.map((slot) =>
        alertKey(prefix, event.job, event.kind, claimIdOf(event, slot)),
      );
      await runScript(redis, ALERT_RELEASE_SCRIPT, held, [token]).catch(() => undefined);
      return undefined;
    }
  }

  return Object.freeze({
    enabled: typeof url === "string" && url !== "",
    signed: sign !== undefined,
    async send(events: readonly AlertEvent[]) {
      if (typeof url !== "string" || url === "") return [];
      const sent = await Promise.all(
        events.map((event) =>
          sendOne(event).catch((error: unknown) => {
            console.error(`cron-guard: alert ${event.kind} ${event.job}: ${messageOf(error)}`);
            return undefined;
          }),
        ),
      );
      return sent.filter((body) => body !== undefined);
    },
  });
}
